"""CV-MIM's downstream protocol: a temporal classifier over per-frame pose codes, and single-shot cross-view action
recognition (fit on the clips of one viewpoint, evaluate on the clips of all the others).

Zhao et al., CVPR 2021, section "single-shot cross-view". The classifier is CV-MIM's CONVNET (Conv1D blocks,
`edge_ssl.models.pose_encoder.temporal_classifier`) trained with Adam 5e-3 on cross-entropy; the reference code also
keeps an exponential moving average of the weights, which this does not.
"""

from collections.abc import Sequence

import numpy as np

from edge_ssl.keras import keras
from edge_ssl.models import pose_encoder


def fit_temporal_classifier(
    sequences: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    epochs: int = 150,
    learning_rate: float = 5e-3,
    filters: tuple[int, ...] = (64, 128, 256),
    kernel: int = 7,
    batch_size: int = 32,
    seed: int = 0,
) -> keras.Model:
    """Trains the temporal classifier on sequences [N, T, D] with int labels [N]; returns the fitted model."""
    sequences = np.asarray(sequences, np.float32)
    if sequences.ndim != 3 or len(sequences) != len(labels) or len(sequences) == 0:
        raise ValueError(
            f"need sequences [N, T, D] with N labels, got {sequences.shape} and {len(labels)} labels"
        )
    keras.utils.set_random_seed(seed)
    model = pose_encoder.temporal_classifier(
        num_classes, sequences.shape[1], sequences.shape[2], filters, kernel
    )
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(sequences, np.asarray(labels), epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def single_shot_cross_view(
    sequences: np.ndarray,
    labels: Sequence[int],
    views: Sequence[int],
    num_classes: int,
    train_views: Sequence[int] | None = None,
    **fit_kwargs,
) -> dict:
    """For each training view v: fit on the clips of view v, report accuracy on the clips of every other view.

    Args:
      sequences: float [N, T, D] per-frame codes (or raw normalised keypoints, flattened per frame).
      labels: int [N] action labels in [0, num_classes).
      views: int [N] viewpoint of each clip.
      num_classes: classifier outputs.
      train_views: the views to train on, one at a time (default: every view).
      **fit_kwargs: passed to `fit_temporal_classifier`.

    Returns:
      {"per_view": {view: accuracy on the other views}, "mean": their mean}.
    """
    labels, views = np.asarray(labels), np.asarray(views)
    train_views = sorted(set(views.tolist())) if train_views is None else list(train_views)
    per_view = {}
    for view in train_views:
        train = views == view
        if not train.any() or train.all():
            raise ValueError(f"view {view} must hold some clips but not all of them")
        model = fit_temporal_classifier(sequences[train], labels[train], num_classes, **fit_kwargs)
        per_view[int(view)] = float(model.evaluate(sequences[~train], labels[~train], verbose=0)[1])
    return {"per_view": per_view, "mean": float(np.mean(list(per_view.values())))}
