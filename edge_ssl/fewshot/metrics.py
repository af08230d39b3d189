"""Metrics of a representation: k-NN accuracy, the spread of its embeddings, mean accuracy with a 95% confidence
interval."""

import math
from collections.abc import Sequence

import numpy as np

from export import parity


def knn_accuracy(
    embeddings: np.ndarray,
    labels: Sequence[int],
    groups: Sequence[int] | None = None,
    k: int = 5,
) -> float:
    """Leave-one-out k-nearest-neighbour accuracy by cosine similarity (majority vote, ties to the nearest).

    Args:
      embeddings: float [N, D]; rows are L2-normalised here.
      labels: int [N].
      groups: int [N] or None. Neighbours from the query's own group never vote: clips of one performance seen by
        several cameras would otherwise find each other by appearance, not by what the representation learned.
      k: neighbours per vote.

    Returns:
      The fraction of items whose vote equals their label.
    """
    x = np.asarray(embeddings, np.float64)
    x = parity.l2_normalize(x)
    labels = np.asarray(labels)
    groups = np.arange(len(x)) if groups is None else np.asarray(groups)
    if len(x) != len(labels) or len(x) != len(groups):
        raise ValueError(
            f"embeddings, labels and groups differ in length: {len(x)}, {len(labels)}, {len(groups)}"
        )
    sims = x @ x.T
    sims[groups[:, None] == groups[None, :]] = -np.inf
    correct = 0
    for i in range(len(x)):
        order = np.argsort(-sims[i], kind="stable")
        order = order[np.isfinite(sims[i, order])][:k]
        if len(order) == 0:
            raise ValueError("every item shares its group with all others: nothing to compare with")
        votes = labels[order]
        values, counts = np.unique(votes, return_counts=True)
        winners = set(values[counts == counts.max()])
        prediction = next(v for v in votes if v in winners)  # ties: the nearest winner
        correct += int(prediction == labels[i])
    return correct / len(x)


def spread(embeddings: np.ndarray) -> float:
    """1 - |mean of the unit-normalised rows|^2: the mean squared distance of the unit rows from their centroid.

    0 when every row points one way (collapsed features, or targets that cosine regression can only learn the common
    direction of), up to 1 for rows spread evenly over the sphere.
    """
    x = parity.l2_normalize(np.asarray(embeddings, np.float64))
    return float(1.0 - np.sum(np.square(x.mean(axis=0))))


def mean_with_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (normal approximation, 1.96 standard errors)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        raise ValueError("no values")
    if values.size == 1:
        return float(values[0]), 0.0
    return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(values.size))
