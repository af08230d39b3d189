"""Tests for edge_ssl.fewshot.metrics: k-NN accuracy that ignores same-group neighbours, and the 95% interval."""

import numpy as np
import tensorflow as tf

from edge_ssl.fewshot import metrics


class MetricsTest(tf.test.TestCase):

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
        # One direction (any lengths, a zero row aside): 0. Two opposite directions: centroid 0, spread 1.
        self.assertAlmostEqual(metrics.spread([[1.0, 0.0], [3.0, 0.0], [2.0, 0.0]]), 0.0)
        self.assertAlmostEqual(metrics.spread([[1.0, 0.0], [-2.0, 0.0]]), 1.0)
        # Orthogonal unit rows: centroid (0.5, 0.5), |c|^2 = 0.5.
        self.assertAlmostEqual(metrics.spread([[1.0, 0.0], [0.0, 5.0]]), 0.5)

    def test_mean_with_ci95(self):
        mean, half = metrics.mean_with_ci95([0.5, 0.7, 0.6, 0.8])
        self.assertAlmostEqual(mean, 0.65)
        self.assertAlmostEqual(half, 1.96 * np.std([0.5, 0.7, 0.6, 0.8], ddof=1) / 2)
        self.assertEqual(metrics.mean_with_ci95([0.3]), (0.3, 0.0))
        with self.assertRaises(ValueError):
            metrics.mean_with_ci95([])


if __name__ == "__main__":
    tf.test.main()
