"""Tests for the pose folder reader: validation reasons, the index, and the tf.data pipeline's contract."""

import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.data import pose_folder
from edge_ssl.data.folder_index import DataFolderError, DecodeReport


def pose(num_frames: int, channels: int = 2) -> np.ndarray:
    """[T, 17, C] where x = frame index and y = keypoint index, so sampled frames are recognisable."""
    array = np.zeros([num_frames, 17, channels], np.float32)
    array[..., 0] = np.arange(num_frames)[:, None]
    array[..., 1] = np.arange(17)[None, :]
    if channels == 3:
        array[..., 2] = 0.5
    return array


class PoseFolderTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.get_temp_dir(), self._testMethodName, "pösen data")

    def save(self, rel: str, array=None, **npz) -> str:
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if npz:
            np.savez(path, **npz)
        else:
            np.save(path, array)
        return path

    def test_missing_and_empty_root_are_clear_errors(self):
        with self.assertRaisesRegex(DataFolderError, "does not exist: .*pösen data"):
            pose_folder.index_pose_folder(self.root)
        os.makedirs(self.root)
        with self.assertRaisesRegex(DataFolderError, "no class folders"):
            pose_folder.index_pose_folder(self.root)

    def test_good_files_are_indexed(self):
        self.save("wave hand/a.npy", pose(10))
        self.save("jümp/b.npz", keypoints=pose(4, 3))
        self.save("jümp/c.npy", pose(6).astype(np.float64))
        index = pose_folder.index_pose_folder(self.root)
        self.assertEqual(index.classes, ["jümp", "wave hand"])
        self.assertEqual(index.skipped, [])
        got = {
            os.path.basename(c.path): (c.label, c.num_frames, c.has_confidence) for c in index.clips
        }
        self.assertEqual(
            got, {"a.npy": (1, 10, False), "b.npz": (0, 4, True), "c.npy": (0, 6, False)}
        )

    def test_every_bad_file_is_skipped_with_its_reason(self):
        self.save("a/good.npy", pose(5))
        self.save("b/13 keypoints.npy", np.zeros([5, 13, 2], np.float32))
        self.save("b/2d.npy", np.zeros([5, 34], np.float32))
        nan = pose(5)
        nan[2, 3, 0] = np.nan
        self.save("b/nan.npy", nan)
        inf = pose(5)
        inf[4, 0, 1] = np.inf
        self.save("b/inf.npy", inf)
        self.save("b/empty T.npy", np.zeros([0, 17, 2], np.float32))
        self.save("b/objects.npy", np.array([{"x": 1}], dtype=object))
        self.save("b/strings.npy", np.array([["a"] * 2] * 17))
        self.save("b/wrong key.npz", poses=pose(5))
        with open(os.path.join(self.root, "b", "text.npy"), "w") as f:
            f.write("not numpy")
        open(os.path.join(self.root, "b", "zero.npz"), "w").close()
        with open(os.path.join(self.root, "b", "notes.txt"), "w") as f:
            f.write("x")
        open(os.path.join(self.root, "b", ".DS_Store"), "w").close()

        index = pose_folder.index_pose_folder(self.root)
        reasons = {os.path.relpath(p, os.path.join(self.root, "b")): r for p, r in index.skipped}
        self.assertRegex(reasons["13 keypoints.npy"], r"shape \[5, 13, 2\] is not \[T, 17, 2\]")
        self.assertRegex(reasons["2d.npy"], r"shape \[5, 34\]")
        self.assertRegex(reasons["nan.npy"], "1 NaN or Inf values in 1 frames .first: frame 2")
        self.assertRegex(reasons["inf.npy"], "NaN or Inf .* frame 4")
        self.assertRegex(reasons["empty T.npy"], r"no frames \(T = 0\)")
        self.assertRegex(reasons["objects.npy"], "pickled object array")
        self.assertRegex(reasons["strings.npy"], "not a real number type")
        self.assertRegex(reasons["wrong key.npz"], "no 'keypoints' array .*poses")
        self.assertRegex(reasons["text.npy"], "not a readable numpy file")
        self.assertRegex(reasons["zero.npz"], "empty file")
        self.assertRegex(reasons["notes.txt"], "not a pose file")
        self.assertLen(reasons, 11)
        self.assertEqual(index.empty_classes(), ["b"])
        self.assertEqual([os.path.basename(c.path) for c in index.clips], ["good.npy"])

    @parameterized.parameters(2, 3)
    def test_dataset_follows_the_contract(self, channels):
        self.save("a/x.npy", pose(10, channels))
        self.save("b/y.npz", keypoints=pose(3, channels))
        ds = pose_folder.pose_dataset(self.root, clip_len=6, stride=2, mode="center")
        examples = {os.path.basename(ex["path"].numpy().decode()): ex for ex in ds}
        self.assertEqual(sorted(examples), ["x.npy", "y.npz"])
        x = examples["x.npy"]
        self.assertEqual(x["pose2d"].dtype, tf.float32)
        self.assertEqual(x["pose2d"].shape, (6, 17, 2))
        self.assertEqual(x["confidence"].shape, (6, 17))
        self.assertEqual(x["label"].dtype, tf.int32)
        # 10 frames, span 11: short, so frames 0, 2, 4, 6, 8 then the last frame repeated.
        self.assertAllEqual(x["pose2d"][:, 0, 0], [0, 2, 4, 6, 8, 9])
        self.assertAllEqual(x["pose2d"][:, :, 1], np.tile(np.arange(17), (6, 1)))
        self.assertAllEqual(examples["y.npz"]["pose2d"][:, 0, 0], [0, 2, 2, 2, 2, 2])
        self.assertAllEqual(x["confidence"], np.full([6, 17], 0.5 if channels == 3 else 1.0))
        self.assertEqual(int(examples["y.npz"]["label"]), 1)

    def test_uniform_clips_per_video_and_random_starts_stay_in_range(self):
        self.save("a/x.npy", pose(30))
        ds = pose_folder.pose_dataset(self.root, clip_len=4, mode="uniform", clips_per_video=3)
        starts = [int(ex["pose2d"][0, 0, 0]) for ex in ds]
        self.assertEqual(starts, [0, 13, 26])
        ds = pose_folder.pose_dataset(self.root, clip_len=4, mode="random", seed=0)
        starts = {int(ex["pose2d"][0, 0, 0]) for _ in range(30) for ex in ds}
        self.assertGreater(len(starts), 5)
        self.assertTrue(starts <= set(range(27)))

    def test_file_broken_after_indexing_is_counted_not_fatal(self):
        self.save("a/x.npy", pose(5))
        broken = self.save("b/y.npy", pose(5))
        index = pose_folder.index_pose_folder(self.root)
        np.save(broken, np.full([5, 17, 2], np.nan, np.float32))
        report = DecodeReport()
        examples = list(pose_folder.pose_dataset(index, clip_len=2, report=report))
        self.assertLen(examples, 1)
        self.assertEqual(report.num_failed, 1)
        self.assertRegex(report.failures[0][1], "NaN")


if __name__ == "__main__":
    tf.test.main()
