"""Tests for edge_ssl.data.motion: frame differences, OpenCV flow, its quantised cache, high-motion sampling, moving
pixels."""

import glob
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.data import motion


def _moving_texture(frames: int = 4, size: int = 48, dx: int = 2, dy: int = 1) -> np.ndarray:
    """A smooth random texture translated by (dx, dy) pixels per frame."""
    rng = np.random.default_rng(0)
    big = rng.uniform(0, 255, (size * 2, size * 2)).astype(np.float32)
    big = tf.nn.avg_pool2d(big[None, :, :, None], 5, 1, "SAME")[0, :, :, 0].numpy()
    big = (big - big.min()) / (big.max() - big.min()) * 255
    out = []
    for t in range(frames):
        y0, x0 = size // 2 - t * dy, size // 2 - t * dx
        grey = big[y0 : y0 + size, x0 : x0 + size]
        out.append(np.repeat(grey[:, :, None], 3, axis=2))
    return np.rint(np.stack(out)).astype(np.uint8)


class FrameDifferenceTest(tf.test.TestCase):

    def test_differences_have_a_zero_first_frame(self):
        rgb = np.random.default_rng(1).uniform(size=(2, 5, 4, 4, 3)).astype(np.float32)
        diff = motion.frame_differences(rgb).numpy()
        self.assertAllEqual(diff[:, 0], np.zeros_like(diff[:, 0]))
        self.assertAllClose(diff[:, 1:], rgb[:, 1:] - rgb[:, :-1])
        graph = tf.function(motion.frame_differences)(tf.constant(rgb)).numpy()
        self.assertAllClose(graph, diff)

    def test_difference_stack_is_twelve_channels_from_five_frames(self):
        rgb = np.random.default_rng(2).uniform(size=(5, 4, 4, 3)).astype(np.float32)
        stack = motion.difference_stack(rgb).numpy()
        self.assertEqual(stack.shape, (4, 4, 12))
        for k in range(4):
            self.assertAllClose(stack[..., 3 * k : 3 * k + 3], rgb[k + 1] - rgb[k])
        with self.assertRaisesRegex(ValueError, "needs 5 frames"):
            motion.difference_stack(rgb[:4])

    def test_grey_differences_are_the_luma_differences_one_channel_each(self):
        rgb = np.random.default_rng(3).uniform(size=(5, 4, 4, 3)).astype(np.float32)
        luma = rgb @ np.float32([0.299, 0.587, 0.114])  # Rec. 601
        diff = motion.frame_differences(rgb, grey=True).numpy()
        self.assertEqual(diff.shape, (5, 4, 4, 1))
        self.assertAllClose(diff[1:, ..., 0], luma[1:] - luma[:-1], atol=1e-3)
        stack = motion.difference_stack(rgb, grey=True).numpy()
        self.assertEqual(stack.shape, (4, 4, 4))
        for k in range(4):
            self.assertAllClose(stack[..., k], luma[k + 1] - luma[k], atol=1e-3)
        # A change of colour at constant luma is no grey motion, and is colour motion.
        red, green = np.zeros((2, 1, 1, 3), np.float32), np.zeros((2, 1, 1, 3), np.float32)
        red[1, ..., 0], green[1, ..., 1] = 0.587, 0.299
        shift = np.concatenate([red[1:], green[1:]])
        self.assertAllClose(motion.frame_differences(shift, grey=True)[1], [[[0.0]]], atol=1e-3)
        self.assertGreater(float(tf.reduce_max(tf.abs(motion.frame_differences(shift)[1]))), 0.2)


class FlowTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters("dis", "farneback")
    def test_flow_recovers_a_known_translation(self, method):
        flow = motion.compute_flow(_moving_texture(dx=2, dy=1), method)
        self.assertEqual(flow.shape, (4, 48, 48, 2))
        self.assertAllEqual(flow[0], np.zeros_like(flow[0]))
        centre = flow[1:, 12:-12, 12:-12]
        self.assertAllClose(np.median(centre[..., 0]), 2.0, atol=0.3)
        self.assertAllClose(np.median(centre[..., 1]), 1.0, atol=0.3)

    def test_add_flow_in_a_dataset_matches_compute_flow(self):
        frames = _moving_texture()
        example = {"rgb": tf.constant(frames.astype(np.float32) / 255.0), "label": tf.constant(1)}
        out = next(iter(tf.data.Dataset.from_tensors(example).map(motion.add_flow)))
        self.assertEqual(out["flow"].shape, (4, 48, 48, 2))
        self.assertAllClose(out["flow"], motion.compute_flow(frames), atol=1e-4)
        self.assertEqual(int(out["label"]), 1)

    def test_bad_input_and_method_are_errors(self):
        with self.assertRaisesRegex(ValueError, "uint8"):
            motion.compute_flow(np.zeros((3, 8, 8, 3), np.float32))
        with self.assertRaisesRegex(ValueError, "unknown flow method"):
            motion.compute_flow(np.zeros((3, 8, 8, 3), np.uint8), "raft")
        with self.assertRaisesRegex(ValueError, "unknown flow method"):
            motion.FlowCache(self.get_temp_dir(), method="raft")

    def test_quantisation_error_is_within_half_a_step_and_clips_at_bound(self):
        flow = np.random.default_rng(3).normal(0, 8, (3, 6, 6, 2)).astype(np.float32)
        codes, scale = motion.quantize_flow(flow, bound=20.0)
        back = motion.dequantize_flow(codes, scale)
        clipped = np.clip(flow, -20, 20)
        self.assertLessEqual(scale.max(), 20.0)
        for t in range(3):
            self.assertLessEqual(np.abs(back[t] - clipped[t]).max(), scale[t] / 254 + 1e-5)

    def test_cache_computes_once_and_recovers_from_a_corrupt_entry(self):
        frames = _moving_texture()
        cache = motion.FlowCache(os.path.join(self.get_temp_dir(), "flow"))
        first = cache.get("video.mp4|123|456", frames)
        second = cache.get("video.mp4|123|456", frames)
        self.assertEqual((cache.misses, cache.hits), (1, 1))
        self.assertAllClose(first.flow, second.flow)
        self.assertAllClose(first.magnitude, motion.mean_magnitude(motion.compute_flow(frames)))
        self.assertAllClose(first.flow, motion.compute_flow(frames), atol=first.magnitude.max())
        (entry,) = glob.glob(os.path.join(cache.cache_dir, "*", "*.npz"))
        with open(entry, "wb") as f:
            f.write(b"truncated")
        third = cache.get("video.mp4|123|456", frames)
        self.assertEqual(cache.misses, 2)
        self.assertAllClose(third.flow, first.flow)
        cache.get("video.mp4|124|456", frames)  # the source changed: a new entry
        self.assertEqual(cache.misses, 3)
        self.assertEmpty(glob.glob(os.path.join(cache.cache_dir, "*", "*.partial")))


