"""Parity of an exported artifact against its Keras model: how far the embeddings moved, and whether it matters.

For N held-out clips with labels, both models embed every clip; the figures are the maximum absolute difference, the
mean and the minimum cosine similarity of the embedding pairs, and the top-1 agreement of nearest-prototype
classification (prototypes: each class's mean Keras embedding; each clip classified by both models against the same
prototypes). Thresholds (defaults as in issue 8: fp32 max abs <= 1e-4; fp16 cosine >= 0.999; int8 cosine >= 0.98
and top-1 agreement >= 97%) decide whether an artifact passes.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Thresholds:
    max_abs: float | None = None  # the largest allowed absolute difference
    min_cosine: float | None = None  # the smallest allowed mean cosine similarity
    min_agreement: float | None = None  # the smallest allowed top-1 agreement (fraction)


DEFAULT_THRESHOLDS = {
    "fp32": Thresholds(max_abs=1e-4),
    "fp16": Thresholds(min_cosine=0.999),
    "dynamic": Thresholds(min_cosine=0.99),
    "int8": Thresholds(min_cosine=0.98, min_agreement=0.97),
}


@dataclasses.dataclass(frozen=True)
class Parity:
    count: int
    max_abs: float
    mean_cosine: float
    min_cosine: float
    agreement: float | None  # None without labels

    def failures(self, thresholds: Thresholds) -> list[str]:
        """What exceeds `thresholds`, as sentences; empty when the artifact passes."""
        out = []
        if thresholds.max_abs is not None and self.max_abs > thresholds.max_abs:
            out.append(f"max abs difference {self.max_abs:.3g} > {thresholds.max_abs:.3g}")
        if thresholds.min_cosine is not None and self.mean_cosine < thresholds.min_cosine:
            out.append(f"mean cosine {self.mean_cosine:.5f} < {thresholds.min_cosine}")
        if (
            thresholds.min_agreement is not None
            and self.agreement is not None
            and self.agreement < thresholds.min_agreement
        ):
            out.append(f"top-1 agreement {self.agreement:.1%} < {thresholds.min_agreement:.0%}")
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows (the last axis) scaled to unit length; an all-zero row stays zero."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def compare(
    reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None
) -> Parity:
    """Parity of `candidate` embeddings [N, D] against `reference` ones (the Keras model's), optionally labelled.

    Raises:
      ValueError: shapes differ, or nothing to compare.
    """
    reference = np.asarray(reference, np.float64)
    candidate = np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape or reference.ndim != 2 or not len(reference):
        raise ValueError(
            f"parity needs two [N, D] arrays of one shape, got {reference.shape} and {candidate.shape}"
        )
    cosine = np.sum(l2_normalize(reference) * l2_normalize(candidate), axis=-1)
    agreement = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(reference),):
            raise ValueError(f"labels must be [{len(reference)}], got {labels.shape}")
        classes = np.unique(labels)
        prototypes = l2_normalize(np.stack([reference[labels == c].mean(axis=0) for c in classes]))
        ref_top = np.argmax(l2_normalize(reference) @ prototypes.T, axis=-1)
        cand_top = np.argmax(l2_normalize(candidate) @ prototypes.T, axis=-1)
        agreement = float(np.mean(ref_top == cand_top))
    return Parity(
        count=len(reference),
        max_abs=float(np.max(np.abs(reference - candidate))),
        mean_cosine=float(np.mean(cosine)),
        min_cosine=float(np.min(cosine)),
        agreement=agreement,
    )
