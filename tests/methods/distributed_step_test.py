"""One train_step on one device equals the same step under MirroredStrategy on two logical CPUs.

Checked for Cross and Learn (both negative modes) and MoDist: the summed per-replica losses, the weight updates, and
for MoDist the momentum (key) encoders and the queues. What this catches: a loss scaled by the local instead of the
global batch (losses and updates off by 2x), negatives not gathered across replicas or gathered at the wrong offset,
a momentum update or queue write made once per replica, and a step that does not run under `strategy.run` at all.

Batch normalisation normalises each replica's share with that share's statistics, so a split batch is genuinely a
different computation from the whole one. To compare like with like without turning BN off, replica 1 gets replica
0's examples in reverse order: every replica then sees the same multiset of examples, so its BN statistics equal the
global batch's, while the examples' positions still differ (an offset bug pairs an item with the wrong row). Dropout
is set to 0, since replicas draw different masks.
"""

import dataclasses

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.configs import cross_and_learn_tiny, modist_tiny
from edge_ssl.data import augment
from edge_ssl.keras import keras
from edge_ssl.methods import cross_and_learn, modist

# Two logical CPUs, configured before TensorFlow initialises its devices (tf-keras's `_mimic_two_cpus` idea).
_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

HALF = 4  # examples per replica
GLOBAL_BATCH = 2 * HALF


def _config(name: str):
    if name.startswith("cross_and_learn"):
        negatives = name.split("_")[-1]
        return dataclasses.replace(
            cross_and_learn_tiny.get_config(), dropout=0.0, negatives=negatives
        )
    # No warm-up, so that the step moves the weights; a queue longer than one batch so that the write's position
    # matters; key momentum 0.5 so that the key encoders' update is as large as the queries' (at 0.99 it is below
    # float32 resolution and a doubled momentum update would pass unseen).
    return dataclasses.replace(
        modist_tiny.get_config(),
        warmup_fraction=0.0,
        queue_size=3 * GLOBAL_BATCH,
        key_momentum=0.5,
    )


def _build(config):
    return (cross_and_learn if config.method == "cross_and_learn" else modist).build(config)


def _models(method) -> list[keras.Model]:
    return [v for v in method.checkpoint_items().values() if isinstance(v, keras.Model)]


def _learned(model: keras.Model) -> list[tf.Variable]:
    """Weights moved by the optimizer or the momentum update. BN moving variances are left out: Keras corrects the
    batch variance by n / (n - 1) with the replica's own count n, so they differ slightly by design.
    """
    return [w for w in model.weights if "moving_" not in w.name]


def _queues(method) -> list[tf.Variable]:
    items = method.checkpoint_items()
    return [
        v for k in sorted(items) if k.endswith("_queue") for v in (items[k].keys, items[k].pointer)
    ]


def _global_batch(method) -> dict[str, np.ndarray]:
    """HALF prepared examples, then the same ones reversed: [a, b, c, d, d, c, b, a]."""
    clips = np.random.default_rng(0).uniform(size=(HALF, 8, 32, 32, 3)).astype("float32")
    dataset = augment.with_seeds(tf.data.Dataset.from_tensor_slices({"rgb": clips}), 0)
    half = next(iter(dataset.map(method.prepare).batch(HALF)))
    return {k: np.concatenate([v.numpy(), v.numpy()[::-1]]) for k, v in half.items()}


class DistributedStepTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # One strategy for the process: collectives of a second MirroredStrategy clash with the first one's.
        cls.strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    @parameterized.named_parameters(
        ("cross_and_learn_tuple", "cross_and_learn_tuple"),
        ("cross_and_learn_batch", "cross_and_learn_batch"),
        ("modist", "modist"),
    )
    def test_one_step_is_the_same_on_one_device_and_on_two_replicas(self, name):
        config = _config(name)
        keras.utils.set_random_seed(0)
        single = _build(config)
        strategy = self.strategy
        self.assertEqual(strategy.num_replicas_in_sync, 2)
        with strategy.scope():
            mirrored = _build(config)
        for a, b in zip(_models(single), _models(mirrored)):
            b.set_weights(a.get_weights())
        for a, b in zip(_queues(single), _queues(mirrored)):
            b.assign(a)
        before = [w.numpy().copy() for m in _models(single) for w in _learned(m)]
        batch = _global_batch(single)

        single_losses = tf.function(lambda b: single.train_step(b, GLOBAL_BATCH))(batch)

        def replica_batch(ctx):
            i = ctx.replica_id_in_sync_group
            return {k: tf.constant(v[i * HALF : (i + 1) * HALF]) for k, v in batch.items()}

        shares = strategy.run(
            tf.function(lambda b: mirrored.train_step(b, GLOBAL_BATCH)),
            args=(strategy.experimental_distribute_values_from_function(replica_batch),),
        )
        mirrored_losses = {
            k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in shares.items()
        }

        self.assertEqual(sorted(mirrored_losses), sorted(single_losses))
        for key in single_losses:
            self.assertAllClose(mirrored_losses[key], single_losses[key], rtol=1e-4, atol=1e-6)
        # Compare the updates, not the weights: an update off by a factor hides behind weights much larger than it.
        single_after = [w.numpy() for m in _models(single) for w in _learned(m)]
        mirrored_after = [w.numpy() for m in _models(mirrored) for w in _learned(m)]
        moved = 0
        for w0, ws, wm in zip(before, single_after, mirrored_after):
            step = ws - w0
            scale = float(np.abs(step).max())
            # 1% of the tensor's largest update, plus 1e-5 (float32 noise of tiny updates): sums in another order differ by
            # that much, a wrong factor or a wrong row by far more.
            self.assertAllClose(wm - w0, step, rtol=0.0, atol=1e-2 * scale + 1e-5)
            moved += int(scale > 1e-4)
        self.assertGreater(
            moved, len(before) // 3
        )  # the comparison is not one of unchanged weights
        for a, b in zip(_queues(single), _queues(mirrored)):
            self.assertAllClose(b, a, atol=1e-5)


if __name__ == "__main__":
    tf.test.main()
