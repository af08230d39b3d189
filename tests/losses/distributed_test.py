"""The losses under MirroredStrategy on two logical CPUs equal the losses on one device for the same global batch."""

import numpy as np
import tensorflow as tf

from edge_ssl.losses import contrastive, cross_modal, distributed
from edge_ssl.losses import mutual_information as mi

# Two logical CPUs, configured before TensorFlow initialises its devices (tf-keras's `_mimic_two_cpus` idea).
_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

GLOBAL_BATCH = 6
_PROJECTION = (np.eye(5) + 0.1 * np.random.default_rng(9).normal(size=(5, 5))).astype(np.float32)


def _features(seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(GLOBAL_BATCH, 5)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class DistributedLossTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # One strategy for all tests: strategies made one after another in a process reuse collective instance keys,
        # and a key seen before with another op type aborts the collective.
        cls.strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def setUp(self):
        super().setUp()
        self.assertEqual(self.strategy.num_replicas_in_sync, 2)

    def _split(self, *arrays):
        """Replica i gets rows [i * B/2, (i + 1) * B/2) of each array."""
        half = GLOBAL_BATCH // 2

        def value_fn(ctx):
            i = ctx.replica_id_in_sync_group
            return tuple(tf.constant(a[i * half : (i + 1) * half]) for a in arrays)

        return self.strategy.experimental_distribute_values_from_function(value_fn)

    def _mirrored_mean(self, loss_fn, *arrays):
        """The replicas' global_mean shares summed, and the gradient w.r.t. a shared projection, under the strategy."""
        with self.strategy.scope():
            proj = tf.Variable(_PROJECTION)

        def step(inputs):
            with tf.GradientTape() as tape:
                loss = distributed.global_mean(loss_fn(*(x @ proj for x in inputs)), GLOBAL_BATCH)
            return loss, tape.gradient(loss, proj)

        loss, grad = self.strategy.run(tf.function(step), args=(self._split(*arrays),))

        def reduce(v):
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)

        return reduce(loss).numpy(), reduce(grad).numpy()

    def _single_mean(self, loss_fn, *arrays):
        proj = tf.Variable(_PROJECTION)
        with tf.GradientTape() as tape:
            loss = distributed.global_mean(
                loss_fn(*(tf.constant(a) @ proj for a in arrays)), GLOBAL_BATCH
            )
        return loss.numpy(), tape.gradient(loss, proj).numpy()

    def _assert_same(self, mirrored, single):
        self.assertAllClose(mirrored[0], single[0], rtol=1e-5)
        # A real gradient, not a zero that matches anything.
        self.assertGreater(np.abs(single[1]).max(), 1e-3)
        self.assertAllClose(mirrored[1], single[1], rtol=1e-4, atol=1e-6)

    def test_batch_cross_modal_loss_does_not_depend_on_the_split(self):
        fn = lambda r, o: cross_modal.batch_losses(r, o)["total"]  # noqa: E731
        args = (_features(0), _features(1))
        self._assert_same(self._mirrored_mean(fn, *args), self._single_mean(fn, *args))

    def test_batch_info_nce_does_not_depend_on_the_split(self):
        def fn(q, k):
            return contrastive.info_nce_batch(tf.math.l2_normalize(q, 1), k, 0.1)

        args = (_features(2), _features(3))
        self._assert_same(self._mirrored_mean(fn, *args), self._single_mean(fn, *args))

    def test_jsd_estimator_does_not_depend_on_the_split(self):
        fn = lambda a, b: mi.jsd_contrastive(3.0 * a, 3.0 * b)  # noqa: E731
        args = (_features(5), _features(6))
        self._assert_same(self._mirrored_mean(fn, *args), self._single_mean(fn, *args))

    def test_club_upper_bound_does_not_depend_on_the_split(self):
        y, mu = _features(7), _features(7) + 0.3 * _features(8)
        with self.strategy.scope():
            proj = tf.Variable(_PROJECTION)

        def step(inputs):
            with tf.GradientTape() as tape:
                value = mi.club_upper_bound(
                    inputs[0] @ proj, inputs[1], tf.zeros_like(inputs[1]), GLOBAL_BATCH
                )
            return value, tape.gradient(value, proj)

        value, grad = self.strategy.run(tf.function(step), args=(self._split(y, mu),))
        summed = [
            self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None).numpy()
            for v in (value, grad)
        ]
        single_proj = tf.Variable(_PROJECTION)
        with tf.GradientTape() as tape:
            single = mi.club_upper_bound(
                tf.constant(y) @ single_proj, tf.constant(mu), tf.zeros_like(mu), GLOBAL_BATCH
            )
        self.assertGreater(float(single), 0.0)
        self._assert_same(summed, (single.numpy(), tape.gradient(single, single_proj).numpy()))

    def test_queue_receives_every_replicas_keys(self):
        with self.strategy.scope():
            queue = contrastive.KeyQueue(size=8, dim=5)
        keys = _features(4)
        self.strategy.run(tf.function(queue.enqueue), args=(self._split(keys)[0],))
        for replica_value in self.strategy.experimental_local_results(queue.keys):
            self.assertAllClose(replica_value.numpy()[:GLOBAL_BATCH], keys)
        self.assertEqual(
            int(self.strategy.experimental_local_results(queue.pointer)[1].numpy()), GLOBAL_BATCH
        )


if __name__ == "__main__":
    tf.test.main()
