"""Few-shot episodes: N-way K-shot Q-query sampling with a seed, support and query disjoint.

The fixed-seed protocol of DESIGN.md: the same labels and seed give the same episodes on every machine, so accuracies
(mean with a 95% confidence interval over episodes) compare across models and runs.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Episode:
    """One episode: indices into the labelled set, and labels renumbered 0..ways-1 in `classes` order."""

    classes: np.ndarray  # int [ways], original label of each way
    support: np.ndarray  # int [ways * shots], indices
    support_labels: np.ndarray  # int [ways * shots], in 0..ways-1
    query: np.ndarray  # int [ways * queries], indices
    query_labels: np.ndarray  # int [ways * queries], in 0..ways-1


def _class_name(label: int, class_names: Sequence[str] | None) -> str:
    return f"'{class_names[label]}'" if class_names is not None else f"{label}"


def check_episode_settings(
    labels: Sequence[int],
    ways: int,
    shots: int,
    queries: int,
    class_names: Sequence[str] | None = None,
) -> None:
    """Raises ValueError, naming the classes, when `labels` cannot give `ways`-way `shots`-shot `queries`-query episodes.

    Every class must have `shots + queries` examples: a class with fewer is an error that names it, rather than a class
    that silently never appears.
    """
    if ways < 2 or shots < 1 or queries < 1:
        raise ValueError(
            f"need ways >= 2, shots >= 1, queries >= 1; got {ways}, {shots}, {queries}"
        )
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    short = [(int(c), int(n)) for c, n in zip(classes, counts) if n < shots + queries]
    if short:
        listed = ", ".join(f"{_class_name(c, class_names)} has {n}" for c, n in short)
        raise ValueError(
            f"{shots} shots + {queries} queries need {shots + queries} examples per class; {listed}"
        )
    if len(classes) < ways:
        raise ValueError(f"{ways}-way episodes need {ways} classes; the data has {len(classes)}")


def sample_episode(
    labels: Sequence[int], ways: int, shots: int, queries: int, rng: np.random.Generator
) -> Episode:
    """Draws one episode: `ways` classes, then `shots` support and `queries` query examples from each, disjoint."""
    labels = np.asarray(labels)
    check_episode_settings(labels, ways, shots, queries)
    classes = np.sort(rng.choice(np.unique(labels), size=ways, replace=False))
    support, support_labels, query, query_labels = [], [], [], []
    for way, label in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == label))
        support.append(members[:shots])
        query.append(members[shots : shots + queries])
        support_labels.append(np.full(shots, way))
        query_labels.append(np.full(queries, way))
    return Episode(
        classes=classes,
        support=np.concatenate(support),
        support_labels=np.concatenate(support_labels),
        query=np.concatenate(query),
        query_labels=np.concatenate(query_labels),
    )


def sample_episodes(
    labels: Sequence[int],
    num_episodes: int,
    ways: int,
    shots: int,
    queries: int,
    seed: int,
    class_names: Sequence[str] | None = None,
) -> list[Episode]:
    """`num_episodes` episodes drawn from one seeded generator (the fixed-seed protocol)."""
    check_episode_settings(labels, ways, shots, queries, class_names)
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    rng = np.random.default_rng(seed)
    return [sample_episode(labels, ways, shots, queries, rng) for _ in range(num_episodes)]
