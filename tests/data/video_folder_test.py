"""Tests for the video folder reader: sampling rules, probing every kind of bad input, decoding, the tf.data pipeline."""

import os

import cv2
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.data import decode, motion, sampling, video_folder
from edge_ssl.data.folder_index import DataFolderError, DecodeReport

H, W = 24, 32


def frame_value(i: int) -> np.ndarray:
    """A BGR frame whose colour encodes its index, so decoded clips show which frames they hold."""
    return np.full([H, W, 3], (10 + 20 * i, 200 - 15 * i, 40 + 10 * i), np.uint8)


def write_video(path: str, num_frames: int = 10, fourcc: str = "mp4v", fps: float = 10.0) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened(), path
    for i in range(num_frames):
        writer.write(frame_value(i))
    writer.release()
    return path


def write_image(path: str, image: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ok, data = cv2.imencode(os.path.splitext(path)[1], image)
    assert ok
    data.tofile(path)


def write_frames(folder: str, num_frames: int = 5, ext: str = ".png") -> str:
    for i in range(num_frames):
        write_image(os.path.join(folder, f"{i:04d}{ext}"), frame_value(i))
    return folder


class SamplingTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters("random", "uniform", "center")
    def test_long_video_clips_fit_and_keep_their_stride(self, mode):
        rng = np.random.default_rng(0)
        idx = sampling.clip_indices(100, 8, 3, mode, num_clips=4, rng=rng)
        self.assertEqual(idx.shape, (4, 8))
        self.assertTrue(np.all(np.diff(idx, axis=1) == 3))
        self.assertAllInRange(idx, 0, 99)

    def test_center_is_centred(self):
        np.testing.assert_array_equal(sampling.clip_indices(10, 2, 2, "center"), [[3, 5]])

    def test_uniform_spreads_from_first_to_last_start(self):
        starts = sampling.clip_starts(21, 4, 2, "uniform", num_clips=3)
        np.testing.assert_array_equal(starts, [0, 7, 14])  # last start = 21 - 7

    def test_random_starts_cover_the_range_and_depend_on_the_seed(self):
        starts = sampling.clip_starts(12, 3, 1, "random", 500, np.random.default_rng(1))
        self.assertEqual(set(starts.tolist()), set(range(10)))
        other = sampling.clip_starts(12, 3, 1, "random", 500, np.random.default_rng(2))
        self.assertFalse(np.array_equal(starts, other))

    @parameterized.parameters("random", "uniform", "center")
    def test_short_video_repeats_the_last_frame(self, mode):
        idx = sampling.clip_indices(5, 8, 1, mode, num_clips=2, rng=np.random.default_rng(0))
        np.testing.assert_array_equal(idx, [[0, 1, 2, 3, 4, 4, 4, 4]] * 2)
        idx = sampling.clip_indices(5, 4, 2, mode, rng=np.random.default_rng(0))
        np.testing.assert_array_equal(idx, [[0, 2, 4, 4]])

    def test_bad_arguments_raise(self):
        with self.assertRaisesRegex(ValueError, "mode"):
            sampling.clip_indices(5, 2, 1, "middle")
        with self.assertRaisesRegex(ValueError, "stride"):
            sampling.clip_indices(5, 2, 0, "center")
        with self.assertRaisesRegex(ValueError, "rng"):
            sampling.clip_indices(5, 2, 1, "random")


class IndexTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.get_temp_dir(), self.id().split(".")[-1], "my data")

    def test_missing_root_is_a_clear_error(self):
        with self.assertRaisesRegex(DataFolderError, "does not exist: .*my data"):
            video_folder.index_video_folder(self.root)

    def test_empty_root_is_a_clear_error(self):
        os.makedirs(self.root)
        with open(os.path.join(self.root, ".DS_Store"), "w") as f:
            f.write("x")
        with self.assertRaisesRegex(DataFolderError, "no class folders in .*my data"):
            video_folder.index_video_folder(self.root)

    def test_good_clips_of_every_kind_with_spaces_and_non_ascii_paths(self):
        write_video(os.path.join(self.root, "wave hand", "clip one.mp4"), 10)
        write_video(os.path.join(self.root, "wave hand", "ÉTÉ.AVI"), 7, "MJPG")
        write_frames(os.path.join(self.root, "jümp", "frames ä"), 5)
        write_frames(os.path.join(self.root, "jümp", "jpegs"), 4, ".jpg")
        open(os.path.join(self.root, "jümp", ".DS_Store"), "w").close()
        index = video_folder.index_video_folder(self.root)
        self.assertEqual(index.classes, ["jümp", "wave hand"])
        self.assertEqual(index.skipped, [])
        by_name = {os.path.basename(c.path): c for c in index.clips}
        self.assertEqual(sorted(by_name), ["clip one.mp4", "frames ä", "jpegs", "ÉTÉ.AVI"])
        self.assertEqual(by_name["clip one.mp4"].num_frames, 10)
        self.assertEqual(by_name["clip one.mp4"].label, 1)
        self.assertEqual(by_name["clip one.mp4"].kind, "video")
        self.assertAlmostEqual(by_name["clip one.mp4"].fps, 10.0)
        self.assertEqual((by_name["ÉTÉ.AVI"].height, by_name["ÉTÉ.AVI"].width), (H, W))
        self.assertEqual(by_name["ÉTÉ.AVI"].num_frames, 7)
        self.assertEqual(by_name["frames ä"].kind, "frames")
        self.assertEqual(by_name["frames ä"].num_frames, 5)
        self.assertEqual(by_name["frames ä"].label, 0)
        self.assertEqual(index.clips_per_class(), {"jümp": 2, "wave hand": 2})

    def test_every_bad_input_is_skipped_with_its_reason(self):
        good = write_video(os.path.join(self.root, "a", "good.mp4"), 10)
        bad = os.path.join(self.root, "b")
        os.makedirs(bad)
        open(os.path.join(bad, "zero.mp4"), "w").close()
        with open(good, "rb") as f:
            data = f.read()
        with open(os.path.join(bad, "truncated.mp4"), "wb") as f:
            f.write(data[: len(data) // 2])  # the index (moov) is at the end: nothing opens
        with open(os.path.join(bad, "text.avi"), "w") as f:
            f.write("this is not a video\n")
        with open(os.path.join(bad, "notes.txt"), "w") as f:
            f.write("notes\n")
        mixed = write_frames(os.path.join(bad, "mixed"), 3)
        write_image(os.path.join(mixed, "0009.png"), np.zeros([H // 2, W // 2, 3], np.uint8))
        broken = write_frames(os.path.join(bad, "broken frame"), 3)
        with open(os.path.join(broken, "0001.png"), "wb") as f:
            f.write(b"\x89PNG garbage")
        os.makedirs(os.path.join(bad, "no frames"))
        avi = write_video(os.path.join(self.root, "a", "long.avi"), 20, "MJPG")
        with open(avi, "rb") as f:
            data = f.read()
        with open(os.path.join(bad, "truncated.avi"), "wb") as f:
            f.write(data[: len(data) * 4 // 5])  # AVI's header and first frames survive
        with open(os.path.join(self.root, "readme.md"), "w") as f:
            f.write("stray file at the root\n")
        # The folder's own metadata: neither a class nor a skip.
        for name in ("world.json", "views.csv"):
            with open(os.path.join(self.root, name), "w") as f:
                f.write("{}\n")

        index = video_folder.index_video_folder(self.root)
        reasons = {os.path.relpath(p, self.root): r for p, r in index.skipped}
        self.assertRegex(reasons["b/zero.mp4"], "empty file")
        self.assertRegex(reasons["b/truncated.mp4"], "corrupt or truncated MP4/MOV file")
        self.assertRegex(reasons["b/text.avi"], "^not a video: no known container signature")
        self.assertRegex(reasons["b/notes.txt"], "^not a video")
        self.assertRegex(reasons["b/mixed"], "differ in size: 0000.png is 32x24, 0009.png is 16x12")
        self.assertRegex(reasons["b/broken frame"], "0001.png does not decode")
        self.assertRegex(reasons["b/no frames"], "no frames")
        self.assertRegex(reasons["b/truncated.avi"], "truncated: the container declares 20 frames")
        self.assertRegex(reasons["readme.md"], "not a class folder")
        self.assertLen(reasons, 9)
        self.assertEqual([os.path.basename(c.path) for c in index.clips], ["good.mp4", "long.avi"])
        self.assertEqual(index.empty_classes(), ["b"])


class DecodeTest(tf.test.TestCase, parameterized.TestCase):

    def test_png_frames_decode_exactly_as_rgb(self):
        folder = write_frames(os.path.join(self.get_temp_dir(), "exact"), 4)
        clip = decode.probe_frame_folder(folder, 0)
        frames = decode.read_frame_folder(clip.frames, np.array([3, 0, 3]))
        self.assertEqual(frames.dtype, np.uint8)
        for got, i in zip(frames, [3, 0, 3]):
            np.testing.assert_array_equal(got, frame_value(i)[..., ::-1])

    @parameterized.named_parameters(
        ("grey", np.full([H, W], 77, np.uint8), [77, 77, 77]),
        ("grey_1_channel", np.full([H, W, 1], 9, np.uint8), [9, 9, 9]),
        (
            "bgra",
            np.dstack([np.full([H, W, 3], (1, 2, 3), np.uint8), np.zeros([H, W], np.uint8)]),
            [3, 2, 1],
        ),
        (
            "png_16_bit",
            np.full([H, W, 3], (256 * 10, 256 * 20, 256 * 30 + 255), np.uint16),
            [30, 20, 10],
        ),
    )
    def test_odd_channel_counts_and_depths_become_rgb8(self, image, rgb):
        path = os.path.join(self.get_temp_dir(), self._testMethodName, "0000.png")
        write_image(path, image)
        got = decode.read_image(path)
        self.assertEqual(got.shape, (H, W, 3))
        self.assertEqual(got.dtype, np.uint8)
        np.testing.assert_array_equal(got[0, 0], rgb)

    @parameterized.parameters(("mp4", "mp4v"), ("avi", "MJPG"))
    def test_video_pixels_match_what_was_written(self, ext, fourcc):
        path = write_video(os.path.join(self.get_temp_dir(), f"v.{ext}"), 6, fourcc)
        frames = decode.read_video(path, np.array([0, 5, 2]))
        self.assertEqual(frames.shape, (3, H, W, 3))
        for got, i in zip(frames, [0, 5, 2]):
            # Lossy codecs: flat colours come back within a few levels.
            self.assertAllClose(got.mean(axis=(0, 1)), frame_value(i)[0, 0, ::-1], atol=6)
        self.assertEqual(decode.read_video(path).shape[0], 6)

    def test_resize_and_crop_covers_then_crops(self):
        frames = np.zeros([2, 20, 40, 3], np.uint8)
        frames[:, :, :20] = 255  # left half white
        out = decode.resize_and_crop(frames, (10, 10))
        self.assertEqual(out.shape, (2, 10, 10, 3))
        np.testing.assert_array_equal(out[0, :, :4], 255)  # centre crop straddles the edge at x = 5
        np.testing.assert_array_equal(out[0, :, 6:], 0)
        left = decode.resize_and_crop(frames, (10, 10), offset=(0.5, 0.0))
        np.testing.assert_array_equal(left, 255)


class VideoDatasetTest(tf.test.TestCase, parameterized.TestCase):

    def make_folder(self):
        root = os.path.join(self.get_temp_dir(), self._testMethodName, "vids")
        write_video(os.path.join(root, "a", "x.mp4"), 12)
        write_frames(os.path.join(root, "b", "short"), 3)
        return root

    def test_examples_follow_the_contract(self):
        ds = video_folder.video_dataset(
            self.make_folder(), clip_len=4, stride=2, size=(16, 16), mode="random", seed=1
        )
        examples = list(ds)
        self.assertLen(examples, 2)
        for ex in examples:
            self.assertEqual(ex["rgb"].shape, (4, 16, 16, 3))
            self.assertEqual(ex["rgb"].dtype, tf.float32)
            self.assertAllInRange(ex["rgb"], 0.0, 1.0)
            self.assertEqual(ex["label"].dtype, tf.int32)
            self.assertEqual(ex["clip_index"].dtype, tf.int32)
            self.assertEqual(ex["path"].dtype, tf.string)
        self.assertEqual(sorted(int(ex["label"]) for ex in examples), [0, 1])
        self.assertEqual(ds.element_spec["rgb"].shape, (4, 16, 16, 3))

    def test_short_clip_repeats_its_last_frame_in_the_pipeline(self):
        index = video_folder.index_video_folder(self.make_folder())
        ds = video_folder.video_dataset(index, clip_len=5, stride=1, size=(H, W), mode="center")
        short = [ex for ex in ds if int(ex["label"]) == 1][0]["rgb"].numpy()
        expected = [frame_value(i)[..., ::-1] / 255.0 for i in (0, 1, 2, 2, 2)]
        self.assertAllClose(short, np.stack(expected), atol=1e-6)

    def test_clips_per_video_gives_each_clip_index(self):
        ds = video_folder.video_dataset(
            self.make_folder(), clip_len=2, size=(8, 8), mode="uniform", clips_per_video=3
        )
        got = sorted((int(ex["label"]), int(ex["clip_index"])) for ex in ds)
        self.assertEqual(got, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)])

    def test_same_seed_same_stream(self):
        index = video_folder.index_video_folder(self.make_folder())

        def stream(seed):
            ds = video_folder.video_dataset(index, clip_len=3, size=(8, 8), seed=seed)
            return np.concatenate([ex["rgb"].numpy().ravel() for ex in ds])

        self.assertAllEqual(stream(3), stream(3))

    def test_file_broken_after_indexing_is_counted_not_fatal(self):
        root = self.make_folder()
        index = video_folder.index_video_folder(root)
        with open(os.path.join(root, "a", "x.mp4"), "wb") as f:
            f.write(b"gone")
        report = DecodeReport()
        examples = list(video_folder.video_dataset(index, clip_len=2, size=(8, 8), report=report))
        self.assertLen(examples, 1)
        self.assertEqual(report.num_failed, 1)
        self.assertEndsWith(report.failures[0][0], "x.mp4")

    def test_cache_is_used_and_a_corrupt_entry_is_recomputed(self):
        root = self.make_folder()
        cache = os.path.join(self.get_temp_dir(), self._testMethodName, "cache")
        index = video_folder.index_video_folder(root)

        def clips():
            ds = video_folder.video_dataset(
                index, clip_len=4, size=(16, 16), mode="center", cache_dir=cache
            )
            return {ex["path"].numpy(): ex["rgb"].numpy() for ex in ds}

        uncached = {
            ex["path"].numpy(): ex["rgb"].numpy()
            for ex in video_folder.video_dataset(index, clip_len=4, size=(16, 16), mode="center")
        }
        first = clips()
        entries = sorted(os.listdir(cache))
        self.assertLen(entries, 2)
        for path, rgb in first.items():
            self.assertAllClose(rgb, uncached[path], atol=1 / 255)
        with open(os.path.join(cache, entries[0]), "wb") as f:
            f.write(b"not an npy file")
        again = clips()
        for path, rgb in again.items():
            self.assertAllEqual(rgb, first[path])
        self.assertEqual(sorted(os.listdir(cache)), entries)
        for entry in entries:
            self.assertEqual(np.load(os.path.join(cache, entry)).dtype, np.uint8)

    def _moving_frames(self, root: str) -> None:
        """12 PNG frames of a smooth texture: still for frames 0-5, then moving 2 px right per frame."""
        rng = np.random.default_rng(0)
        texture = cv2.GaussianBlur(rng.uniform(0, 255, (48, 96)).astype(np.float32), (0, 0), 2.0)
        texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        for i in range(12):
            x0 = 2 * max(i - 5, 0)
            grey = texture[8:40, x0 + 20 : x0 + 68][
                :, ::-1
            ]  # moving the window left moves the content right
            write_image(
                os.path.join(root, "a", "clip", f"{i:04d}.png"),
                np.repeat(grey[:, :, None], 3, axis=2),
            )

    def test_flow_is_computed_once_per_video_and_follows_the_crop(self):
        root = os.path.join(self.get_temp_dir(), "flowvids")
        self._moving_frames(root)
        cache = motion.FlowCache(os.path.join(self.get_temp_dir(), "flowcache"))
        ds = video_folder.video_dataset(
            root, clip_len=12, stride=1, size=(32, 48), mode="center", flow_cache=cache
        )
        (example,) = list(ds)
        self.assertEqual(example["flow"].shape, (12, 32, 48, 2))
        flow = example["flow"].numpy()[:, 8:-8, 8:-8]
        self.assertAllClose(np.median(flow[7:, ..., 0]), 2.0, atol=0.3)
        self.assertAllClose(np.median(np.abs(flow[1:6])), 0.0, atol=0.1)
        self.assertEqual((cache.misses, cache.hits), (1, 0))
        list(ds)
        self.assertEqual((cache.misses, cache.hits), (1, 1))

    def test_high_motion_sampling_draws_the_moving_windows(self):
        root = os.path.join(self.get_temp_dir(), "hmvids")
        self._moving_frames(root)
        cache = motion.FlowCache(os.path.join(self.get_temp_dir(), "hmcache"))
        ds = video_folder.video_dataset(
            root,
            clip_len=3,
            size=(32, 48),
            mode="random",
            seed=0,
            flow_cache=cache,
            high_motion=True,
        )
        # Windows of 3 frames have motion into their 2nd and 3rd frames only from frame 6 on: starts >= 4.
        moving = [float(np.abs(ex["flow"].numpy()[1:]).mean()) > 0.5 for ex in ds.repeat(20)]
        self.assertEqual(sum(moving), 20)
        with self.assertRaisesRegex(ValueError, "high_motion"):
            video_folder.video_dataset(
                root, clip_len=3, size=(32, 48), mode="center", high_motion=True
            )

    def test_folder_without_readable_clips_raises(self):
        root = os.path.join(self.get_temp_dir(), "nothing readable")
        os.makedirs(os.path.join(root, "a"))
        open(os.path.join(root, "a", "zero.mp4"), "w").close()
        with self.assertRaisesRegex(DataFolderError, "no readable clips"):
            video_folder.video_dataset(root, clip_len=2)


if __name__ == "__main__":
    tf.test.main()
