"""Tests for the world CLI: the class-folder layout the runner reads, world.json, the preview, and bad input."""

import csv
import json
import os
import subprocess
import sys

import cv2
import numpy as np
from absl import app
from absl.testing import absltest, flagsaver

from edge_ssl.cli import world
from edge_ssl.data import doctor, pose_folder, synthetic
from edge_ssl.fewshot import labeled


def _run(**flags) -> None:
    with flagsaver.flagsaver(**flags):
        world.main(["world"])


class WorldTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path

    def test_writes_the_split_as_class_folders_with_world_json_and_a_preview(self):
        out = os.path.join(self.tmp, "heldout")
        preview = os.path.join(self.tmp, "sheet.png")
        _run(size="tiny", split="heldout", output_dir=out, per_class=4, clutter=2, preview=preview)
        self.assertCountEqual(os.listdir(out), [*synthetic.HELDOUT_ACTIONS, "world.json"])
        for action in synthetic.HELDOUT_ACTIONS:
            names = sorted(os.listdir(os.path.join(out, action)))
            self.assertLen(names, 4)
            for name in names:
                self.assertRegex(name, r"^p\d{4}_view\d\.mp4$")
        info = json.load(open(os.path.join(out, "world.json"), encoding="utf-8"))
        self.assertEqual((info["size"], info["split"], info["seed"]), ("tiny", "heldout", 0))
        self.assertEqual(info["settings"]["clutter"], 2)
        self.assertEqual(info["clips_per_action"], {a: 4 for a in synthetic.HELDOUT_ACTIONS})
        # The runner's reader takes the folder as a user's own: every clip readable, with the world's frames.
        report = doctor.diagnose(out, "video", 4)
        self.assertTrue(report["usable"], report["problems"])
        self.assertEqual(report["classes"], sorted(synthetic.HELDOUT_ACTIONS))
        clip = os.path.join(out, "jump", sorted(os.listdir(os.path.join(out, "jump")))[0])
        video = cv2.VideoCapture(clip)
        frames = 0
        while video.read()[0]:
            frames += 1
        self.assertEqual(frames, synthetic.get_config("tiny").num_frames)
        sheet = cv2.imread(preview)
        self.assertIsNotNone(sheet)
        self.assertEqual(sheet.shape[0] % len(synthetic.HELDOUT_ACTIONS), 0)
        # Nothing but the world is left in the parent folder (the build folder was renamed into place).
        self.assertCountEqual(os.listdir(self.tmp), ["heldout", "sheet.png"])

    def test_pose_modality_writes_keypoints_and_their_cameras(self):
        out = os.path.join(self.tmp, "poses")
        _run(size="tiny", split="test", output_dir=out, modality="pose", per_class=3)
        with open(os.path.join(out, "views.csv"), encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        self.assertLen(rows, 3 * len(synthetic.SEEN_ACTIONS))
        self.assertEqual(list(rows[0]), ["path", "view", *synthetic.VIEW_FIELDS])
        expected = {}
        config = synthetic.get_config("tiny")
        for e in synthetic.generate(config, "test"):
            name = f"{synthetic.ACTIONS[e['label']]}/p{int(e['performance_id']):04d}_view{int(e['camera_id'])}.npy"
            expected[name] = e
        for row in rows:
            self.assertEqual(int(row["view"]), int(expected[row["path"]]["camera_id"]))
            pose = np.load(os.path.join(out, row["path"]))
            self.assertEqual(pose.shape, (config.num_frames, 17, 2))
            np.testing.assert_allclose(pose, expected[row["path"]]["pose2d"])
            np.testing.assert_allclose(
                [float(row[f]) for f in synthetic.VIEW_FIELDS],
                expected[row["path"]]["view"],
                rtol=1e-6,
            )
        self.assertTrue(doctor.diagnose(out, "pose", 3)["usable"])
        # The runner's reader takes each clip's camera from views.csv; the file is metadata, not a skipped input.
        index = pose_folder.index_pose_folder(out)
        self.assertEmpty(index.skipped)
        cameras = labeled.read_views(out, index.clips)
        self.assertEqual(
            cameras,
            [str(int(expected[os.path.relpath(c.path, out)]["camera_id"])) for c in index.clips],
        )

    def test_refuses_an_output_folder_that_holds_something_and_bad_counts(self):
        full = os.path.join(self.tmp, "full")
        os.makedirs(full)
        open(os.path.join(full, "notes.txt"), "w").close()
        with self.assertRaisesRegex(app.UsageError, "not empty"):
            _run(size="tiny", split="heldout", output_dir=full, per_class=1)
        self.assertEqual(os.listdir(full), ["notes.txt"])
        a_file = os.path.join(full, "notes.txt")
        with self.assertRaisesRegex(app.UsageError, "is a file"):
            _run(size="tiny", split="heldout", output_dir=a_file, per_class=1)
        with self.assertRaisesRegex(app.UsageError, "per_class must be >= 1"):
            _run(size="tiny", split="heldout", output_dir=os.path.join(full, "new"), per_class=0)
        with self.assertRaisesRegex(app.UsageError, "clutter must be one of"):
            _run(size="tiny", split="heldout", output_dir=os.path.join(full, "new"), clutter=7)
        self.assertEqual(os.listdir(full), ["notes.txt"])

    def test_unknown_size_or_split_is_a_usage_error_from_the_command_line(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        for flag in ("--size=huge", "--split=train"):
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "edge_ssl.cli.world",
                    flag,
                    f"--output_dir={self.tmp}/x",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            self.assertNotEqual(result.returncode, 0, flag)
            self.assertIn(flag.split("=")[0][2:], result.stderr)
            self.assertFalse(os.path.exists(f"{self.tmp}/x"))


if __name__ == "__main__":
    absltest.main()
