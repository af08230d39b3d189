"""Tests for edge_ssl.fewshot.metrics: k-NN accuracy that ignores same-group neighbours, and the 95% interval."""

import numpy as np
from absl.testing import absltest

from edge_ssl.fewshot import metrics


class MetricsTest(absltest.TestCase):

    def test_knn_accuracy_by_hand(self):
        emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
        self.assertEqual(metrics.knn_accuracy(emb, [0, 0, 1, 1], k=1), 1.0)
        self.assertEqual(metrics.knn_accuracy(emb, [0, 1, 0, 1], k=1), 0.0)

    def test_same_group_neighbours_never_vote(self):
        # Items 0 and 1 are one performance seen twice: alone they would find each other.
        emb = np.array([[1, 0], [1, 0.01], [0, 1], [0.01, 1]], np.float32)
        labels = [0, 0, 1, 1]
        self.assertEqual(metrics.knn_accuracy(emb, labels, k=1), 1.0)
        self.assertEqual(metrics.knn_accuracy(emb, labels, groups=[0, 0, 1, 1], k=1), 0.0)

    def test_ties_go_to_the_nearest(self):
        emb = np.array([[1, 0], [0.99, 0.14], [0.9, 0.43], [0, 1]], np.float32)
        self.assertEqual(metrics.knn_accuracy(emb[:3], [5, 5, 7], k=2), 2 / 3)

    def test_bad_inputs_are_errors(self):
        with self.assertRaisesRegex(ValueError, "differ in length"):
            metrics.knn_accuracy(np.ones((3, 2)), [0, 1])
        with self.assertRaisesRegex(ValueError, "nothing to compare"):
            metrics.knn_accuracy(np.ones((2, 2)), [0, 1], groups=[4, 4])

    def test_spread_by_hand(self):
        # One direction (any lengths): 0. Two opposite directions: centroid 0, spread 1.
        self.assertAlmostEqual(metrics.spread([[1.0, 0.0], [3.0, 0.0], [2.0, 0.0]]), 0.0)
        self.assertAlmostEqual(metrics.spread([[1.0, 0.0], [-2.0, 0.0]]), 1.0)
        # Orthogonal unit rows: centroid (0.5, 0.5), |c|^2 = 0.5.
        self.assertAlmostEqual(metrics.spread([[1.0, 0.0], [0.0, 5.0]]), 0.5)

    def test_all_zero_rows_do_not_count_towards_spread(self):
        # A dead-ReLU collapse is no spread at all (with the zero rows counted, every-row-zero read as 1, the most).
        self.assertEqual(metrics.spread(np.zeros((4, 3))), 0.0)
        # One live direction among dead rows is still one direction.
        self.assertAlmostEqual(
            metrics.spread([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0]]), 0.0
        )
        live = np.array([[1.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
        with_dead = np.concatenate([live, np.zeros((6, 3))])
        self.assertAlmostEqual(metrics.spread(with_dead), metrics.spread(live))
        self.assertAlmostEqual(metrics.spread(with_dead), 0.5)

    def test_dead_rows_and_units_by_hand(self):
        x = np.array([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, -1.0]])
        out = metrics.collapse(x)
        self.assertAlmostEqual(out.dead_rows, 1 / 3)  # row 1
        self.assertAlmostEqual(out.dead_units, 2 / 4)  # columns 1 and 2
        u = x[[0, 2]] / np.linalg.norm(x[[0, 2]], axis=1, keepdims=True)
        self.assertAlmostEqual(out.spread, 1.0 - np.sum(u.mean(axis=0) ** 2))
        dead = metrics.collapse(np.zeros((5, 2)))
        self.assertEqual((dead.spread, dead.dead_rows, dead.dead_units), (0.0, 1.0, 1.0))
        alive = metrics.collapse(np.eye(3))
        self.assertEqual((alive.dead_rows, alive.dead_units), (0.0, 0.0))
        with self.assertRaisesRegex(ValueError, r"\[N, D\]"):
            metrics.collapse(np.zeros((0, 3)))

    def test_mean_with_ci95(self):
        mean, half = metrics.mean_with_ci95([0.5, 0.7, 0.6, 0.8])
        self.assertAlmostEqual(mean, 0.65)
        self.assertAlmostEqual(half, 1.96 * np.std([0.5, 0.7, 0.6, 0.8], ddof=1) / 2)
        self.assertEqual(metrics.mean_with_ci95([0.3]), (0.3, 0.0))
        with self.assertRaises(ValueError):
            metrics.mean_with_ci95([])


if __name__ == "__main__":
    absltest.main()
