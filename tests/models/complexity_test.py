"""Tests for edge_ssl.models.complexity: multiply-adds counted by hand."""

import tensorflow as tf

from edge_ssl.keras import keras
from edge_ssl.models import caffenet, complexity, video_resnet


class ComplexityTest(tf.test.TestCase):

    def test_conv_dense_and_groups_by_hand(self):
        inputs = keras.Input((8, 8, 4))
        x = keras.layers.Conv2D(6, 3, padding="same")(inputs)  # 8*8*6 outputs x 3*3*4
        x = keras.layers.Conv2D(6, 3, padding="valid", groups=2)(x)  # 6*6*6 outputs x 3*3*3
        x = keras.layers.DepthwiseConv2D(3)(x)  # 4*4*6 outputs x 3*3
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(5)(x)  # 5 outputs x 96
        model = keras.Model(inputs, x)
        expected = 8 * 8 * 6 * 36 + 6 * 6 * 6 * 27 + 4 * 4 * 6 * 9 + 5 * 96
        self.assertEqual(complexity.multiply_adds(model), expected)
        self.assertEqual(complexity.flops(model), 2 * expected)

    def test_nested_and_time_distributed_models_are_counted_per_frame(self):
        frame = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1)])
        clip = keras.Input((5, 4, 4, 3))
        model = keras.Model(clip, keras.layers.TimeDistributed(frame)(clip))
        self.assertEqual(complexity.multiply_adds(model), 5 * 4 * 4 * 2 * 3)

    def test_paper_caffenet_is_about_0_7_giga_multiply_adds(self):
        # AlexNet-style CaffeNet: ~0.66 G multiply-adds for the convolutions plus ~54 M in fc6 and fc7.
        macs = complexity.multiply_adds(caffenet.caffenet_bn("paper", feature_layer="fc7"))
        self.assertBetween(macs, 0.6e9, 0.8e9)

    def test_conv3d_counts_its_temporal_kernel(self):
        model = video_resnet.video_resnet("tiny", frames=4)
        conv1 = model.get_layer("visual_conv1")
        expected = 4 * 16 * 16 * 8 * (5 * 7 * 7 * 3)
        self.assertEqual(complexity._macs(conv1), expected)  # pylint: disable=protected-access


if __name__ == "__main__":
    tf.test.main()
