"""Tests for the data doctor CLI: exit status, JSON fields and the text report, on folders made in the test."""

import contextlib
import io
import json
import os
import subprocess
import sys

import cv2
import numpy as np
from absl import flags
from absl.testing import absltest, flagsaver, parameterized

from edge_ssl.cli import data_doctor
from edge_ssl.data import doctor


def write_video(path: str, num_frames: int, size: tuple[int, int] = (24, 32), fps: float = 10.0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
    for i in range(num_frames):
        writer.write(np.full([size[0], size[1], 3], 10 * i, np.uint8))
    writer.release()


def run_doctor(**flags) -> tuple[int, str]:
    """Runs main with `flags` set, returning (exit status, stdout); flags are restored afterwards."""
    out = io.StringIO()
    with flagsaver.flagsaver(**flags), contextlib.redirect_stdout(out):
        status = data_doctor.main(["data_doctor"])
    return status, out.getvalue()


class DataDoctorTest(parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.create_tempdir().full_path, "clips ü")

    def make_video_folder(self):
        write_video(os.path.join(self.root, "wave", "a.mp4"), 6, fps=10)
        write_video(os.path.join(self.root, "wave", "b.mp4"), 10, (48, 64), fps=25)
        write_video(os.path.join(self.root, "jump", "c.mp4"), 8, fps=30)
        open(os.path.join(self.root, "jump", "zero.mp4"), "w").close()

    def test_usable_video_folder_json(self):
        self.make_video_folder()
        status, out = run_doctor(data_dir=self.root, modality="video", format="json")
        self.assertEqual(status, 0)
        report = json.loads(out)
        self.assertEqual(report["classes"], ["jump", "wave"])
        self.assertEqual(report["num_clips"], 3)
        self.assertEqual(report["clips_per_class"], {"jump": 1, "wave": 2})
        self.assertLen(report["skipped"], 1)
        self.assertEndsWith(report["skipped"][0]["path"], "zero.mp4")
        self.assertRegex(report["skipped"][0]["reason"], "empty file")
        self.assertEqual(report["stats"]["frames"], {"min": 6, "median": 8, "max": 10})
        self.assertEqual(report["stats"]["height"], {"min": 24, "median": 24, "max": 48})
        self.assertEqual(report["stats"]["fps"], {"min": 10.0, "median": 25.0, "max": 30.0})
        self.assertTrue(report["usable"])

    def test_text_report_names_classes_stats_and_skips(self):
        self.make_video_folder()
        status, out = run_doctor(data_dir=self.root, modality="video", format="text")
        self.assertEqual(status, 0)
        self.assertIn("wave  2 clips", out)
        self.assertIn("frames  6 / 8 / 10", out)
        self.assertRegex(out, r"zero\.mp4: empty file")
        self.assertTrue(out.rstrip().endswith("verdict: usable"))

    def test_min_clips_per_class_makes_the_folder_unusable(self):
        self.make_video_folder()
        status, out = run_doctor(
            data_dir=self.root, modality="video", format="json", min_clips_per_class=2
        )
        self.assertEqual(status, 1)
        report = json.loads(out)
        self.assertFalse(report["usable"])
        self.assertEqual(
            report["problems"],
            ["class 'jump' has 1 readable clips, fewer than --min_clips_per_class=2"],
        )

    def test_class_with_no_readable_clip_is_unusable(self):
        self.make_video_folder()
        os.makedirs(os.path.join(self.root, "sit"))
        with open(os.path.join(self.root, "sit", "clip.avi"), "w") as f:
            f.write("text, not video")
        status, out = run_doctor(data_dir=self.root, modality="video", format="json")
        self.assertEqual(status, 1)
        report = json.loads(out)
        self.assertIn("class 'sit' has no readable clip", report["problems"])
        self.assertEqual(report["clips_per_class"]["sit"], 0)

    @parameterized.parameters("video", "pose")
    def test_missing_and_empty_folder_are_unusable(self, modality):
        status, out = run_doctor(data_dir=self.root, modality=modality, format="json")
        self.assertEqual(status, 1)
        self.assertRegex(json.loads(out)["problems"][0], "does not exist: .*clips ü")
        os.makedirs(self.root)
        status, out = run_doctor(data_dir=self.root, modality=modality, format="text")
        self.assertEqual(status, 1)
        self.assertIn("no class folders", out)
        self.assertIn("verdict: NOT usable", out)

    def test_folder_with_no_readable_clips_is_unusable(self):
        os.makedirs(os.path.join(self.root, "a"))
        open(os.path.join(self.root, "a", "zero.mp4"), "w").close()
        status, out = run_doctor(data_dir=self.root, modality="video", format="json")
        self.assertEqual(status, 1)
        self.assertRegex(json.loads(out)["problems"][0], "no readable clips")

    def test_pose_folder(self):
        os.makedirs(os.path.join(self.root, "a"))
        os.makedirs(os.path.join(self.root, "b"))
        np.save(os.path.join(self.root, "a", "x.npy"), np.zeros([7, 17, 2], np.float32))
        np.save(os.path.join(self.root, "b", "y.npy"), np.zeros([9, 17, 3], np.float32))
        np.save(os.path.join(self.root, "b", "bad.npy"), np.zeros([9, 13, 2], np.float32))
        status, out = run_doctor(data_dir=self.root, modality="pose", format="json")
        self.assertEqual(status, 0)
        report = json.loads(out)
        self.assertEqual(report["clips_per_class"], {"a": 1, "b": 1})
        self.assertEqual(report["stats"]["frames"], {"min": 7, "median": 8.0, "max": 9})
        self.assertRegex(report["skipped"][0]["reason"], r"shape \[9, 13, 2\]")

    def test_binary_exit_status(self):
        # Through app.run, as a user runs it: main's return value must become the process's exit status.
        os.makedirs(os.path.join(self.root, "a"))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        command = [sys.executable, "-m", "edge_ssl.cli.data_doctor", f"--data_dir={self.root}"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("class 'a' has no readable clip", result.stdout)
        write_video(os.path.join(self.root, "a", "x.mp4"), 3)
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_library_rejects_unknown_modality(self):
        with self.assertRaisesRegex(ValueError, "modality"):
            doctor.diagnose(self.root, "audio")


if __name__ == "__main__":
    # --data_dir is required, and absltest.main parses flags; each test sets its own value with flagsaver.
    flags.FLAGS.set_default("data_dir", "set by each test")
    absltest.main()
