"""Tests for export.inputs: which model an export reads, the world it calibrates on, and clear errors for bad data."""

import json
import os

import numpy as np
from absl.testing import absltest

from edge_ssl.data import synthetic
from export import inputs


class InputsTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path

    def test_a_workdir_exports_its_backbone_and_a_saved_model_itself(self):
        workdir = self.tmp + "/workdir"
        os.makedirs(os.path.join(workdir, "backbone"))
        self.assertEqual(inputs.model_path(workdir), os.path.join(workdir, "backbone"))
        saved = self.tmp + "/saved"
        os.makedirs(saved)
        with open(os.path.join(saved, "saved_model.pb"), "wb"):
            pass
        self.assertEqual(inputs.model_path(saved), saved)
        with self.assertRaisesRegex(inputs.InputsError, "neither a distillation workdir"):
            inputs.model_path(self.tmp + "/nothing")

    def test_the_world_of_a_student_and_of_a_pretraining_run(self):
        self.assertEqual(inputs.student_world(8, 32), "tiny")
        self.assertEqual(inputs.student_world(8, 112), "small")
        self.assertEqual(inputs.world_frame_rate(8, 112), float(synthetic.get_config("small").fps))
        run = self.tmp + "/run"
        os.makedirs(run)
        self.assertEqual(inputs.run_world(run), "tiny")  # no run.json
        with open(os.path.join(run, "run.json"), "w", encoding="utf-8") as f:
            json.dump({"method": "cv_mim", "preset": "paper"}, f)
        self.assertEqual(inputs.run_world(run), "base")
        with open(os.path.join(run, "run.json"), "w", encoding="utf-8") as f:
            json.dump({"method": "distill", "student": "small"}, f)
        self.assertEqual(inputs.run_world(run), "small")
        with open(os.path.join(run, "run.json"), "w", encoding="utf-8") as f:
            json.dump({"method": "cv_mim", "size": "paper"}, f)  # recorded before `preset`
        self.assertEqual(inputs.run_world(run), "base")
        with open(os.path.join(run, "run.json"), "w", encoding="utf-8") as f:
            f.write("not json")
        self.assertEqual(inputs.run_world(run), "tiny")

    def test_pose_files_are_taken_from_the_classes_in_turn_and_bad_folders_are_named(self):
        root = self.tmp + "/poses"
        for action, count in (("a", 3), ("b", 1)):
            os.makedirs(os.path.join(root, action))
            for k in range(count):
                np.save(
                    os.path.join(root, action, f"{k}.npy"),
                    np.full((4, 17, 2), 10.0 * k + (action == "b"), np.float32),
                )
        poses, labels = inputs.folder_poses(root, 2)
        self.assertEqual(poses.shape, (8, 17, 2))  # every frame of the first file of each class
        np.testing.assert_array_equal(labels, [0] * 4 + [1] * 4)
        with self.assertRaisesRegex(inputs.InputsError, "does not exist"):
            inputs.folder_poses(root + "/missing", 2)
        with self.assertRaisesRegex(inputs.InputsError, "does not exist"):
            inputs.folder_clips(root + "/missing", 2, 8, 32)
        empty = self.tmp + "/empty/a"
        os.makedirs(empty)
        with self.assertRaisesRegex(inputs.InputsError, "folder .*empty"):
            inputs.folder_poses(os.path.dirname(empty), 2)


if __name__ == "__main__":
    absltest.main()
