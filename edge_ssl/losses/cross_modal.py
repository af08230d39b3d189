"""Cross and Learn's objective: cross-modal cosine similarity plus within-modality diversity.

Sayed, Brattoli and Ommer, "Cross and Learn: Cross-Modal Self-Supervision", GCPR 2018. For a tuple of two pairs
{(r1, o1), (r2, o2)} from two videos (r: RGB feature, o: motion feature), with cosine similarity
s(a, b) = a.b / (sqrt(|a|^2 + eps) sqrt(|b|^2 + eps)), eps = 1e-4, and distance d = 1 - s, the paper's terms are

    L_cross = 1/2 [d(r1, o1) + d(r2, o2)]               (pull paired modalities together)
    L_div   = -1/2 [d(r1, r2) + d(o1, o2)]               (push same-modality features of different pairs apart)

and the authors' code (`Experiment_pretraining_fm._get_loss`) minimises, averaged over tuples,

    L = (1 - w) [s(r1, r2) + s(o1, o2)] - w [s(r1, o1) + s(r2, o2)],  w = 0.5
      = 2 [w L_cross + (1 - w) L_div] + 2 - 4 w

the false pairs' minus the true pairs' similarity (at w = 0.5, their means). `total` is that L, value and gradient:
w L_cross + (1 - w) L_div alone is half of it, which under SGD halves the learning rate.

The batch variant treats every other item of the (global) batch as a diversity negative instead of only the tuple's
other pair, scaled so that a batch of one tuple gives the tuple loss.
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
      weight_cross: w in L = (1 - w) [s(r1, r2) + s(o1, o2)] - w [s(r1, o1) + s(r2, o2)].
      epsilon: the cosine's epsilon.

    Returns:
      Per-tuple float [B] values: `cross` (L_cross), `div` (L_div) and `total` (L, what is minimised).
    """
    true_1 = cosine_similarity(r1, o1, epsilon)
    true_2 = cosine_similarity(r2, o2, epsilon)
    false_rgb = cosine_similarity(r1, r2, epsilon)
    false_motion = cosine_similarity(o1, o2, epsilon)
    return {
        "cross": 0.5 * ((1.0 - true_1) + (1.0 - true_2)),
        "div": -0.5 * ((1.0 - false_rgb) + (1.0 - false_motion)),
        "total": (1.0 - weight_cross) * (false_rgb + false_motion)
        - weight_cross * (true_1 + true_2),
    }


def batch_losses(
    r: tf.Tensor, o: tf.Tensor, weight_cross: float = WEIGHT_CROSS, epsilon: float = EPSILON
) -> dict[str, tf.Tensor]:
    """The batch variant, per pair: every other item of the global batch is a diversity negative.

    With means over j != i of the batch gathered from all replicas (each replica's own rows keep their gradients):
    L_cross(i) = d(r_i, o_i); L_div(i) = -1/2 [mean_j d(r_i, r_j) + mean_j d(o_i, o_j)];
    L(i) = (1 - w) [mean_j s(r_i, r_j) + mean_j s(o_i, o_j)] - 2 w s(r_i, o_i), so that the mean of L over a batch of
    one tuple (two pairs) is that tuple's `tuple_losses` L: one pair is half a tuple.

    Args:
      r, o: float [B, D] RGB and motion features of B pairs, one pair per video.
      weight_cross: w, as in `tuple_losses`.
      epsilon: the cosine's epsilon.

    Returns:
      Per-pair float [B] values: `cross`, `div` and `total` (L, what is minimised).
    """
    true = cosine_similarity(r, o, epsilon)
    all_r, offset = distributed.gather_across_replicas(r)
    all_o, _ = distributed.gather_across_replicas(o)
    local = tf.shape(r)[0]
    size = tf.shape(all_r)[0]
    others = 1.0 - tf.one_hot(tf.range(local) + offset, size)  # [B, N]: 0 at each item itself
    count = tf.maximum(tf.reduce_sum(others, axis=1), 1.0)

    def mean_similarity(x, all_x):
        sims = tf.matmul(_normalize(x, epsilon), _normalize(all_x, epsilon), transpose_b=True)
        return tf.reduce_sum(sims * others, axis=1) / count

    false_rgb = mean_similarity(r, all_r)
    false_motion = mean_similarity(o, all_o)
    return {
        "cross": 1.0 - true,
        "div": -0.5 * ((1.0 - false_rgb) + (1.0 - false_motion)),
        "total": (1.0 - weight_cross) * (false_rgb + false_motion) - 2.0 * weight_cross * true,
    }
