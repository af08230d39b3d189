"""Tests for edge_ssl.losses.contrastive: InfoNCE by hand, the queue ring buffer, the momentum update."""

import numpy as np
import tensorflow as tf

from edge_ssl.losses import contrastive


class ContrastiveTest(tf.test.TestCase):

    def test_info_nce_queue_by_hand(self):
        q = tf.constant([[1.0, 0.0]])
        k = tf.constant([[0.6, 0.8]])
        queue = tf.constant([[0.0, 1.0], [-1.0, 0.0]])
        tau = 0.1
        logits = np.array([0.6, 0.0, -1.0]) / tau
        expected = -(logits[0] - np.log(np.exp(logits).sum()))
        self.assertAllClose(contrastive.info_nce_queue(q, k, queue, tau), [expected], rtol=1e-5)

    def test_own_negatives_are_each_querys_alone_beside_the_queue(self):
        q = tf.constant([[1.0, 0.0], [0.0, 1.0]])
        k = tf.constant([[0.6, 0.8], [0.8, 0.6]])
        queue = tf.constant([[-1.0, 0.0]])
        own = tf.constant([[[0.0, 1.0], [0.8, -0.6]], [[1.0, 0.0], [0.0, -1.0]]])  # [B=2, M=2, D]
        tau = 0.5
        expected = []
        for logits in (np.array([0.6, -1.0, 0.0, 0.8]), np.array([0.6, 0.0, 0.0, -1.0])):
            logits = logits / tau
            expected.append(-(logits[0] - np.log(np.exp(logits).sum())))
        loss = contrastive.info_nce_queue(q, k, queue, tau, own_negatives=own)
        self.assertAllClose(loss, expected, rtol=1e-5)
        # A query whose own negative equals its positive cannot do better than a guess between the two.
        same = contrastive.info_nce_queue(q[:1], k[:1], queue, tau, own_negatives=k[:1, None])
        self.assertGreater(float(same[0]), np.log(2.0))

    def test_info_nce_queue_has_no_gradient_through_keys(self):
        q = tf.Variable([[1.0, 0.0]])
        k = tf.Variable([[0.6, 0.8]])
        with tf.GradientTape() as tape:
            loss = contrastive.info_nce_queue(q, k, tf.constant([[0.0, 1.0]]), 0.2)
        gq, gk = tape.gradient(loss, [q, k])
        self.assertIsNotNone(gq)
        self.assertIsNone(gk)

    def test_info_nce_batch_by_hand(self):
        q = tf.constant([[1.0, 0.0], [0.0, 1.0]])
        k = tf.constant([[1.0, 0.0], [1.0, 0.0]])
        # Query 0 scores both keys 1/tau, query 1 scores both 0: each is a fair coin between its two keys.
        self.assertAllClose(contrastive.info_nce_batch(q, k, 0.5), [np.log(2.0), np.log(2.0)])
        k = tf.constant([[1.0, 0.0], [0.0, 1.0]])
        self.assertAllClose(
            contrastive.info_nce_batch(q, k, 0.5), [np.log(1 + np.exp(-2.0))] * 2, rtol=1e-5
        )

    def test_queue_is_an_exact_ring_buffer(self):
        queue = contrastive.KeyQueue(size=5, dim=2)
        first = queue.keys.numpy().copy()
        self.assertAllClose(np.linalg.norm(first, axis=1), np.ones(5), atol=1e-6)
        a = np.arange(6, dtype=np.float32).reshape(3, 2)
        queue.enqueue(tf.constant(a))
        expected = first.copy()
        expected[:3] = a
        self.assertAllEqual(queue.keys.numpy(), expected)
        b = -np.arange(1, 7, dtype=np.float32).reshape(3, 2)
        queue.enqueue(tf.constant(b))  # rows 3, 4, then wraps to row 0
        expected[3:5] = b[:2]
        expected[0] = b[2]
        self.assertAllEqual(queue.keys.numpy(), expected)
        self.assertEqual(int(queue.pointer.numpy()), 1)

    def test_enqueue_more_than_size_keeps_the_newest(self):
        queue = contrastive.KeyQueue(size=2, dim=1)
        queue.enqueue(tf.constant([[1.0], [2.0], [3.0]]))
        self.assertAllEqual(sorted(queue.keys.numpy().ravel()), [2.0, 3.0])

    def test_momentum_update_is_exact(self):
        t = [tf.Variable([1.0, 2.0]), tf.Variable(4.0)]
        s = [tf.Variable([3.0, 0.0]), tf.Variable(8.0)]
        contrastive.momentum_update(t, s, 0.75)
        self.assertAllEqual(t[0].numpy(), [0.75 * 1 + 0.25 * 3, 0.75 * 2])
        self.assertAllEqual(t[1].numpy(), 0.75 * 4 + 0.25 * 8)
        with self.assertRaisesRegex(ValueError, "matching"):
            contrastive.momentum_update(t, s[:1], 0.5)


if __name__ == "__main__":
    tf.test.main()
