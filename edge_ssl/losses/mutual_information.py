"""Mutual-information estimators of CV-MIM: the Jensen-Shannon (f-divergence) contrastive bound, CLUB, and the
uniform-prior discriminator's losses with its R1 penalty.

Zhao et al., "Learning View-Disentangled Human Pose Representation by Contrastive Cross-View Mutual Information
Maximization", CVPR 2021.

JSD estimator (Hjelm et al.'s DIM form): with scores T_ij = <L_i, G_j> (raw dot products, no temperature),
    E+ = log 2 - softplus(-T_ii)        (positives: the diagonal)
    E- = softplus(T_ij) - log 2          (negatives: i != j)
    loss = mean_{i != j} E- - mean_i E+  = mean softplus(-T_ii) + mean_{i != j} softplus(T_ij) - 2 log 2.

CLUB (Cheng et al. 2020) upper bound on I(x; y) with a diagonal Gaussian q(y | x) = N(mu(x), exp(logvar(x))):
    l(y | x) = mean_d [-(y - mu)^2 / (2 exp(logvar)) - logvar / 2]
    CLUB = max(0, mean_i l(y_i | x_i) - mean_{i != j} l(y_j | x_i)).

Uniform prior (adversarial smoothness): fake f = sigmoid([z_p, z_v]), real r ~ U(0, 1);
    L_D = 1/2 [softplus(-D(r)) + softplus(D(f))] + 1/2 [R1(r) + R1(f)],  R1(x) = |dD/dx|^2
    L_prior = softplus(-D(f))  (the encoder's non-saturating loss).
Every function returns per-example values (reduce with `distributed.global_mean`); the batch statistics (negatives
over all other items) are taken over the global batch, gathered from every replica, so a step does not depend on how
the batch is split. CLUB's floor applies to its global mean (`club_upper_bound`).
"""

import math
from collections.abc import Callable

import tensorflow as tf

from edge_ssl.losses import distributed

LOG2 = math.log(2.0)


def _off_diagonal(scores: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """Mask [B_local, B_global]: 0 where column j is row i's own pair (j = offset + i), 1 elsewhere."""
    local = tf.shape(scores)[0]
    return 1.0 - tf.one_hot(tf.range(local) + offset, tf.shape(scores)[1], dtype=scores.dtype)


def jsd_contrastive(local: tf.Tensor, global_: tf.Tensor) -> tf.Tensor:
    """The JSD estimator's loss per example: softplus(-T_ii) + mean_{j != i} softplus(T_ij) - 2 log 2.

    Its mean over the batch is the estimator's loss above (every row has the same number of negatives). Under a
    strategy, `global_` is gathered from all replicas, so the negatives are the whole global batch.

    Args:
      local: float [B, D]; row i pairs with `global_` row i.
      global_: float [B, D].

    Returns:
      float32 [B] (lower means more mutual information). Needs a global batch of at least 2.
    """
    all_global, offset = distributed.gather_across_replicas(global_)
    scores = tf.matmul(local, all_global, transpose_b=True)  # [B, N]
    mask = _off_diagonal(scores, offset)
    positive = tf.nn.softplus(-tf.reduce_sum(scores * (1.0 - mask), axis=1))
    negative = tf.reduce_sum(tf.nn.softplus(scores) * mask, axis=1) / tf.maximum(
        tf.reduce_sum(mask, axis=1), 1.0
    )
    return positive + negative - 2.0 * LOG2


def gaussian_log_likelihood(y: tf.Tensor, mu: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """l(y | x) per example: mean over dimensions of -(y - mu)^2 / (2 exp(logvar)) - logvar / 2; [B, D] -> [B]."""
    return tf.reduce_mean(-tf.square(y - mu) / (2.0 * tf.exp(logvar)) - 0.5 * logvar, axis=-1)


def club_terms(y: tf.Tensor, mu: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """CLUB's per-example terms: l(y_i | x_i) - mean_{j != i} l(y_j | x_i), with y gathered from all replicas.

    Args:
      y: float [B, D], the variable whose information about x is bounded.
      mu, logvar: float [B, D], q(y | x_i)'s parameters for each x_i.

    Returns:
      float32 [B]; CLUB is max(0, their mean over the global batch), see `club_upper_bound`.
    """
    all_y, offset = distributed.gather_across_replicas(y)
    # pairs[i, j] = l(y_j | x_i)
    diff = all_y[None, :, :] - mu[:, None, :]
    pairs = tf.reduce_mean(
        -tf.square(diff) / (2.0 * tf.exp(logvar[:, None, :])) - 0.5 * logvar[:, None, :], -1
    )
    mask = _off_diagonal(pairs, offset)
    negative = tf.reduce_sum(pairs * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
    return gaussian_log_likelihood(y, mu, logvar) - negative


def club_upper_bound(
    y: tf.Tensor, mu: tf.Tensor, logvar: tf.Tensor, global_batch_size: int | tf.Tensor | None = None
) -> tf.Tensor:
    """CLUB = max(0, mean of `club_terms` over the global batch), returned as this replica's share of it.

    The floor applies to the global mean, not to each replica's part, so the shares summed over replicas are the
    one-device value.
    """
    share = distributed.global_mean(club_terms(y, mu, logvar), global_batch_size)
    total, replicas = distributed.sum_across_replicas(share)
    return tf.maximum(total, 0.0) / tf.cast(replicas, tf.float32)


def r1_penalty(discriminator: Callable[[tf.Tensor], tf.Tensor], x: tf.Tensor) -> tf.Tensor:
    """R1(x) = |dD/dx|^2 per example, for a discriminator `D: [B, D] -> [B, 1]`; [B, D] -> [B].

    Computed with its own tape on a stop-gradient copy of x, so the penalty trains D, not what made x.
    """
    x = tf.stop_gradient(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(discriminator(x))
    grad = tape.gradient(score, x)
    return tf.reduce_sum(tf.square(grad), axis=-1)


def discriminator_loss(
    discriminator: Callable[[tf.Tensor], tf.Tensor],
    real: tf.Tensor,
    fake: tf.Tensor,
    r1_weight: float = 1.0,
) -> tf.Tensor:
    """L_D per example: 1/2 [softplus(-D(real)) + softplus(D(fake))] + r1_weight / 2 [R1(real) + R1(fake)]."""
    fake = tf.stop_gradient(fake)
    adversarial = 0.5 * (
        tf.nn.softplus(-discriminator(real))[:, 0] + tf.nn.softplus(discriminator(fake))[:, 0]
    )
    penalty = 0.5 * (r1_penalty(discriminator, real) + r1_penalty(discriminator, fake))
    return adversarial + r1_weight * penalty


def prior_loss(discriminator: Callable[[tf.Tensor], tf.Tensor], fake: tf.Tensor) -> tf.Tensor:
    """The encoder's non-saturating loss against the discriminator, per example: softplus(-D(fake))."""
    return tf.nn.softplus(-discriminator(fake))[:, 0]
