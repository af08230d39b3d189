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
Every function returns per-example values (reduce with `distributed.global_mean`), except where a batch statistic
(the off-diagonal means) makes the value a property of the whole batch; those say so.
"""

import math
from collections.abc import Callable

import tensorflow as tf

LOG2 = math.log(2.0)


def _off_diagonal_mask(n: tf.Tensor) -> tf.Tensor:
    return 1.0 - tf.eye(n)


def jsd_contrastive(local: tf.Tensor, global_: tf.Tensor) -> tf.Tensor:
    """The JSD estimator's loss for one batch (a scalar: it averages over the batch's positive and negative pairs).

    Args:
      local: float [B, D]; row i pairs with `global_` row i.
      global_: float [B, D].

    Returns:
      A float32 scalar, the loss above (lower means more mutual information). Needs B >= 2.
    """
    scores = tf.matmul(local, global_, transpose_b=True)  # [B, B]
    n = tf.shape(scores)[0]
    positive = tf.reduce_mean(tf.nn.softplus(-tf.linalg.diag_part(scores)))
    mask = _off_diagonal_mask(n)
    negative = tf.reduce_sum(tf.nn.softplus(scores) * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
    return positive + negative - 2.0 * LOG2


def gaussian_log_likelihood(y: tf.Tensor, mu: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """l(y | x) per example: mean over dimensions of -(y - mu)^2 / (2 exp(logvar)) - logvar / 2; [B, D] -> [B]."""
    return tf.reduce_mean(-tf.square(y - mu) / (2.0 * tf.exp(logvar)) - 0.5 * logvar, axis=-1)


def club_upper_bound(y: tf.Tensor, mu: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """CLUB for one batch (a scalar): positive log-likelihoods minus those of all mismatched pairs, floored at 0.

    Args:
      y: float [B, D], the variable whose information about x is bounded.
      mu, logvar: float [B, D], q(y | x_i)'s parameters for each x_i.

    Returns:
      A float32 scalar >= 0.
    """
    positive = tf.reduce_mean(gaussian_log_likelihood(y, mu, logvar))
    # all_pairs[i, j] = l(y_j | x_i)
    diff = y[None, :, :] - mu[:, None, :]
    all_pairs = tf.reduce_mean(
        -tf.square(diff) / (2.0 * tf.exp(logvar[:, None, :])) - 0.5 * logvar[:, None, :], -1
    )
    mask = _off_diagonal_mask(tf.shape(y)[0])
    negative = tf.reduce_sum(all_pairs * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
    return tf.maximum(positive - negative, 0.0)


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
