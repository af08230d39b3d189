"""Parity of an exported artifact against its Keras model: how far the embeddings moved, and whether it matters.

For N held-out clips with labels, both models embed every clip; the figures are the maximum absolute difference, the
mean and the minimum cosine similarity of the embedding pairs, the top-1 agreement of nearest-prototype
classification (prototypes: each class's mean Keras embedding; each clip classified by both models against the same
prototypes), and the few-shot accuracy each model reaches on its own: every clip classified by the nearest of its
model's class means over the other clips (leave one out), as a user's prototype head would be fitted on that model.
The accuracy drop is the paired difference (Keras minus artifact) over the clips, with its 95% confidence interval.

Thresholds decide whether an artifact passes (defaults: fp32 max abs <= 1e-4; fp16 cosine >= 0.999; int8 cosine
>= 0.98 and an accuracy drop not significantly above 3 points). Agreement is reported, and gated only when asked
(`min_agreement`): where classes lie close together, int8 rounding flips nearest-prototype decisions between them
without making the model worse (a 60-step tiny student: 93.8% agreement), so it failed exports that kept their
quality; the accuracy drop fails an export only when int8 makes the model measurably worse.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Thresholds:
    max_abs: float | None = None  # the largest allowed absolute difference
    min_cosine: float | None = None  # the smallest allowed mean cosine similarity
    min_agreement: float | None = None  # the smallest allowed top-1 agreement (fraction)
    # The largest allowed few-shot accuracy drop (fraction); the artifact fails only when the drop's 95% confidence
    # interval lies wholly above it.
    max_accuracy_drop: float | None = None


DEFAULT_THRESHOLDS = {
    "fp32": Thresholds(max_abs=1e-4),
    "fp16": Thresholds(min_cosine=0.999),
    "dynamic": Thresholds(min_cosine=0.99),
    "int8": Thresholds(min_cosine=0.98, max_accuracy_drop=0.03),
}


@dataclasses.dataclass(frozen=True)
class Parity:
    count: int
    max_abs: float
    mean_cosine: float
    min_cosine: float
    agreement: float | None  # None without labels
    accuracy: float | None = (
        None  # the Keras model's leave-one-out nearest-prototype accuracy; None without labels
    )
    candidate_accuracy: float | None = None  # the artifact's, with prototypes of its own embeddings
    accuracy_drop: float | None = None  # accuracy - candidate_accuracy (paired over the clips)
    accuracy_drop_ci95: float | None = None  # half-width of its 95% confidence interval

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
        if (
            thresholds.max_accuracy_drop is not None
            and self.accuracy_drop is not None
            and self.accuracy_drop - self.accuracy_drop_ci95 > thresholds.max_accuracy_drop
        ):
            out.append(
                f"few-shot accuracy drop {self.accuracy_drop:.1%} ± {self.accuracy_drop_ci95:.1%} "
                f"({self.accuracy:.1%} -> {self.candidate_accuracy:.1%}) > {thresholds.max_accuracy_drop:.0%}"
            )
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows (the last axis) scaled to unit length; an all-zero row stays zero."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def prototype_hits(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """bool [N]: whether each row's nearest class mean (by cosine, the class means of the other rows: leave one out)
    is its own class. A class with one row is judged on the other classes alone."""
    x = l2_normalize(np.asarray(embeddings, np.float64))
    classes, index = np.unique(labels, return_inverse=True)
    sums = np.stack([x[index == c].sum(axis=0) for c in range(len(classes))])  # [C, D]
    counts = np.bincount(index, minlength=len(classes)).astype(np.float64)
    # Each row's view of the class means: its own class without itself.
    means = np.broadcast_to(sums, (len(x),) + sums.shape).copy()  # [N, C, D]
    means[np.arange(len(x)), index] -= x
    own = counts[index] - 1
    scale = np.broadcast_to(counts, (len(x), len(classes))).copy()
    scale[np.arange(len(x)), index] = own
    similarity = np.einsum("nd,ncd->nc", x, l2_normalize(means))
    similarity[scale == 0] = -np.inf  # a class with nothing left to average
    return np.argmax(similarity, axis=1) == index


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
        hits = prototype_hits(reference, labels).astype(np.float64)
        candidate_hits = prototype_hits(candidate, labels).astype(np.float64)
        drop = hits - candidate_hits
        ci95 = 1.96 * float(np.std(drop, ddof=1)) / np.sqrt(len(drop)) if len(drop) > 1 else 0.0
        accuracy = dict(
            accuracy=float(np.mean(hits)),
            candidate_accuracy=float(np.mean(candidate_hits)),
            accuracy_drop=float(np.mean(drop)),
            accuracy_drop_ci95=ci95,
        )
    else:
        accuracy = {}
    return Parity(
        count=len(reference),
        max_abs=float(np.max(np.abs(reference - candidate))),
        mean_cosine=float(np.mean(cosine)),
        min_cosine=float(np.min(cosine)),
        agreement=agreement,
        **accuracy,
    )
