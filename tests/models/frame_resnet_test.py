"""Tests for edge_ssl.models.frame_resnet: the pinned ResNet-18 count, layer4 shapes per variant, serialisation."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.keras import keras
from edge_ssl.models import frame_resnet


class FrameResNetTest(tf.test.TestCase, parameterized.TestCase):

    def test_paper_parameter_count_matches_torchvision_resnet18(self):
        model = frame_resnet.frame_resnet("paper")
        # torchvision resnet18 has 11,689,512 parameters; without fc (512 x 1000 + 1000) that is 11,176,512, all
        # trainable (BN gamma and beta included); its BN running mean and variance are buffers, not parameters.
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        self.assertEqual(trainable, 11_689_512 - (512 * 1000 + 1000))
        self.assertEqual(trainable, 11_176_512)
        # Keras counts the moving mean and variance too: 2 per BN channel. BN channels: bn1 64; layer1 2 x 2 x 64;
        # layer2 2 x 2 x 128 + 128 (downsample); layer3 4 x 256 + 256; layer4 4 x 512 + 512 = 4,800.
        bn_channels = 64 + 4 * 64 + (4 * 128 + 128) + (4 * 256 + 256) + (4 * 512 + 512)
        self.assertEqual(bn_channels, 4800)
        self.assertEqual(model.count_params(), 11_176_512 + 2 * bn_channels)
        self.assertEqual(model.count_params(), 11_186_112)
        self.assertEqual(model.output_shape, [(None, 512), (None, 7, 7, 512)])

    @parameterized.parameters("small", "tiny")
    def test_reduced_variants_return_pooled_features_and_the_layer4_map(self, variant):
        model = frame_resnet.frame_resnet(variant)
        size = frame_resnet.VARIANTS[variant].input_size
        x = np.random.default_rng(0).uniform(size=(2, size, size, 3)).astype("float32")
        pooled, maps = model(x, training=False)
        self.assertEqual(tuple(maps.shape[1:]), frame_resnet.layer4_shape(variant))
        self.assertEqual(pooled.shape, (2, frame_resnet.VARIANTS[variant].widths[-1]))
        # The pooled vector is the layer4 map's spatial mean.
        self.assertAllClose(pooled, tf.reduce_mean(maps, axis=[1, 2]), atol=1e-5)

    def test_config_round_trip(self):
        model = frame_resnet.frame_resnet("tiny")
        clone = keras.Model.from_config(model.get_config())
        clone.set_weights(model.get_weights())
        x = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
        for a, b in zip(model(x, training=False), clone(x, training=False)):
            self.assertAllClose(a, b)

    def test_unknown_variant_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "unknown frame ResNet variant"):
            frame_resnet.frame_resnet("resnet152")


if __name__ == "__main__":
    tf.test.main()
