"""Mixed precision and gradient clipping, shared by every method through `edge_ssl.train.optim`.

Checked: each method trains a step under mixed_bfloat16 with float32 losses and a float32 embedding, and building it
leaves the global policy as it was; float16 training scales the loss, and a step whose gradients overflow is skipped
with the scale lowered; `clip_norm` clips the gradient of the global batch, the same on one device and on two
replicas.
"""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.configs import loader
from edge_ssl.data import augment, motion, synthetic
from edge_ssl.keras import keras
from edge_ssl.methods import registry
from edge_ssl.train import optim

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

BATCH = 4


def _step_setup(precision: str = "float32", clip_norm: float | None = None):
    """A one-Dense model, its loss on a fixed batch (the mean over the global batch), and a config."""
    config = loader.load("cross_and_learn", "tiny", [f"precision={precision}"])
    if clip_norm is not None:
        config = loader.apply_overrides(config, [f"clip_norm={clip_norm}"])
    x = np.arange(16, dtype=np.float32).reshape(4, 4) / 8.0
    y = np.array([[1.0], [-2.0], [3.0], [0.5]], np.float32)
    return config, x, y


def _linear_step(strategy, config, x, y, scale=1.0):
    """One SGD(lr=1) step of a 4 -> 1 linear model on (x, y) under `strategy`; returns (kernel, optimizer)."""
    with strategy.scope():
        model = keras.Sequential([keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
        model.build([None, 4])
        optimizer = optim.loss_scaled(keras.optimizers.SGD(1.0), config.precision)
    data = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
    )

    @tf.function
    def step(batch):
        def replica_fn(features, targets):
            with tf.GradientTape() as tape:
                error = model(features) - targets
                loss = scale * tf.reduce_sum(tf.square(error)) / len(x)
            optim.apply_gradients(
                optimizer, loss, tape, model.trainable_variables, config.clip_norm
            )

        strategy.run(replica_fn, args=batch)

    step(next(iter(data)))
    return model.get_weights()[0], optimizer


def _expected_gradient(x, y):
    return (2.0 / len(x)) * x.T @ (x @ np.ones([4, 1], np.float32) - y)


class PrecisionTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters("cross_and_learn", "modist", "cv_mim", "muscles")
    def test_method_trains_in_mixed_bfloat16(self, name):
        overrides = ["precision=mixed_bfloat16", "clip_norm=1.0", f"global_batch_size={BATCH}"]
        if name == "modist":
            overrides.append("warmup_fraction=0.0")  # so that the first step moves the weights
        config = loader.load(name, "tiny", overrides)
        method = registry.get(name).build(config)
        self.assertEqual(keras.mixed_precision.global_policy().name, "float32")
        compute = {
            layer.compute_dtype
            for model in method.encoders.values()
            for layer in model.submodules
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense))
        }
        self.assertIn("bfloat16", compute)
        world = synthetic.get_config("tiny", performances=(2, 0, 0))  # 6 clips
        dataset = synthetic.as_dataset(world, "pretrain").take(BATCH)
        if "flow" in method.input_keys:
            dataset = dataset.map(motion.add_flow)
        dataset = augment.with_seeds(dataset, 0)
        batch = next(iter(dataset.map(method.prepare).batch(BATCH, drop_remainder=True)))
        before = [
            v.numpy() for v in method.encoders[next(iter(method.encoders))].trainable_variables
        ]
        losses = tf.function(lambda b: method.train_step(b, BATCH))(batch)
        for key, value in losses.items():
            self.assertEqual(value.dtype, tf.float32, key)
            self.assertTrue(np.isfinite(value.numpy()), key)
        after = method.encoders[next(iter(method.encoders))].trainable_variables
        self.assertTrue(any(not np.allclose(a, b.numpy()) for a, b in zip(before, after)))
        self.assertEqual(method.backbone.output.dtype, tf.float32)

    def test_float16_scales_the_loss_and_skips_an_overflowing_step(self):
        config, x, y = _step_setup("mixed_float16")
        strategy = tf.distribute.get_strategy()
        kernel, optimizer = _linear_step(strategy, config, x, y)
        self.assertIsInstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
        self.assertAllClose(kernel, 1.0 - _expected_gradient(x, y), rtol=1e-5)
        kernel, optimizer = _linear_step(strategy, config, x, y, scale=np.float32(1e38))
        self.assertAllEqual(kernel, np.ones([4, 1]))  # overflow: the step is skipped
        self.assertLess(float(optimizer.loss_scale), optimizer.initial_scale)

    def test_clip_norm_clips_the_global_gradient_on_one_device_and_on_two_replicas(self):
        config, x, y = _step_setup(clip_norm=0.5)
        gradient = _expected_gradient(x, y)
        self.assertGreater(np.linalg.norm(gradient), 0.5)
        want = 1.0 - gradient * 0.5 / np.linalg.norm(gradient)
        one, _ = _linear_step(tf.distribute.OneDeviceStrategy("/cpu:0"), config, x, y)
        two, _ = _linear_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), config, x, y)
        self.assertAllClose(one, want, rtol=1e-5)
        self.assertAllClose(two, want, rtol=1e-5)

    def test_bad_precision_and_clip_norm_are_refused(self):
        with self.assertRaisesRegex(ValueError, "precision must be one of"):
            loader.load("modist", "tiny", ["precision=float8"])
        with self.assertRaisesRegex(ValueError, "clip_norm must be positive"):
            loader.load("modist", "tiny", ["clip_norm=0"])


if __name__ == "__main__":
    tf.test.main()
