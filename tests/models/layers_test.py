"""Tests for edge_ssl.models.layers.StandardizedConv2D: the standardisation folded into a convolution's weights."""

import numpy as np
import tensorflow as tf

from edge_ssl.keras import keras
from edge_ssl.models import layers

MEAN = (0.485, 0.456, 0.406, 0.0, 0.0, 0.0)
STD = (0.229, 0.224, 0.225, 0.229, 0.224, 0.225)


class StandardizedConv2DTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        self.x = np.random.default_rng(0).uniform(0.0, 1.0, (2, 12, 12, 6)).astype("float32")

    def _pair(self, strides=1, use_bias=True):
        folded = layers.StandardizedConv2D(
            5,
            3,
            strides=strides,
            padding="same",
            use_bias=use_bias,
            bias_initializer="random_normal",
            input_mean=MEAN,
            input_std=STD,
        )
        folded.build(self.x.shape)
        plain = keras.layers.Conv2D(5, 3, strides=strides, padding="same", use_bias=use_bias)
        plain.build(self.x.shape)
        plain.set_weights(folded.get_weights())
        return folded, plain

    def test_equals_standardize_then_conv_inside_the_image(self):
        for strides, use_bias in ((1, True), (1, False), (2, False)):
            with self.subTest(strides=strides, use_bias=use_bias):
                folded, plain = self._pair(strides, use_bias)
                got = folded(self.x).numpy()
                want = plain(layers.Standardize(MEAN, STD)(self.x)).numpy()
                # Away from the zero-padded border the two are the same function.
                border = 1
                self.assertAllClose(
                    got[:, border:-border, border:-border],
                    want[:, border:-border, border:-border],
                    atol=1e-5,
                )
                # At the border they differ: padding is a zero of x, not of the standardised x.
                self.assertGreater(np.abs(got - want).max(), 0.1)

    def test_scalar_statistics_broadcast_to_every_channel(self):
        folded = layers.StandardizedConv2D(4, 1, input_mean=0.5, input_std=0.25)
        plain = keras.layers.Conv2D(4, 1)
        folded.build(self.x.shape)
        plain.build(self.x.shape)
        plain.set_weights(folded.get_weights())
        self.assertAllClose(folded(self.x), plain((self.x - 0.5) / 0.25), atol=1e-5)

    def test_serialization_round_trip(self):
        folded, _ = self._pair()
        again = layers.StandardizedConv2D.from_config(folded.get_config())
        again.build(self.x.shape)
        again.set_weights(folded.get_weights())
        self.assertEqual(again.input_mean, MEAN)
        self.assertEqual(again.input_std, STD)
        self.assertAllClose(again(self.x), folded(self.x))

    def test_bad_statistics_are_errors(self):
        with self.assertRaisesRegex(ValueError, "input_std must be positive"):
            layers.StandardizedConv2D(4, 3, input_std=(1.0, 0.0, 1.0))
        with self.assertRaisesRegex(ValueError, "input_mean has 3 values for 6 input channels"):
            layers.StandardizedConv2D(4, 3, input_mean=(0.5, 0.5, 0.5))(self.x)

    def test_folds_into_the_exported_convolution(self):
        """The converted graph holds the convolution alone: no subtract, multiply or divide is left."""
        inputs = keras.Input((12, 12, 6))
        model = keras.Model(
            inputs,
            layers.StandardizedConv2D(5, 3, padding="same", input_mean=MEAN, input_std=STD)(inputs),
        )
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        content = converter.convert()
        from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top

        ops = {op["op_name"] for op in litert.Interpreter(model_content=content)._get_ops_details()}
        self.assertEqual(ops, {"CONV_2D"})


if __name__ == "__main__":
    tf.test.main()
