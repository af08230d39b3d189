"""Tests for edge_ssl.losses.distillation: hand-computed values and the gradient's reach."""

import math

import numpy as np
import tensorflow as tf

from edge_ssl.losses import distillation


class DistillationLossTest(tf.test.TestCase):

    def test_cosine_regression(self):
        student = tf.constant([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
        teacher = tf.constant([[3.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
        self.assertAllClose(distillation.cosine_regression(student, teacher), [0.0, 1.0, 2.0])

    def test_relational_contrastive_by_hand(self):
        student = tf.constant([[1.0, 0.0], [0.0, 1.0]])
        teacher = tf.constant([[1.0, 0.0], [1.0, 1.0]])
        tau = 0.5
        t = np.array([[1.0, 0.0], [1.0, 1.0]]) / np.sqrt([[1.0], [2.0]])
        logits = np.array([[1.0, 0.0], [0.0, 1.0]]) @ t.T / tau
        want = [-logits[i, i] + math.log(np.exp(logits[i]).sum()) for i in range(2)]
        self.assertAllClose(
            distillation.relational_contrastive(student, teacher, tau), want, rtol=1e-5
        )

    def test_logit_distillation_is_zero_for_equal_logits_and_matches_kl(self):
        logits = tf.constant([[1.0, 2.0, 0.5]])
        self.assertAllClose(distillation.logit_distillation(logits, logits, 2.0), [0.0], atol=1e-6)
        s, t, temp = np.array([0.0, 1.0]), np.array([1.0, 0.0]), 2.0
        p = np.exp(t / temp) / np.exp(t / temp).sum()
        q = np.exp(s / temp) / np.exp(s / temp).sum()
        want = (p * np.log(p / q)).sum() * temp**2
        got = distillation.logit_distillation(
            tf.constant([s], tf.float32), tf.constant([t], tf.float32), temp
        )
        self.assertAllClose(got, [want], rtol=1e-5)

    def test_no_gradient_reaches_the_teacher(self):
        student = tf.Variable([[1.0, 2.0]])
        teacher = tf.Variable([[2.0, -1.0]])
        with tf.GradientTape(persistent=True) as tape:
            losses = [
                distillation.cosine_regression(student, teacher),
                distillation.relational_contrastive(student, teacher, 0.1),
                distillation.logit_distillation(student, teacher, 4.0),
            ]
        for loss in losses:
            self.assertIsNone(tape.gradient(loss, teacher))
            self.assertIsNotNone(tape.gradient(loss, student))

    def test_prototype_logits_are_cosines(self):
        logits = distillation.prototype_logits(
            tf.constant([[2.0, 0.0]]), tf.constant([[1.0, 0.0], [0.0, 3.0]])
        )
        self.assertAllClose(logits, [[1.0, 0.0]])


if __name__ == "__main__":
    tf.test.main()
