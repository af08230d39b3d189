"""Tests for the finetune CLI: flags reach the runner, --flagfile works, errors exit 2 with the reason."""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile

from absl.testing import absltest, flagsaver

from edge_ssl.cli import finetune
from tests.fewshot import fixtures

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FinetuneCliTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        base = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
        cls.artifact = os.path.join(base, "artifact")
        fixtures.tiny_student_artifact(cls.artifact)
        cls.train = fixtures.write_video_folder(os.path.join(base, "train"), 3)

    def setUp(self):
        super().setUp()
        self.temp = self.create_tempdir().full_path

    def test_flags_map_onto_the_run_and_the_summary_is_printed(self):
        out_dir = os.path.join(self.temp, "out")
        stdout = io.StringIO()
        with (
            flagsaver.flagsaver(
                model=self.artifact,
                train_dir=self.train,
                output_dir=out_dir,
                head="prototype",
                shots=1,
                seed=3,
                clips_per_video=2,
                cache_dir=os.path.join(self.temp, "cache"),
            ),
            contextlib.redirect_stdout(stdout),
        ):
            status = finetune.main(["finetune"])
        self.assertEqual(status, 0)
        with open(os.path.join(out_dir, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        self.assertEqual(metrics["settings"]["seed"], 3)
        self.assertEqual(metrics["settings"]["clips_per_video"], 2)
        self.assertEqual((metrics["num_train"], metrics["num_evaluated"]), (4, 8))
        self.assertIn(f"accuracy {metrics['accuracy']:.1%} on 8 clips", stdout.getvalue())

    def test_flagfile_works_and_a_bad_input_exits_2_with_the_reason(self):
        out_dir = os.path.join(self.temp, "by_flagfile")
        flagfile = os.path.join(self.temp, "run.flags")
        with open(flagfile, "w", encoding="utf-8") as f:
            f.write(
                f"--model={self.artifact}\n--train_dir={self.train}\n--output_dir={out_dir}\n"
                "--head=linear\n--epochs=5\n--no_cache\n--engine=litert\n"
            )
        command = [sys.executable, "-m", "edge_ssl.cli.finetune", f"--flagfile={flagfile}"]
        env = dict(os.environ, PYTHONPATH=ROOT)
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=300, check=False
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertIn("embedding training clips: 12/12", result.stderr)  # the progress line
        self.assertTrue(os.path.exists(os.path.join(out_dir, "classifier.tflite")))
        again = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=300, check=False
        )
        self.assertEqual(again.returncode, 2)
        self.assertIn("exists; choose a new folder or pass --overwrite", again.stderr)
        missing = subprocess.run(
            [sys.executable, "-m", "edge_ssl.cli.finetune", f"--train_dir={self.train}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("--model", missing.stderr)


if __name__ == "__main__":
    absltest.main()
