"""Tests for edge_ssl.train.optim: coupled weight decay in `apply_gradients`, on one device and under a strategy."""

import numpy as np
import tensorflow as tf

from edge_ssl.keras import keras
from edge_ssl.train import optim

# Two logical CPUs, configured before TensorFlow initialises its devices (tf-keras's `_mimic_two_cpus` idea).
_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

LR = 0.1
WD = 0.05
X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.5, -1.5], [2.0, 1.0]], np.float32)
Y = np.array([[1.0], [0.0], [-1.0], [2.0]], np.float32)
KERNEL = np.array([[0.3], [-0.2]], np.float32)
BIAS = np.array([0.4], np.float32)


def _model() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.set_weights([KERNEL, BIAS])
    return model


def _by_hand(decay_bias: bool) -> tuple[np.ndarray, np.ndarray]:
    """One SGD step (momentum 0) on mean((x w + b - y)^2) with coupled L2: w - lr (grad + wd w)."""
    residual = X @ KERNEL + BIAS - Y  # [4, 1]
    grad_kernel = 2.0 * X.T @ residual / len(X)
    grad_bias = 2.0 * residual.sum(axis=0) / len(X)
    kernel = KERNEL - LR * (grad_kernel + WD * KERNEL)
    bias = BIAS - LR * (grad_bias + (WD * BIAS if decay_bias else 0.0))
    return kernel, bias


def _step(model, optimizer, x, y, global_batch, **kwargs):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(x) - y)) / global_batch
    optim.apply_gradients(optimizer, loss, tape, model.trainable_variables, **kwargs)


class BaseTest(tf.test.TestCase):

    def test_one_sgd_step_with_coupled_weight_decay_by_hand(self):
        for decay_bias in (True, False):
            with self.subTest(decay_bias=decay_bias):
                model = _model()
                decayed = None if decay_bias else [model.layers[0].kernel]
                optimizer = keras.optimizers.SGD(LR, momentum=0.0)
                _step(model, optimizer, X, Y, len(X), weight_decay=WD, decayed=decayed)
                kernel, bias = _by_hand(decay_bias)
                self.assertAllClose(model.layers[0].kernel, kernel, atol=1e-6)
                self.assertAllClose(model.layers[0].bias, bias, atol=1e-6)

    def test_weight_decay_is_applied_once_per_global_batch_under_a_strategy(self):
        # Each replica holds half the batch; the summed gradient must carry wd * w once, not once per replica, with
        # and without clipping (which sums over replicas before the optimizer sees the gradients).
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        for clip_norm in (None, 1e6):
            with self.subTest(clip_norm=clip_norm):
                with strategy.scope():
                    model = _model()
                    optimizer = keras.optimizers.SGD(LR, momentum=0.0)
                data = tf.data.Dataset.from_tensor_slices((X, Y)).batch(len(X))
                x, y = next(iter(strategy.experimental_distribute_dataset(data)))

                @tf.function
                def step(x, y):
                    strategy.run(
                        _step,
                        args=(model, optimizer, x, y, len(X)),
                        kwargs=dict(clip_norm=clip_norm, weight_decay=WD),
                    )

                step(x, y)
                kernel, bias = _by_hand(decay_bias=True)
                self.assertAllClose(model.layers[0].kernel, kernel, atol=1e-6)
                self.assertAllClose(model.layers[0].bias, bias, atol=1e-6)

    def test_batch_norm_scale_and_offset_are_not_decayed_for_modist(self):
        inputs = keras.Input((3,))
        x = keras.layers.Dense(4, name="dense")(inputs)
        x = keras.layers.BatchNormalization(name="bn")(x)
        model = keras.Model(inputs, x)
        names = [v.name for v in optim.trainable_without_batch_norm([model])]
        self.assertEqual(names, ["dense/kernel:0", "dense/bias:0"])


if __name__ == "__main__":
    tf.test.main()
