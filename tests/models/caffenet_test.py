"""Tests for edge_ssl.models.caffenet: pinned parameter counts, shapes per variant, serialisation round trip."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.keras import keras
from edge_ssl.models import caffenet


def _conv(k, cin, cout, groups=1):
    return k * k * (cin // groups) * cout + cout


class CaffeNetTest(tf.test.TestCase, parameterized.TestCase):

    def test_paper_parameter_count_is_pinned_and_fc6_fc7_dominate(self):
        model = caffenet.caffenet_bn("paper", feature_layer="fc7")
        convs = (
            _conv(11, 3, 96)
            + _conv(5, 96, 256, 2)
            + _conv(3, 256, 384)
            + _conv(3, 384, 384, 2)
            + _conv(3, 384, 256, 2)
        )
        bn = 4 * (96 + 256 + 384 + 384 + 256)
        fc6, fc7 = 9216 * 4096 + 4096, 4096 * 4096 + 4096
        self.assertEqual(model.count_params(), convs + bn + fc6 + fc7)
        self.assertEqual(model.count_params(), 56_873_728)
        self.assertGreater((fc6 + fc7) / model.count_params(), 0.95)

    def test_flow_and_difference_stacks_change_only_conv1(self):
        rgb = caffenet.caffenet_bn("paper").count_params()
        flow = caffenet.caffenet_bn("paper", in_channels=20, modality="flow").count_params()
        diff = caffenet.caffenet_bn("paper", in_channels=12, modality="diff").count_params()
        self.assertEqual(flow - rgb, 11 * 11 * 17 * 96)
        self.assertEqual(diff - rgb, 11 * 11 * 9 * 96)

    def test_vgg16_bn_parameter_count_is_pinned(self):
        # torchvision's vgg16_bn has 138,365,992 parameters with its 1000-way fc8 (4,097,000) and BN counted as
        # gamma and beta only; Keras also counts BN's moving mean and variance (2 x 4,224 channels).
        model = caffenet.vgg16_bn(feature_layer="fc7")
        self.assertEqual(model.count_params(), 138_365_992 - 4_097_000 + 2 * 4_224)

    @parameterized.product(variant=("small", "tiny"), layer=caffenet.FEATURE_LAYERS)
    def test_every_variant_and_feature_layer_runs(self, variant, layer):
        model = caffenet.caffenet_bn(variant, in_channels=12, modality="diff", feature_layer=layer)
        size = caffenet.CAFFENET_VARIANTS[variant].input_size
        out = model(np.random.default_rng(0).normal(size=(2, size, size, 12)).astype("float32"))
        self.assertEqual(out.shape[0], 2)
        self.assertTrue(np.all(np.isfinite(out.numpy())))

    def test_config_round_trip_gives_the_same_model(self):
        model = caffenet.caffenet_bn("tiny")
        clone = keras.Model.from_config(model.get_config())
        clone.set_weights(model.get_weights())
        x = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
        self.assertAllClose(model(x, training=False), clone(x, training=False))

    def test_bad_arguments_are_errors(self):
        with self.assertRaisesRegex(ValueError, "unknown CaffeNet variant"):
            caffenet.caffenet_bn("huge")
        with self.assertRaisesRegex(ValueError, "unknown feature layer"):
            caffenet.caffenet_bn("tiny", feature_layer="fc8")
        with self.assertRaisesRegex(ValueError, "3 channels"):
            caffenet.caffenet_bn("tiny", in_channels=20, modality="rgb")


if __name__ == "__main__":
    tf.test.main()
