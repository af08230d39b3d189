"""Few-shot heads on embeddings: nearest prototype and a linear softmax classifier trained inside LiteRT.

Both are linear maps, logits = embedding @ W + b, so either one is appended to an exported model as one
FULLY_CONNECTED op (`export.runtime.classifier.attach_head`). The runner's heads share one interface (`Head`: fit,
predict, export), the `finetune` heads' in `edge_ssl.fewshot.finetuned_student` (the student) and
`edge_ssl.fewshot.sequence_head` (CV-MIM's temporal classifier), which import TensorFlow:
- `prototype`: W holds the class means of the support embeddings, L2-normalised and scaled by `PROTOTYPE_SCALE`
  (cosine similarity to each prototype; the scale only sharpens the softmax), b = 0. Snell et al.'s prototypical
  classifier with cosine distance; no training.
- `linear`: softmax regression with weight decay and Adam, run by `export.runtime.head_trainer.HeadTrainer` in the
  LiteRT interpreter (builtin ops only), so it trains where TensorFlow is not installed.
"""

import abc
import os
import time

import numpy as np

from export.runtime import classifier
from export.runtime import head_trainer as head_trainer_lib
from export.runtime import layout, parity

PROTOTYPE_SCALE = 10.0
HEADS = ("prototype", "linear", "finetune")