class MovingPixelsTest(tf.test.TestCase):

    def _still(self, frames=6, sigma=5 / 255, seed=0):
        """A fixed random scene under fresh camera noise of `sigma` on every frame, float [T, 32, 32, 3]."""
        rng = np.random.default_rng(seed)
        scene = rng.uniform(0.2, 0.8, (1, 32, 32, 3))
        return np.clip(scene + rng.normal(0, sigma, (frames, 32, 32, 3)), 0, 1)

    def test_camera_noise_and_a_global_brightness_change_are_not_movement(self):
        still = self._still()
        self.assertLess(motion.moving_fractions(still).max(), 0.002)
        flicker = still * np.linspace(1.0, 1.3, len(still))[:, None, None, None]  # auto exposure
        self.assertLess(motion.moving_fractions(np.clip(flicker, 0, 1)).max(), 0.01)

    def test_a_moving_square_is_the_share_of_pixels_it_uncovers_and_covers(self):
        frames = np.full((3, 32, 32, 3), 0.2, np.float32)
        frames[0, 8:16, 8:16] = 0.9
        frames[1, 8:16, 12:20] = 0.9  # 4 px right: 8 x 4 pixels uncovered, 8 x 4 covered
        frames[2] = frames[1]
        self.assertAllClose(motion.moving_fractions(frames), [64 / 1024, 0.0])
        # Grey frames give the same; a change smaller than the level does not count.
        self.assertAllClose(motion.moving_fractions(frames.mean(-1)), [64 / 1024, 0.0])
        self.assertAllClose(motion.moving_fractions(frames, level=0.8), [0.0, 0.0])

    def test_window_movement_is_the_middle_half_of_the_window(self):
        # A window that moves only at its ends is still at its centre, where the recognizer times its decision.
        self.assertEqual(motion.window_movement([0.4, 0.4, 0.0, 0.0, 0.0, 0.0, 0.4, 0.4]), 0.0)
        self.assertAlmostEqual(motion.window_movement([0.0, 0.1, 0.3, 0.0]), 0.2)
        self.assertAlmostEqual(
            motion.window_movement([0.2, 0.4, 0.0]), 0.2
        )  # < 4 pairs: all of them
        with self.assertRaisesRegex(ValueError, "at least one"):
            motion.window_movement([])

    def test_movement_statistics_are_quantiles_over_windows(self):
        moving = np.full((4, 32, 32, 3), 0.2, np.float32)
        for t in range(4):
            moving[t, :, 4 * t : 4 * t + 8] = 0.9
        stats = motion.movement_statistics([moving, self._still(4)] + [moving] * 18)
        self.assertEqual(stats["windows"], 20)
        self.assertAllClose(stats["median"], 0.25, atol=1e-6)  # 2 x 4 columns of 32 move each frame
        self.assertLess(stats["p5"], stats["median"])
        self.assertEqual(stats["level"], motion.MOVING_LEVEL)
        empty = motion.movement_statistics([])
        self.assertEqual((empty["windows"], empty["p5"], empty["median"]), (0, None, None))

    def test_a_single_frame_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "T >= 2"):
            motion.moving_fractions(np.zeros((1, 8, 8, 3)))


class HighMotionTest(tf.test.TestCase):

    def test_windows_are_drawn_where_the_motion_is(self):
        magnitude = np.zeros(40)
        magnitude[30:33] = 5.0
        starts = motion.high_motion_window_starts(magnitude, 10, 500, np.random.default_rng(0))
        self.assertTrue(np.all((starts >= 21) & (starts <= 30)), np.unique(starts))
        # Windows holding all three moving frames are drawn three times as often as those holding one.
        self.assertGreater(np.mean(starts == 25), 1.5 * np.mean(starts == 21))

    def test_no_motion_gives_uniform_starts_and_short_input_is_an_error(self):
        starts = motion.high_motion_window_starts(np.zeros(12), 10, 300, np.random.default_rng(0))
        self.assertEqual(set(starts.tolist()), {0, 1, 2})
        with self.assertRaisesRegex(ValueError, "at least window=10"):
            motion.high_motion_window_starts(np.ones(5), 10, 1, np.random.default_rng(0))


if __name__ == "__main__":
    tf.test.main()
