"""The trainable linear head run inside LiteRT, no TensorFlow: `HeadTrainer` fits, infers and reads its weights.

The model it runs (`export.trainable_head.build`, made at export time with TensorFlow) holds the head's variables and
four signatures, builtin ops only:
- `train(embedding [B, D], label [B, C] one-hot, class_mask [C], learning_rate [], weight_decay []) -> loss []`:
  one Adam step on the softmax cross-entropy of the classes where `class_mask` is 1 (the model has room for
  `max_classes`; a run uses the first C of them), plus `weight_decay * |W|^2 / 2`;
- `infer(embedding [B, D], class_mask [C]) -> logits [B, C]` (masked classes get -1e4);
- `save() -> weights [D, C], bias [C]`, and `restore(weights, bias) -> weights, bias`, which also resets Adam.

    head = head_trainer.HeadTrainer(content)      # the bytes of build(), or a head_trainer.tflite
    head.fit(embeddings, labels, num_classes=5, epochs=100)
    weights, bias = head.weights()
"""

from collections.abc import Sequence

import numpy as np
from ai_edge_litert import interpreter as litert

DEFAULT_MAX_CLASSES = 64
SIGNATURES = ("train", "infer", "save", "restore")
ADAM = (0.9, 0.999, 1e-8)  # beta1, beta2, epsilon of the Adam step `train` takes
MASKED_LOGIT = -1e4


class HeadError(ValueError):
    """The head cannot be trained as asked (too many classes, shapes that do not match the model)."""


class HeadTrainer:
    """The trainable head run by LiteRT: `fit`, `logits`, `weights`, `set_weights`.

    Args:
      model: the bytes `build` returned, or the path of a `head_trainer.tflite`.
    """

    def __init__(self, model: bytes | str):
        kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": model}
        try:
            self.interpreter = litert.Interpreter(**kwargs)
        except (ValueError, RuntimeError) as e:
            where = "the head model bytes" if isinstance(model, bytes) else model
            raise HeadError(f"{where} is not a readable TFLite model: {e}") from e
        missing = set(SIGNATURES) - set(self.interpreter.get_signature_list())
        if missing:
            raise HeadError(f"the head model lacks the {sorted(missing)} signature(s)")
        self._runners = {name: self.interpreter.get_signature_runner(name) for name in SIGNATURES}
        shape = self._runners["restore"].get_input_details()["weights"]["shape"]
        self.embedding_dim, self.max_classes = int(shape[0]), int(shape[1])
        self.num_classes = self.max_classes

    def _mask(self) -> np.ndarray:
        mask = np.zeros(self.max_classes, np.float32)
        mask[: self.num_classes] = 1.0
        return mask

    def _check(self, embeddings: np.ndarray) -> np.ndarray:
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_dim:
            raise HeadError(
                f"embeddings must be [N, {self.embedding_dim}] for this head, got {list(embeddings.shape)}"
            )
        return embeddings

    def set_weights(self, weights: np.ndarray, bias: np.ndarray) -> None:
        """Loads weights [D, C] and bias [C] (C <= max_classes; the rest is zero) and resets the optimizer."""
        weights, bias = np.asarray(weights, np.float32), np.asarray(bias, np.float32)
        classes = bias.shape[0]
        if weights.shape != (self.embedding_dim, classes) or classes > self.max_classes:
            raise HeadError(
                f"weights {list(weights.shape)} and bias {list(bias.shape)} do not fit a head of "
                f"{self.embedding_dim} inputs and at most {self.max_classes} classes"
            )
        full_w = np.zeros((self.embedding_dim, self.max_classes), np.float32)
        full_b = np.zeros(self.max_classes, np.float32)
        full_w[:, :classes], full_b[:classes] = weights, bias
        self._runners["restore"](weights=full_w, bias=full_b)
        self.num_classes = classes

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(weights [D, C], bias [C]) of the classes in use."""
        out = self._runners["save"]()
        return out["weights"][:, : self.num_classes].copy(), out["bias"][: self.num_classes].copy()

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """Logits [N, C] of the classes in use."""
        embeddings = self._check(embeddings)
        out = self._runners["infer"](embedding=embeddings, class_mask=self._mask())
        return out["logits"][:, : self.num_classes]

    def fit(
        self,
        embeddings: np.ndarray,
        labels: Sequence[int],
        num_classes: int,
        epochs: int = 100,
        learning_rate: float = 0.01,
        weight_decay: float = 1e-4,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> list[float]:
        """Trains the head from zero on embeddings [N, D] with labels in [0, num_classes).

        Args:
          embeddings: float [N, D].
          labels: int [N].
          num_classes: classes in use (<= max_classes).
          epochs: passes over the data.
          learning_rate: Adam's step size.
          weight_decay: the L2 penalty's weight.
          batch_size: examples per step; all of them when None.
          seed: order of the examples in each epoch.

        Returns:
          The mean loss of each epoch.
        """
        embeddings = self._check(embeddings)
        labels = np.asarray(labels, np.int64)
        if not 2 <= num_classes <= self.max_classes:
            raise HeadError(
                f"this head holds 2 to {self.max_classes} classes, asked for {num_classes} "
                f"(re-export with a larger max_classes)"
            )
        if len(labels) != len(embeddings) or len(labels) == 0:
            raise HeadError(f"{len(embeddings)} embeddings and {len(labels)} labels")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise HeadError(
                f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}"
            )
        if epochs < 1 or learning_rate <= 0 or weight_decay < 0:
            raise HeadError(
                f"need epochs >= 1, learning_rate > 0, weight_decay >= 0; got {epochs}, {learning_rate}, "
                f"{weight_decay}"
            )
        self.set_weights(
            np.zeros((self.embedding_dim, num_classes), np.float32),
            np.zeros(num_classes, np.float32),
        )
        one_hot = np.zeros((len(labels), self.max_classes), np.float32)
        one_hot[np.arange(len(labels)), labels] = 1.0
        mask = self._mask()
        batch_size = len(labels) if not batch_size else min(batch_size, len(labels))
        rng = np.random.default_rng(seed)
        lr, wd = np.float32(learning_rate), np.float32(weight_decay)
        history = []
        for _ in range(epochs):
            order = rng.permutation(len(labels))
            losses = []
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                out = self._runners["train"](
                    embedding=embeddings[idx],
                    label=one_hot[idx],
                    class_mask=mask,
                    learning_rate=lr,
                    weight_decay=wd,
                )
                losses.append(float(out["loss"]) * len(idx))
            history.append(sum(losses) / len(order))
        return history
