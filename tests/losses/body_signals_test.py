"""Tests for edge_ssl.losses.body_signals: hand-computed masked losses; a -1 label never moves the loss."""

import math

import numpy as np
import tensorflow as tf

from edge_ssl.losses import body_signals


class BodySignalsTest(tf.test.TestCase):

    def test_smooth_l1_by_hand(self):
        pred = np.array([[[0.5, 0.5], [0.0, 0.0], [3.0, 0.0]]], np.float32)
        target = np.array([[[0.0, 0.5], [-1.0, -1.0], [0.0, 0.0]]], np.float32)
        # frame 0: |0.5| -> 0.125, |0| -> 0; frame 1 missing; frame 2: |3| -> 2.5, |0| -> 0. Mean of 4 entries.
        self.assertAllClose(body_signals.masked_smooth_l1(pred, target), [(0.125 + 2.5) / 4])

    def test_bce_by_hand(self):
        logits = np.array([[[0.0, 2.0, 5.0]]], np.float32)
        labels = np.array([[[1, 0, -1]]], np.int32)
        expected = (math.log(2.0) + math.log1p(math.exp(2.0))) / 2
        self.assertAllClose(
            body_signals.masked_binary_cross_entropy(logits, labels), [expected], rtol=1e-6
        )

    def test_a_minus_one_label_never_moves_the_loss_or_its_gradient(self):
        labels = tf.constant([[[1, -1], [-1, 0]]])
        logits = tf.Variable([[[0.3, 0.7], [-2.0, 0.1]]])
        with tf.GradientTape() as tape:
            loss = body_signals.masked_binary_cross_entropy(logits, labels)
        grad = tape.gradient(loss, logits).numpy()
        self.assertEqual(grad[0, 0, 1], 0.0)
        self.assertEqual(grad[0, 1, 0], 0.0)
        moved = body_signals.masked_binary_cross_entropy(
            tf.constant([[[0.3, -50.0], [50.0, 0.1]]]), labels
        )
        self.assertAllClose(loss, moved)

        target = tf.constant([[[0.2, 0.4], [-1.0, -1.0]]])
        gaze = tf.Variable([[[0.1, 0.1], [9.0, 9.0]]])
        with tf.GradientTape() as tape:
            loss = body_signals.masked_smooth_l1(gaze, target)
        self.assertAllEqual(tape.gradient(loss, gaze).numpy()[0, 1], [0.0, 0.0])
        other = body_signals.masked_smooth_l1(tf.constant([[[0.1, 0.1], [-7.0, 0.0]]]), target)
        self.assertAllClose(loss, other)

    def test_an_example_with_no_valid_label_costs_nothing(self):
        self.assertAllClose(
            body_signals.masked_binary_cross_entropy(tf.ones([1, 2, 3]), -tf.ones([1, 2, 3])), [0.0]
        )
        self.assertAllClose(
            body_signals.masked_smooth_l1(tf.ones([1, 2, 2]), -tf.ones([1, 2, 2])), [0.0]
        )


if __name__ == "__main__":
    tf.test.main()
