"""CV-MIM's losses on one device equal those under MirroredStrategy on two logical CPUs, for one global batch.

Inference-mode networks (BN with moving statistics, no dropout) make the forward pass independent of how the batch is
split, so what is compared is what the split could break: global-batch scaling, negatives gathered across replicas
(JSD, CLUB) and CLUB's floor on the global mean.
"""

import numpy as np
import tensorflow as tf

from edge_ssl.configs import cv_mim_tiny
from edge_ssl.data import augment, synthetic
from edge_ssl.keras import keras
from edge_ssl.methods import cv_mim

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

GLOBAL_BATCH = 8


class CvMimDistributedTest(tf.test.TestCase):

    def test_losses_and_encoder_gradients_do_not_depend_on_the_split(self):
        keras.utils.set_random_seed(0)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            method = cv_mim.build(cv_mim_tiny.get_config())
        data = synthetic.as_dataset(
            synthetic.get_config("tiny", performances=(4, 1, 1)), "pretrain"
        )
        batch = next(iter(augment.with_seeds(data, 0).map(method.prepare).batch(GLOBAL_BATCH)))
        batch = {k: v.numpy() for k, v in batch.items()}
        encoder_vars = method.variable_groups()["encoder"]

        def step(inputs):
            with tf.GradientTape() as tape:
                losses = method.losses(inputs, GLOBAL_BATCH, training=False)
            return losses, tape.gradient(losses["total"], encoder_vars[0])

        half = GLOBAL_BATCH // 2
        split = strategy.experimental_distribute_values_from_function(
            lambda ctx: {
                k: v[
                    ctx.replica_id_in_sync_group * half : (ctx.replica_id_in_sync_group + 1) * half
                ]
                for k, v in batch.items()
            }
        )
        losses, grad = strategy.run(tf.function(step), args=(split,))
        total = lambda v: strategy.reduce(
            tf.distribute.ReduceOp.SUM, v, axis=None
        ).numpy()  # noqa: E731
        mirrored = {k: total(v) for k, v in losses.items()}
        mirrored_grad = total(grad)

        with tf.GradientTape() as tape:
            single = method.losses(
                {k: tf.constant(v) for k, v in batch.items()}, GLOBAL_BATCH, training=False
            )
        single_grad = tape.gradient(single["total"], encoder_vars[0]).numpy()
        for name, value in single.items():
            self.assertAllClose(mirrored[name], value.numpy(), rtol=1e-4, atol=1e-5, msg=name)
        self.assertGreater(np.abs(single_grad).max(), 1e-4)
        self.assertAllClose(mirrored_grad, single_grad, rtol=1e-3, atol=1e-5)


if __name__ == "__main__":
    tf.test.main()
