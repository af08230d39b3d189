"""Tests for edge_ssl.losses.cross_modal: hand-computed values, zero for identical pairs, the batch variant."""

import numpy as np
import tensorflow as tf

from edge_ssl.losses import cross_modal


class CrossModalTest(tf.test.TestCase):

    def test_cosine_similarity_by_hand(self):
        a = tf.constant([[3.0, 4.0]])
        b = tf.constant([[4.0, 3.0]])
        expected = 24.0 / (np.sqrt(25 + 1e-4) * np.sqrt(25 + 1e-4))
        self.assertAllClose(cross_modal.cosine_similarity(a, b), [expected])

    def test_tuple_losses_by_hand(self):
        r1, o1 = tf.constant([[1.0, 0.0]]), tf.constant([[0.0, 1.0]])  # orthogonal: d = 1
        r2, o2 = tf.constant([[-1.0, 0.0]]), tf.constant(
            [[0.0, 1.0]]
        )  # d(r1, r2) = 2, d(o1, o2) = 0
        s = 1.0 / (1.0 + 1e-4)  # what the epsilon leaves of a unit cosine
        out = cross_modal.tuple_losses(r1, o1, r2, o2)
        self.assertAllClose(out["cross"], [1.0])
        self.assertAllClose(out["div"], [-0.5 * ((1 + s) + (1 - s))])
        self.assertAllClose(out["total"], [0.5 * 1.0 + 0.5 * -0.5 * 2.0])

    def test_cross_term_is_zero_for_identical_pairs(self):
        x = tf.random.stateless_normal([4, 8], seed=[1, 2])
        y = tf.random.stateless_normal([4, 8], seed=[3, 4])
        # Zero up to the epsilon: 1 - |x|^2 / (|x|^2 + eps) ~ eps / |x|^2.
        out = cross_modal.tuple_losses(x, x, y, y)
        self.assertAllClose(out["cross"], np.zeros(4), atol=1e-4)
        out = cross_modal.batch_losses(x, x)
        self.assertAllClose(out["cross"], np.zeros(4), atol=1e-4)
        self.assertGreater(
            float(tf.reduce_min(cross_modal.tuple_losses(x, y, y, x)["cross"])), 1e-2
        )

    def test_batch_variant_with_two_items_is_the_tuple_loss(self):
        r = tf.random.stateless_normal([2, 6], seed=[5, 6])
        o = tf.random.stateless_normal([2, 6], seed=[7, 8])
        batch = cross_modal.batch_losses(r, o)
        pair = cross_modal.tuple_losses(r[:1], o[:1], r[1:], o[1:])
        self.assertAllClose(tf.reduce_mean(batch["total"]), pair["total"][0])
        self.assertAllClose(batch["div"], [pair["div"][0], pair["div"][0]])

    def test_collapsed_features_are_penalised_by_diversity(self):
        constant = tf.ones([4, 8])
        spread = tf.random.stateless_normal([4, 8], seed=[9, 9])
        self.assertGreater(
            float(tf.reduce_mean(cross_modal.batch_losses(constant, constant)["div"])),
            float(tf.reduce_mean(cross_modal.batch_losses(spread, spread)["div"])),
        )


if __name__ == "__main__":
    tf.test.main()
