"""Few-shot heads on embeddings: nearest prototype and a linear softmax classifier trained inside LiteRT.

Both are linear maps, logits = embedding @ W + b, so either one is appended to an exported model as one
FULLY_CONNECTED op (`export.classifier.attach_head`):
- `prototype`: W holds the class means of the support embeddings, L2-normalised and scaled by `PROTOTYPE_SCALE`
  (cosine similarity to each prototype; the scale only sharpens the softmax), b = 0. Snell et al.'s prototypical
  classifier with cosine distance; no training.
- `linear`: softmax regression with weight decay and Adam, run by `export.trainable_head.HeadTrainer` in the LiteRT
  interpreter (builtin ops only), so it trains where TensorFlow is not installed.
"""

import os

import numpy as np

from export import layout, parity, trainable_head

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
) -> trainable_head.HeadTrainer:
    """The LiteRT head trainer: the artifact's `head_trainer.tflite`, else one built here (needs TensorFlow) and
    kept in `cache_dir`.

    Raises:
      trainable_head.HeadError: the artifact has none that fits, and TensorFlow is not installed to build one.
    """
    shipped = layout.ArtifactDir(artifact_dir).head_trainer
    if os.path.exists(shipped):
        trainer = trainable_head.HeadTrainer(shipped)
        if trainer.embedding_dim == embedding_dim and trainer.max_classes >= num_classes:
            return trainer
    max_classes = max(trainable_head.DEFAULT_MAX_CLASSES, num_classes)
    cached = None
    if cache_dir:
        cached = os.path.join(cache_dir, f"head_trainer_{embedding_dim}x{max_classes}.tflite")
        if os.path.exists(cached):
            return trainable_head.HeadTrainer(cached)
    try:
        content = trainable_head.build(embedding_dim, max_classes)
    except ImportError as e:
        raise trainable_head.HeadError(
            f"{artifact_dir} has no {layout.HEAD_TRAINER} for {embedding_dim}-d embeddings and "
            f"{num_classes} classes, and TensorFlow is not installed to build one: re-export the model "
            "(python -m export writes it) or use --head=prototype"
        ) from e
    if cached:
        os.makedirs(cache_dir, exist_ok=True)
        with open(cached, "wb") as f:
            f.write(content)
    return trainable_head.HeadTrainer(content)


def logits(weights: np.ndarray, bias: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """embeddings [N, D] @ W + b."""
    return np.asarray(embeddings, np.float32) @ weights + bias
