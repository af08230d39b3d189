"""Tests for edge_ssl.models.video_resnet: pinned parameter counts, the 1/8 motion pathway, zero-init blocks."""

import numpy as np
import tensorflow as tf

from edge_ssl.keras import keras
from edge_ssl.models import video_resnet


class VideoResNetTest(tf.test.TestCase):

    def test_paper_parameter_counts_are_pinned(self):
        # Slow-only R50 (SlowFast's SLOW_8x8_R50 backbone without its classifier, BN statistics included).
        self.assertEqual(video_resnet.video_resnet("paper").count_params(), 31_725_248)
        motion = video_resnet.motion_resnet("paper")
        self.assertEqual(motion.output_shape, (None, 256))
        self.assertEqual(motion.count_params(), 380_400)

    def test_tiny_clip_runs_and_features_have_the_stage_width(self):
        model = video_resnet.video_resnet("tiny", frames=4)
        out = model(np.random.default_rng(0).uniform(size=(2, 4, 32, 32, 3)).astype("float32"))
        self.assertEqual(out.shape, (2, 128))
        motion = video_resnet.motion_resnet("tiny", frames=4)
        self.assertEqual(motion(np.zeros((2, 4, 32, 32, 2), "float32")).shape, (2, 16))

    def test_blocks_start_as_identity_plus_relu(self):
        model = video_resnet.video_resnet("tiny", frames=4)
        block_out = model.get_layer("visual_res2_0_out").output
        shortcut = model.get_layer("visual_res2_0_proj_bn").output
        probe = keras.Model(model.input, [block_out, shortcut])
        out, short = probe(
            np.random.default_rng(1).uniform(size=(1, 4, 32, 32, 3)).astype("float32")
        )
        self.assertAllClose(out, tf.nn.relu(short))

    def test_config_round_trip(self):
        model = video_resnet.motion_resnet("tiny", frames=4)
        clone = keras.Model.from_config(model.get_config())
        clone.set_weights(model.get_weights())
        x = np.random.default_rng(2).normal(size=(2, 4, 32, 32, 2)).astype("float32")
        self.assertAllClose(model(x), clone(x))

    def test_bad_arguments_are_errors(self):
        with self.assertRaisesRegex(ValueError, "unknown video ResNet variant"):
            video_resnet.video_resnet("r101")
        with self.assertRaisesRegex(ValueError, "5 temporal kernels"):
            video_resnet.video_resnet("tiny", temporal_kernels=(1, 1))


if __name__ == "__main__":
    tf.test.main()
