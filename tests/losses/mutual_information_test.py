"""Tests for edge_ssl.losses.mutual_information: hand-computed JSD, CLUB and R1 values."""

import math

import numpy as np
import tensorflow as tf

from edge_ssl.losses import mutual_information as mi


def _softplus(x):
    return np.log1p(np.exp(x))


class MutualInformationTest(tf.test.TestCase):

    def test_jsd_contrastive_by_hand(self):
        local = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
        glob = np.array([[3.0, 1.0], [1.0, -1.0]], np.float32)
        t = local @ glob.T  # [[3, 1], [2, -2]]
        expected = (
            np.mean(_softplus(-np.diag(t)))
            + np.mean(_softplus(np.array([t[0, 1], t[1, 0]])))
            - 2 * math.log(2)
        )
        self.assertAllClose(tf.reduce_mean(mi.jsd_contrastive(local, glob)), expected, rtol=1e-6)
        per_example = [_softplus(-3.0) + _softplus(1.0), _softplus(2.0) + _softplus(2.0)]
        self.assertAllClose(
            mi.jsd_contrastive(local, glob), np.array(per_example) - 2 * math.log(2), rtol=1e-6
        )

    def test_jsd_rewards_matching_pairs(self):
        x = tf.random.stateless_normal([8, 16], seed=[1, 1]) * 3.0
        matched = tf.reduce_mean(mi.jsd_contrastive(x, x))
        shuffled = tf.reduce_mean(mi.jsd_contrastive(x, tf.roll(x, 1, axis=0)))
        self.assertLess(float(matched), float(shuffled))

    def test_gaussian_log_likelihood_by_hand(self):
        y = np.array([[1.0, 2.0]], np.float32)
        mu = np.array([[0.0, 2.0]], np.float32)
        logvar = np.array([[0.0, math.log(4.0)]], np.float32)
        expected = np.mean([-1.0 / 2.0 - 0.0, -0.0 - math.log(4.0) / 2])
        self.assertAllClose(mi.gaussian_log_likelihood(y, mu, logvar), [expected])

    def test_club_by_hand_and_floor_at_zero(self):
        y = np.array([[1.0], [-1.0]], np.float32)
        mu = np.array([[1.0], [-1.0]], np.float32)  # q predicts each y exactly
        logvar = np.zeros((2, 1), np.float32)
        # positives: l = 0; negatives: l(y_1 | x_0) = l(y_0 | x_1) = -(2^2)/2 = -2; CLUB = 0 - (-2) = 2.
        self.assertAllClose(mi.club_terms(y, mu, logvar), [2.0, 2.0])
        self.assertAllClose(mi.club_upper_bound(y, mu, logvar), 2.0)
        # A q that matches the wrong pairs gives a negative difference, floored at 0.
        self.assertAllClose(mi.club_upper_bound(y, -mu, logvar), 0.0)

    def test_r1_penalty_of_a_linear_discriminator_is_its_squared_weight_norm(self):
        w = tf.constant([[2.0], [-1.0], [0.5]])
        d = lambda x: tf.matmul(x, w)  # noqa: E731
        x = tf.random.stateless_uniform([4, 3], seed=[2, 2])
        self.assertAllClose(mi.r1_penalty(d, x), np.full(4, 4.0 + 1.0 + 0.25))

    def test_discriminator_and_prior_losses_by_hand(self):
        d = lambda x: tf.reduce_sum(x, axis=1, keepdims=True)  # noqa: E731  D(x) = sum(x), R1 = dim
        real = tf.constant([[0.5, 0.5]])
        fake = tf.constant([[0.1, 0.2]])
        expected = 0.5 * (_softplus(-1.0) + _softplus(0.3)) + 0.5 * (2.0 + 2.0)
        self.assertAllClose(mi.discriminator_loss(d, real, fake), [expected], rtol=1e-6)
        self.assertAllClose(mi.prior_loss(d, fake), [_softplus(-0.3)], rtol=1e-6)


if __name__ == "__main__":
    tf.test.main()
