"""Cross and Learn's objective: cross-modal cosine similarity plus within-modality diversity.

Sayed, Brattoli and Ommer, "Cross and Learn: Cross-Modal Self-Supervision", GCPR 2018. For a tuple of two pairs
{(r1, o1), (r2, o2)} from two videos (r: RGB feature, o: motion feature), with cosine similarity
s(a, b) = a.b / (sqrt(|a|^2 + eps) sqrt(|b|^2 + eps)), eps = 1e-4, and distance d = 1 - s:

    L_cross = 1/2 [d(r1, o1) + d(r2, o2)]               (pull paired modalities together)
    L_div   = -1/2 [d(r1, r2) + d(o1, o2)]               (push same-modality features of different pairs apart)
    L       = w L_cross + (1 - w) L_div,  w = 0.5

The batch variant treats every other item of the (global) batch as a diversity negative instead of only the tuple's
other pair.
"""

import tensorflow as tf

from edge_ssl.losses import distributed

EPSILON = 1e-4
WEIGHT_CROSS = 0.5


def cosine_similarity(a: tf.Tensor, b: tf.Tensor, epsilon: float = EPSILON) -> tf.Tensor:
    """Row-wise s(a, b) = a.b / (sqrt(|a|^2 + eps) sqrt(|b|^2 + eps)); [B, D], [B, D] -> [B]."""
    dot = tf.reduce_sum(a * b, axis=-1)
    norms = tf.sqrt(tf.reduce_sum(tf.square(a), -1) + epsilon) * tf.sqrt(
        tf.reduce_sum(tf.square(b), -1) + epsilon
    )
    return dot / norms


def _normalize(x: tf.Tensor, epsilon: float) -> tf.Tensor:
    return x / tf.sqrt(tf.reduce_sum(tf.square(x), -1, keepdims=True) + epsilon)


def tuple_losses(
    r1: tf.Tensor,
    o1: tf.Tensor,
    r2: tf.Tensor,
    o2: tf.Tensor,
    weight_cross: float = WEIGHT_CROSS,
    epsilon: float = EPSILON,
) -> dict[str, tf.Tensor]:
    """The faithful two-pair loss, per tuple.

    Args:
      r1, o1, r2, o2: float [B, D] features of the RGB and motion inputs of pairs 1 and 2 (different videos).
      weight_cross: w in L = w L_cross + (1 - w) L_div.
      epsilon: the cosine's epsilon.

    Returns:
      Per-tuple float [B] values: `cross` (L_cross), `div` (L_div) and `total`.
    """
    cross = 0.5 * (
        (1.0 - cosine_similarity(r1, o1, epsilon)) + (1.0 - cosine_similarity(r2, o2, epsilon))
    )
    div = -0.5 * (
        (1.0 - cosine_similarity(r1, r2, epsilon)) + (1.0 - cosine_similarity(o1, o2, epsilon))
    )
    return {"cross": cross, "div": div, "total": weight_cross * cross + (1.0 - weight_cross) * div}


def batch_losses(
    r: tf.Tensor, o: tf.Tensor, weight_cross: float = WEIGHT_CROSS, epsilon: float = EPSILON
) -> dict[str, tf.Tensor]:
    """The batch variant, per pair: every other item of the global batch is a diversity negative.

    L_cross(i) = d(r_i, o_i); L_div(i) = -1/2 [mean_{j != i} d(r_i, r_j) + mean_{j != i} d(o_i, o_j)], with j over the
    batch gathered from all replicas (each replica's own rows keep their gradients).

    Args:
      r, o: float [B, D] RGB and motion features of B pairs, one pair per video.
      weight_cross: w in L = w L_cross + (1 - w) L_div.
      epsilon: the cosine's epsilon.

    Returns:
      Per-pair float [B] values: `cross`, `div` and `total`.
    """
    cross = 1.0 - cosine_similarity(r, o, epsilon)
    all_r, offset = distributed.gather_across_replicas(r)
    all_o, _ = distributed.gather_across_replicas(o)
    local = tf.shape(r)[0]
    total = tf.shape(all_r)[0]
    others = 1.0 - tf.one_hot(tf.range(local) + offset, total)  # [B, N]: 0 at each item itself
    count = tf.maximum(tf.reduce_sum(others, axis=1), 1.0)

    def mean_distance(x, all_x):
        sims = tf.matmul(_normalize(x, epsilon), _normalize(all_x, epsilon), transpose_b=True)
        return tf.reduce_sum((1.0 - sims) * others, axis=1) / count

    div = -0.5 * (mean_distance(r, all_r) + mean_distance(o, all_o))
    return {"cross": cross, "div": div, "total": weight_cross * cross + (1.0 - weight_cross) * div}
