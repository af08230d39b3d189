"""Tests for edge_ssl.losses.cross_modal: hand-computed values, the original's loss and gradient, zero for identical
pairs, the batch variant."""

import numpy as np
import tensorflow as tf

from edge_ssl.losses import cross_modal

EPS = 1e-4


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine with the original's epsilon, float64."""
    return (a * b).sum(-1) / (np.sqrt((a * a).sum(-1) + EPS) * np.sqrt((b * b).sum(-1) + EPS))


def _cos_grad_a(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """d cos(a, b) / d a, row-wise: b / (|a| |b|) - (a.b) a / (|a|^3 |b|) with |x| = sqrt(x.x + eps)."""
    na = np.sqrt((a * a).sum(-1, keepdims=True) + EPS)
    nb = np.sqrt((b * b).sum(-1, keepdims=True) + EPS)
    return b / (na * nb) - (a * b).sum(-1, keepdims=True) * a / (na**3 * nb)


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
        # (1 - w) [s(r1, r2) + s(o1, o2)] - w [s(r1, o1) + s(r2, o2)] = 0.5 (-s + s) - 0.5 (0 + 0).
        self.assertAllClose(out["total"], [0.0])

    def test_tuple_loss_is_the_originals_in_value_and_gradient(self):
        # The authors' `_get_loss`: mean over tuples of (1 - w)(s_f1 + s_f2) - w (s_t1 + s_t2), with the true pairs
        # s_t = s(r1, o1), s(r2, o2) and the false pairs s_f = s(r1, r2), s(o1, o2); at w = 0.5, twice
        # w L_cross + (1 - w) L_div.
        rng = np.random.default_rng(0)
        r1, o1, r2, o2 = (rng.normal(size=(5, 7)) for _ in range(4))
        for w in (0.5, 0.3):
            with self.subTest(weight_cross=w):
                expected = (1 - w) * (_cos(r1, r2) + _cos(o1, o2)) - w * (
                    _cos(r1, o1) + _cos(r2, o2)
                )
                # d mean(L) / d r1: r1 is in s(r1, r2) (false) and s(r1, o1) (true).
                expected_grad = ((1 - w) * _cos_grad_a(r1, r2) - w * _cos_grad_a(r1, o1)) / len(r1)
                tensors = [tf.constant(x, tf.float64) for x in (r1, o1, r2, o2)]
                with tf.GradientTape() as tape:
                    tape.watch(tensors[0])
                    out = cross_modal.tuple_losses(*tensors, weight_cross=w, epsilon=EPS)
                    mean = tf.reduce_mean(out["total"])
                self.assertAllClose(out["total"], expected, atol=1e-10)
                self.assertAllClose(tape.gradient(mean, tensors[0]), expected_grad, atol=1e-10)
                halved = (
                    w * out["cross"] + (1 - w) * out["div"]
                )  # the loss this code minimised before
                self.assertAllClose(out["total"], 2.0 * halved + 2.0 - 4.0 * w, atol=1e-10)

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

    def test_batch_loss_by_numpy(self):
        # Per pair: (1 - w) [mean_j s(r_i, r_j) + mean_j s(o_i, o_j)] - 2 w s(r_i, o_i), j over the other pairs.
        rng = np.random.default_rng(1)
        r, o = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
        others = [[j for j in range(4) if j != i] for i in range(4)]
        false = np.array(
            [
                np.mean([_cos(r[i], r[j]) + _cos(o[i], o[j]) for j in js])
                for i, js in enumerate(others)
            ]
        )
        expected = 0.5 * false - 2 * 0.5 * _cos(r, o)
        out = cross_modal.batch_losses(tf.constant(r, tf.float32), tf.constant(o, tf.float32))
        self.assertAllClose(out["total"], expected, atol=1e-5)

    def test_collapsed_features_are_penalised_by_diversity(self):
        constant = tf.ones([4, 8])
        spread = tf.random.stateless_normal([4, 8], seed=[9, 9])
        self.assertGreater(
            float(tf.reduce_mean(cross_modal.batch_losses(constant, constant)["div"])),
            float(tf.reduce_mean(cross_modal.batch_losses(spread, spread)["div"])),
        )


if __name__ == "__main__":
    tf.test.main()
