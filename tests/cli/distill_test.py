"""Tests for the distill CLI: a tiny teacher distilled end to end into a streaming student, and bad flags."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from absl import app
from absl.testing import flagsaver

from edge_ssl.cli import distill
from edge_ssl.data import synthetic
from edge_ssl.models import student as student_lib
from edge_ssl.train import loop
from tests.data import tiny_world

TIMEOUT = 300


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TF_CPP_MIN_LOG_LEVEL="2")


def _cli(module: str, *flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", module, *flags]
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)


class DistillCliTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = tf.compat.v1.test.get_temp_dir()
        cls.data_dir = tiny_world.tiny_world(os.path.join(root, "tfds"))
        cls.teacher = os.path.join(root, "teacher")
        result = _cli(
            "edge_ssl.cli.pretrain",
            "--method=modist",
            "--config=tiny",
            f"--data_dir={cls.data_dir}",
            f"--workdir={cls.teacher}",
            "--steps=2",
            "--global_batch_size=8",
        )
        assert result.returncode == 0, result.stderr[-3000:]

    def test_distills_into_a_streaming_student_saved_for_export(self):
        workdir = self.get_temp_dir() + "/student"
        result = _cli(
            "edge_ssl.cli.distill",
            f"--teacher={self.teacher}",
            "--student=tiny",
            f"--data_dir={self.data_dir}",
            f"--workdir={workdir}",
            "--steps=4",
            "--global_batch_size=8",
            "--log_every=2",
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("distill/tiny on synthetic", result.stdout)
        last = [line for line in result.stdout.splitlines() if line.startswith("step 4/4 ")]
        self.assertLen(last, 1)
        for term in ("embedding", "motion", "relational", "motion_relational", "logits", "total"):
            self.assertIn(f" {term}=", last[0])
        with open(os.path.join(workdir, loop.RUN_FILE), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["config"]["teacher"], self.teacher)
        saved = tf.saved_model.load(os.path.join(workdir, "backbone"))
        self.assertContainsSubset({"serving_default", "step"}, set(saved.signatures))
        student = student_lib.load_student(os.path.join(workdir, "backbone"))
        clip = (
            np.random.default_rng(0)
            .uniform(size=(2, *student.model.input_shape[1:]))
            .astype("float32")
        )
        state = student.init_state(2)
        for t in range(clip.shape[1]):
            streamed, state = student.step(clip[:, t], state)
        self.assertAllClose(streamed, student(clip), atol=1e-5)

    def test_the_world_by_its_tfds_name_distills_with_its_labels(self):
        # `--data=synthetic_world/tiny` reads what `--data=synthetic` built: uint8 video in TFDS, float32 in the
        # contract, and the world's ClassLabel feeds the logit term as the synthetic world's actions do.
        result = _cli(
            "edge_ssl.cli.distill",
            f"--teacher={self.teacher}",
            "--student=tiny",
            "--data=synthetic_world/tiny",
            f"--data_dir={self.data_dir}",
            f"--workdir={self.get_temp_dir()}/by_name",
            "--steps=2",
            "--global_batch_size=8",
            "--log_every=1",
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        last = [line for line in result.stdout.splitlines() if line.startswith("step 2/2 ")]
        self.assertLen(last, 1)
        self.assertIn(" logits=", last[0])
        with flagsaver.flagsaver(data="synthetic_world/tiny", data_dir=self.data_dir):
            self.assertEqual(distill._num_classes(), synthetic.NUM_ACTIONS)
        with flagsaver.flagsaver(data="synthetic_world/tiny", data_dir=self.data_dir, labels=False):
            self.assertEqual(distill._num_classes(), 0)
        with flagsaver.flagsaver(data=self.get_temp_dir(), data_dir=self.data_dir):
            self.assertEqual(distill._num_classes(), 0)  # a folder of videos has no labels

    def _usage_error(self, pattern: str, **flags):
        values = dict(
            teacher=self.teacher,
            student="tiny",
            workdir=self.get_temp_dir() + "/" + self._testMethodName,
            steps=1,
            data_dir=self.data_dir,
        )
        values.update(flags)
        with flagsaver.flagsaver(**values):
            with self.assertRaisesRegex(app.UsageError, pattern):
                distill.main(["distill"])

    def test_missing_teacher(self):
        self._usage_error("teacher workdir '/no/teacher' does not exist", teacher="/no/teacher")

    def test_workdir_of_another_teacher_is_refused(self):
        workdir = self.get_temp_dir() + "/other"
        os.makedirs(workdir, exist_ok=True)
        record = {"method": "distill", "student": "tiny", "config": {"teacher": "/elsewhere"}}
        with open(os.path.join(workdir, loop.RUN_FILE), "w", encoding="utf-8") as f:
            json.dump(record, f)
        self._usage_error("holds a student of teacher '/elsewhere'", workdir=workdir)

    def test_bad_loss_weight(self):
        self._usage_error("loss weights must be >= 0", config_override=["weight_motion=-1"])


if __name__ == "__main__":
    tf.test.main()