def prototype_head(
    embeddings: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(W [D, C], b [C]) of the nearest-prototype classifier.

    Raises:
      ValueError: a class without support examples.
    """
    embeddings, labels = np.asarray(embeddings, np.float32), np.asarray(labels)
    missing = sorted(set(range(num_classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"classes {missing} have no support examples")
    means = np.stack([embeddings[labels == c].mean(axis=0) for c in range(num_classes)])
    means = parity.l2_normalize(means)
    return (PROTOTYPE_SCALE * means.T).astype(np.float32), np.zeros(num_classes, np.float32)


def head_trainer(
    artifact_dir: str, embedding_dim: int, num_classes: int, cache_dir: str | None
) -> head_trainer_lib.HeadTrainer:
    """The LiteRT head trainer: the artifact's `head_trainer.tflite`, else one built here (needs TensorFlow) and
    kept in `cache_dir`.

    Raises:
      head_trainer_lib.HeadError: the artifact has none that fits, and TensorFlow is not installed to build one.
    """
    shipped = layout.ArtifactDir(artifact_dir).head_trainer
    if os.path.exists(shipped):
        trainer = head_trainer_lib.HeadTrainer(shipped)
        if trainer.embedding_dim == embedding_dim and trainer.max_classes >= num_classes:
            return trainer
    max_classes = max(head_trainer_lib.DEFAULT_MAX_CLASSES, num_classes)
    cached = None
    if cache_dir:
        cached = os.path.join(cache_dir, f"head_trainer_{embedding_dim}x{max_classes}.tflite")
        if os.path.exists(cached):
            return head_trainer_lib.HeadTrainer(cached)
    try:
        # TensorFlow builds it: the export side of the package, imported only here.
        from export import trainable_head  # pylint: disable=g-import-not-at-top

        content = trainable_head.build(embedding_dim, max_classes)
    except ImportError as e:
        raise head_trainer_lib.HeadError(
            f"{artifact_dir} has no {layout.HEAD_TRAINER} for {embedding_dim}-d embeddings and "
            f"{num_classes} classes, and TensorFlow is not installed to build one: re-export the model "
            "(python -m export writes it) or use --head=prototype"
        ) from e
    if cached:
        os.makedirs(cache_dir, exist_ok=True)
        with open(cached, "wb") as f:
            f.write(content)
    return head_trainer_lib.HeadTrainer(content)


def logits(weights: np.ndarray, bias: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """embeddings [N, D] @ W + b."""
    return np.asarray(embeddings, np.float32) @ weights + bias


class Head(abc.ABC):
    """A classifier fitted on embedded training clips, and the `classifier.tflite` it becomes.

    After `fit`: `history` (the loss per epoch, empty when nothing is trained), `seconds` (fitting time) and
    `source` (what the classifier is built on, for metrics.json).
    """

    sequence = False  # the classifier takes keypoint sequences (CV-MIM's temporal head), not the artifact's input
    precision: str | None = (
        None  # the classifier's precision, when it is an embedding model with a head appended
    )
    backbone: str = (
        "artifact"  # "artifact": the exported embedding model; "finetuned": the student fine-tuned
    )

    def __init__(self):
        self.history: list[float] = []
        self.seconds = 0.0
        self.source = ""

    @abc.abstractmethod
    def fit(self, train, classes: list[str]) -> None:
        """Fits on `train` (`labeled.Embedded`, labels indexing `classes`)."""

    def prepare(self, data):
        """`data` embedded as this head sees it (the fine-tuned student embeds clips anew); unchanged by default."""
        return data

    @abc.abstractmethod
    def predict(self, data) -> np.ndarray:
        """Class indices [N] for embedded clips (after `prepare`)."""

    @abc.abstractmethod
    def export(self, classes: list[str], info: dict) -> bytes:
        """The `classifier.tflite` content, with `classes` and `info` (the facts `classifier.attach_head` records)
        in its metadata where the head is appended to an embedding model."""

    def cleanup(self) -> None:
        """Removes scratch files the fit wrote."""


class LinearMap(Head):
    """A linear map on the artifact's embeddings appended to one of its `.tflite` files: `prototype` (class means)
    or `linear` (softmax regression trained in LiteRT by `trainer`)."""

    def __init__(self, kind: str, source_tflite: str | None = None, trainer=None, settings=None):
        """
        Args:
          kind: "prototype" or "linear".
          source_tflite: the `.tflite` the head is appended to (None: fitted and evaluated only, as in episodes).
          trainer: the LiteRT head trainer (`head_trainer`), for `linear`.
          settings: for `linear`: epochs, learning_rate, weight_decay, batch_size, seed (the runner's RunConfig).
        """
        super().__init__()
        if kind not in ("prototype", "linear") or (kind == "linear" and trainer is None):
            raise ValueError(
                f"a linear map is a prototype head or a linear one with a trainer, not {kind!r}"
            )
        self.kind, self.trainer, self.settings = kind, trainer, settings
        self.source_tflite = source_tflite
        if source_tflite:
            self.source = os.path.basename(source_tflite)
            self.precision = layout.precision_of(self.source)
        self.weights = self.bias = None

    def fit_arrays(self, embeddings: np.ndarray, labels: np.ndarray, num_classes: int) -> None:
        """Fits on embeddings [N, D] and labels [N] in range(num_classes) (an episode's support set)."""
        start = time.perf_counter()
        if self.kind == "prototype":
            self.weights, self.bias = prototype_head(embeddings, labels, num_classes)
        else:
            c = self.settings
            self.history = self.trainer.fit(
                embeddings,
                labels,
                num_classes,
                epochs=c.epochs,
                learning_rate=c.learning_rate,
                weight_decay=c.weight_decay,
                batch_size=c.batch_size or None,
                seed=c.seed,
            )
            self.weights, self.bias = self.trainer.weights()
        self.seconds = time.perf_counter() - start

    def fit(self, train, classes: list[str]) -> None:
        self.fit_arrays(train.embeddings, train.labels, len(classes))

    def predict_arrays(self, embeddings: np.ndarray) -> np.ndarray:
        return logits(self.weights, self.bias, embeddings).argmax(axis=1)

    def predict(self, data) -> np.ndarray:
        return self.predict_arrays(data.embeddings)

    def export(self, classes: list[str], info: dict) -> bytes:
        with open(self.source_tflite, "rb") as f:
            return classifier.attach_head(f.read(), self.weights, self.bias, classes, info)
