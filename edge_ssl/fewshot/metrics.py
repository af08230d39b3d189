"""Metrics of a representation: k-NN accuracy, how collapsed its embeddings are (spread, dead rows and units), mean
accuracy with a 95% confidence interval."""

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from export.runtime import parity


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


@dataclasses.dataclass(frozen=True)
class Collapse:
    """How collapsed a set of embeddings [N, D] is.

    Attributes:
      spread: 1 - |mean of the unit-normalised rows|^2 over the rows that are not all zero: the mean squared distance
        of those unit rows from their centroid. 0 when every such row points one way (collapsed features, or targets
        that cosine regression can only learn the common direction of) or when every row is zero; up to 1 for rows
        spread evenly over the sphere.
      dead_rows: the fraction of rows that are all zero (a dead ReLU layer's output for those inputs).
      dead_units: the fraction of columns that are zero in every row (units that never fire).
    """

    spread: float
    dead_rows: float
    dead_units: float


def collapse(embeddings: np.ndarray) -> Collapse:
    """Spread and dead rows and units of `embeddings` [N, D] (see `Collapse`); zero means exactly zero.

    All-zero rows have no direction: left in, each would pull the centroid towards 0 and read as spread, so that a
    representation whose ReLUs died for every input would score the largest spread of all.
    """
    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"embeddings must be [N, D] with N >= 1, got shape {x.shape}")
    live = np.any(x != 0.0, axis=1)
    if live.any():
        unit = parity.l2_normalize(x[live])
        spread_value = float(1.0 - np.sum(np.square(unit.mean(axis=0))))
    else:
        spread_value = 0.0
    return Collapse(
        spread=spread_value,
        dead_rows=float(1.0 - live.mean()),
        dead_units=float(np.mean(np.all(x == 0.0, axis=0))),
    )


def spread(embeddings: np.ndarray) -> float:
    """`collapse(embeddings).spread`: 1 - |mean of the unit rows|^2 over the rows that are not all zero."""
    return collapse(embeddings).spread


def mean_with_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (normal approximation, 1.96 standard errors)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        raise ValueError("no values")
    if values.size == 1:
        return float(values[0]), 0.0
    return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(values.size))
