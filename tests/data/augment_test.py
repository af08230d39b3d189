"""Tests for edge_ssl.data.augment: one draw for all modalities, eagerly and inside Dataset.map."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.data import augment, keypoints, synthetic

T, H, W = 4, 12, 16


def _example(seed: int = 0) -> dict[str, tf.Tensor]:
    """An example whose modalities encode pixel coordinates, so a misaligned crop or flip shows."""
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(
        np.arange(H, dtype=np.float32), np.arange(W, dtype=np.float32), indexing="ij"
    )
    coords = np.stack([xs, ys], axis=-1)[None].repeat(
        T, axis=0
    )  # [T, H, W, 2]: (x, y) of each pixel
    rgb = rng.uniform(size=(T, H, W, 3)).astype(np.float32)
    rgb[..., 0] = xs / W
    rgb[..., 1] = ys / H
    flow = rng.normal(size=(T, H, W, 2)).astype(np.float32)
    flow[0] = 0
    diff = np.concatenate([np.zeros_like(rgb[:1]), rgb[1:] - rgb[:-1]])
    pose2d = rng.uniform([2, 2], [W - 3, H - 3], size=(T, 17, 2)).astype(np.float32)
    signals = rng.uniform(size=(T, keypoints.NUM_LIMBS)).astype(np.float32)
    signals[0] = 0  # the contract: no change into the first frame
    moved = rng.integers(-1, 2, size=(T, keypoints.NUM_LIMBS)).astype(np.int32)
    moved[0] = -1
    return {
        "rgb": tf.constant(rgb),
        "diff": tf.constant(diff),
        "flow": tf.constant(flow),
        "coords": tf.constant(coords),  # not a known key: passes through untouched
        "pose2d": tf.constant(pose2d),
        "signals": tf.constant(signals),
        "moved": tf.constant(moved),
        "gaze": tf.constant(np.array([[0.25, 0.5], [-1, -1], [0.9, 0.1], [0.5, 0.5]], np.float32)),
        "label": tf.constant(3),
    }


def _run(fn, example, mode, seed=(1, 2)):
    """Calls fn(example, seed) eagerly, or through Dataset.map, and returns numpy arrays."""
    seed = tf.constant(seed, tf.int64)
    if mode == "eager":
        out = fn(example, seed)
    else:
        dataset = tf.data.Dataset.from_tensors((example, seed)).map(fn)
        out = next(iter(dataset))
    return {k: v.numpy() for k, v in out.items()}


MODES = (("eager", "eager"), ("dataset_map", "map"))


class AugmentTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(*MODES)
    def test_random_crop_is_one_crop_for_every_modality(self, mode):
        ex = _example()
        out = _run(lambda e, s: augment.random_crop(e, (8, 10), s), ex, mode)
        self.assertEqual(out["rgb"].shape, (T, 8, 10, 3))
        self.assertEqual(out["flow"].shape, (T, 8, 10, 2))
        left, top = out["rgb"][0, 0, 0, 0] * W, out["rgb"][0, 0, 0, 1] * H
        left, top = int(round(left)), int(round(top))
        self.assertAllClose(out["flow"], ex["flow"].numpy()[:, top : top + 8, left : left + 10])
        self.assertAllClose(out["diff"], ex["diff"].numpy()[:, top : top + 8, left : left + 10])
        self.assertAllClose(out["pose2d"], ex["pose2d"].numpy() - [left, top])
        self.assertAllEqual(out["coords"], ex["coords"].numpy())
        self.assertEqual(out["label"], 3)

    @parameterized.named_parameters(*MODES)
    def test_same_seed_same_crop_other_seed_other_crop(self, mode):
        crop = lambda e, s: augment.random_crop(e, (4, 4), s)  # noqa: E731
        a = _run(crop, _example(), mode, (5, 6))
        b = _run(crop, _example(), mode, (5, 6))
        self.assertAllEqual(a["rgb"], b["rgb"])
        tops = {tuple(_run(crop, _example(), mode, (i, 0))["rgb"][0, 0, 0, :2]) for i in range(12)}
        self.assertGreater(len(tops), 3)

    @parameterized.named_parameters(*MODES)
    def test_resize_scales_flow_and_keypoints_with_the_image(self, mode):
        ex = _example()
        out = _run(lambda e, s: augment.resize(e, (2 * H, W // 2)), ex, mode)
        self.assertEqual(out["rgb"].shape, (T, 2 * H, W // 2, 3))
        self.assertAllClose(
            out["flow"].mean(axis=(1, 2)),
            ex["flow"].numpy().mean(axis=(1, 2)) * [0.5, 2.0],
            atol=0.05,
        )
        self.assertAllClose(out["pose2d"], (ex["pose2d"].numpy() + 0.5) * [0.5, 2.0] - 0.5)
        # rgb channel 0 encodes x / W: after resizing, pixel x' sits at x = (x' + 0.5) * 2 - 0.5.
        self.assertAllClose(out["rgb"][0, 0, 3, 0], ((3 + 0.5) * 2 - 0.5) / W, atol=1e-5)

    def test_crop_larger_than_the_image_is_an_error(self):
        with self.assertRaises(tf.errors.InvalidArgumentError):
            augment.center_crop(_example(), (H + 1, W))

    def test_crop_moves_gaze_and_drops_it_outside(self):
        out = augment.crop(_example(), tf.constant(0), tf.constant(8), (12, 8))
        gaze = out["gaze"].numpy()
        self.assertAllClose(gaze[0], [-1, -1])  # x = 0.25 * 16 = 4 is left of the crop
        self.assertAllClose(gaze[2], [(0.9 * 16 - 8) / 8, 0.1])
        self.assertAllClose(gaze[1], [-1, -1])

    @parameterized.named_parameters(*MODES)
    def test_horizontal_flip_is_consistent_across_keys(self, mode):
        ex = _example()
        out = _run(lambda e, s: augment.horizontal_flip(e), ex, mode)
        self.assertAllClose(out["rgb"], ex["rgb"].numpy()[:, :, ::-1])
        self.assertAllClose(out["flow"][..., 0], -ex["flow"].numpy()[:, :, ::-1, 0])
        self.assertAllClose(out["flow"][..., 1], ex["flow"].numpy()[:, :, ::-1, 1])
        left, right = keypoints.INDEX["left_wrist"], keypoints.INDEX["right_wrist"]
        pose = ex["pose2d"].numpy()
        self.assertAllClose(
            out["pose2d"][:, right], np.stack([W - 1 - pose[:, left, 0], pose[:, left, 1]], -1)
        )
        l_arm, r_arm = keypoints.LIMB_NAMES.index("left_forearm"), keypoints.LIMB_NAMES.index(
            "right_forearm"
        )
        self.assertAllEqual(out["signals"][:, r_arm], ex["signals"].numpy()[:, l_arm])
        self.assertAllEqual(out["moved"][:, l_arm], ex["moved"].numpy()[:, r_arm])
        self.assertAllClose(out["gaze"], [[0.75, 0.5], [-1, -1], [0.1, 0.1], [0.5, 0.5]])

    @parameterized.named_parameters(*MODES)
    def test_flip_mirrors_labels_only_with_a_label_permutation(self, mode):
        ex = dict(_example(), label=tf.constant(0, tf.int32))
        flip = synthetic.ACTION_FLIP
        out = _run(lambda e, s: augment.horizontal_flip(e, flip), ex, mode)
        self.assertEqual(int(out["label"]), synthetic.ACTIONS.index("wave_right"))
        self.assertEqual(int(_run(lambda e, s: augment.horizontal_flip(e), ex, mode)["label"]), 0)
        for prob, want in ((1.0, int(flip[0])), (0.0, 0)):
            got = _run(lambda e, s, p=prob: augment.random_flip(e, s, p, label_flip=flip), ex, mode)
            self.assertEqual(int(got["label"]), want)

    def test_flip_twice_and_reverse_twice_are_identities(self):
        ex = _example()
        for fn in (augment.horizontal_flip, augment.temporal_reversal):
            twice = fn(fn(ex))
            for key in ex:
                self.assertAllClose(twice[key], ex[key], msg=f"{fn.__name__} {key}")

    @parameterized.named_parameters(*MODES)
    def test_temporal_reversal_negates_and_realigns_increments(self, mode):
        ex = _example()
        out = _run(lambda e, s: augment.temporal_reversal(e), ex, mode)
        rgb = ex["rgb"].numpy()[::-1]
        self.assertAllClose(out["rgb"], rgb)
        self.assertAllClose(
            out["diff"], np.concatenate([np.zeros_like(rgb[:1]), rgb[1:] - rgb[:-1]])
        )
        flow = ex["flow"].numpy()
        self.assertAllClose(out["flow"][1:], -flow[1:][::-1])
        self.assertAllEqual(out["flow"][0], np.zeros_like(flow[0]))
        self.assertAllClose(out["signals"][1:], ex["signals"].numpy()[1:][::-1])
        self.assertAllEqual(out["moved"][0], -np.ones(keypoints.NUM_LIMBS))
        self.assertAllClose(out["pose2d"], ex["pose2d"].numpy()[::-1])

    @parameterized.named_parameters(*MODES)
    def test_random_flip_and_reversal_follow_their_probability(self, mode):
        ex = _example()
        never = _run(lambda e, s: augment.random_flip(e, s, prob=0.0), ex, mode)
        always = _run(lambda e, s: augment.random_reversal(e, s, prob=1.0), ex, mode)
        self.assertAllClose(never["rgb"], ex["rgb"])
        self.assertAllClose(always["rgb"], ex["rgb"].numpy()[::-1])
        flipped = [
            not np.allclose(_run(augment.random_flip, ex, mode, (i, 1))["rgb"], ex["rgb"])
            for i in range(20)
        ]
        self.assertBetween(sum(flipped), 4, 16)

    @parameterized.named_parameters(*MODES)
    def test_channel_split_copies_one_channel(self, mode):
        ex = _example()
        out = _run(augment.channel_split, ex, mode)["rgb"]
        self.assertAllEqual(out[..., 0], out[..., 1])
        self.assertAllEqual(out[..., 0], out[..., 2])
        self.assertTrue(
            any(np.array_equal(out[..., 0], ex["rgb"].numpy()[..., c]) for c in range(3))
        )
        averaged = augment.channel_average(ex)["rgb"].numpy()
        self.assertAllClose(averaged[..., 1], ex["rgb"].numpy().mean(-1))

    def test_random_grayscale_greys_every_frame_or_none(self):
        rgb = _example()["rgb"]
        seed = tf.constant([1, 2])
        grey = augment.random_grayscale(rgb, seed, 1.0).numpy()
        self.assertAllClose(grey[..., 0], grey[..., 2])
        self.assertAllClose(grey[..., :1], tf.image.rgb_to_grayscale(rgb), atol=1e-6)
        self.assertAllEqual(augment.random_grayscale(rgb, seed, 0.0), rgb)
        draws = {
            bool(np.allclose(augment.random_grayscale(rgb, tf.constant([k, 0]), 0.5), rgb))
            for k in range(20)
        }
        self.assertEqual(draws, {True, False})  # both outcomes occur at 0.5

    @parameterized.named_parameters(*MODES)
    def test_color_jitter_changes_only_rgb_and_is_one_draw_per_clip(self, mode):
        ex = _example()
        ex["rgb"] = tf.concat(
            [ex["rgb"][:1], ex["rgb"][:1], ex["rgb"][2:]], axis=0
        )  # frames 0 and 1 equal
        out = _run(augment.color_jitter, ex, mode, (7, 7))
        self.assertNotAllClose(out["rgb"], ex["rgb"])
        self.assertAllClose(out["rgb"][0], out["rgb"][1])
        self.assertAllInRange(out["rgb"], 0.0, 1.0)
        self.assertAllClose(out["flow"], ex["flow"])
        again = _run(augment.color_jitter, ex, mode, (7, 7))
        self.assertAllClose(again["rgb"], out["rgb"])

    def test_with_seeds_is_reproducible_and_matches_eager(self):
        dataset = tf.data.Dataset.from_tensors(_example()).repeat(3)
        crop = lambda e, s: augment.random_crop(e, (6, 6), s)  # noqa: E731
        runs = [
            [x["rgb"].numpy() for x in augment.with_seeds(dataset, seed=11).map(crop)]
            for _ in range(2)
        ]
        self.assertAllClose(runs[0], runs[1])
        seeds = [s for _, s in augment.with_seeds(dataset, seed=11)]
        self.assertAllClose(runs[0][1], crop(_example(), seeds[1])["rgb"])


if __name__ == "__main__":
    tf.test.main()
