"""Tests for `python -m export`: a tiny student exported end to end on the synthetic world, and bad input."""

import contextlib
import io
import json
import os
import re
import subprocess
import sys

import tensorflow as tf
from absl import app
from absl.testing import flagsaver

from edge_ssl.data import synthetic
from edge_ssl.keras import keras
from edge_ssl.models import student as student_lib
from export import __main__ as export_main
from tests.data import tiny_world


class ExportCliTest(tf.test.TestCase):

    def test_exports_a_distillation_workdir(self):
        workdir = self.get_temp_dir() + "/run"
        keras.utils.set_random_seed(0)
        student_lib.build_student("tiny").save(os.path.join(workdir, "backbone"))
        out = self.get_temp_dir() + "/artifacts"
        data_dir = tiny_world.tiny_world(self.get_temp_dir() + "/tfds")
        command = [
            sys.executable,
            "-m",
            "export",
            f"--model={workdir}",
            f"--output_dir={out}",
            f"--data_dir={data_dir}",
            "--num_representative=4",
            "--num_heldout=12",
            "--formats=tflite_fp32,tflite_int8,onnx",
            # An untrained 10k-parameter student maps every clip close to one point, so its class prototypes are
            # nearly tied and int8 rounding flips nearest-prototype decisions at random (91.7% agreement on the
            # first world, 58.3% on the current one): this test is about the command, not about how well this model
            # quantizes, so the agreement gate is off; the embedding cosine is checked below.
            "--int8_min_agreement=0",
        ]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stdout[-2000:] + result.stderr[-3000:])
        self.assertRegex(result.stdout, r"int8 +max abs \S+ +mean cosine 0\.9\d+")
        with open(os.path.join(out, "model_card.json"), encoding="utf-8") as f:
            card = json.load(f)
        self.assertEqual(
            set(card["artifacts"]), {"saved_model", "fp32", "int8", "onnx", "head_trainer"}
        )
        self.assertTrue(os.path.exists(os.path.join(out, "head_trainer.tflite")))
        self.assertEqual(card["artifacts"]["int8"]["parity"]["count"], 12)
        self.assertEqual(card["source"], os.path.join(workdir, "backbone"))
        # Distilled on the synthetic world: the card records the world's frame rate, which the recognizer uses.
        self.assertEqual(card["frame_rate"], synthetic.get_config("tiny").fps)

        # Exporting again into the same directory replaces it whole, and says what it held.
        printed = io.StringIO()
        flags = dict(
            model=workdir,
            output_dir=out,
            data_dir=data_dir,
            num_representative=4,
            num_heldout=12,
            formats=["tflite_fp32"],
            frame_rate=12.5,
        )
        with flagsaver.flagsaver(**flags), contextlib.redirect_stdout(printed):
            self.assertEqual(export_main.main(["export"]), 0)
        self.assertRegex(
            printed.getvalue(),
            r"replaced the artifact directory written there before \(it held .*model_int8",
        )
        self.assertFalse(os.path.exists(os.path.join(out, "model_int8.tflite")))
        with open(os.path.join(out, "model_card.json"), encoding="utf-8") as f:
            card = json.load(f)
        self.assertEqual(set(card["artifacts"]), {"saved_model", "fp32", "head_trainer"})
        self.assertEqual(card["frame_rate"], 12.5)

    def test_unknown_format_empty_folder_and_missing_model_are_usage_errors(self):
        workdir = self.get_temp_dir() + "/w"
        student_lib.build_student("tiny").save(os.path.join(workdir, "backbone"))
        out = self.get_temp_dir() + "/o2"
        with flagsaver.flagsaver(model=workdir, output_dir=out, formats=["tflite_int4"]):
            with self.assertRaisesRegex(app.UsageError, r"unknown format\(s\) \['tflite_int4'\]"):
                export_main.main(["export"])
        empty = self.get_temp_dir() + "/empty"
        os.makedirs(empty)
        with flagsaver.flagsaver(model=workdir, output_dir=out, representative_data=empty):
            with self.assertRaisesRegex(app.UsageError, "folder .*empty"):
                export_main.main(["export"])
        with flagsaver.flagsaver(model="/no/model", output_dir=out):
            with self.assertRaisesRegex(app.UsageError, "neither a distillation workdir"):
                export_main.main(["export"])
        for flags, message in (
            (dict(num_representative=0), "--num_representative must be >= 1"),
            (dict(num_heldout=0), "--num_heldout must be >= 1"),
            (dict(onnx_batch=-1), "--onnx_batch must be >= 1, or 0"),
            (dict(fp32_max_abs=-1.0), "--fp32_max_abs must be >= 0"),
            (dict(int8_min_agreement=97.0), r"--int8_min_agreement is a fraction in \[0, 1\]"),
            (dict(fp16_min_cosine=-0.5), r"--fp16_min_cosine is a fraction in \[0, 1\]"),
            (dict(dynamic_min_cosine=2.0), r"--dynamic_min_cosine is a fraction in \[0, 1\]"),
            (dict(frame_rate=0.0), "--frame_rate must be > 0"),
        ):
            with self.subTest(flags=flags):
                with flagsaver.flagsaver(model=workdir, output_dir=out, **flags):
                    with self.assertRaisesRegex(app.UsageError, message):
                        export_main.main(["export"])
        self.assertFalse(os.path.exists(out))

    def test_every_cause_of_an_export_error_names_flags_that_exist(self):
        self.assertEqual(set(export_main.FLAG_HINTS), {"output_dir", "lint", "parity"})
        for cause, hint in export_main.FLAG_HINTS.items():
            named = re.findall(r"--(\w+)", hint)
            self.assertNotEmpty(named, cause)
            for flag in named:
                self.assertIn(flag, export_main.FLAGS, (cause, flag))

    def test_a_model_that_is_not_a_student_is_a_usage_error(self):
        with flagsaver.flagsaver(model=self.get_temp_dir(), output_dir=self.get_temp_dir() + "/o"):
            with self.assertRaisesRegex(app.UsageError, "neither a distillation workdir"):
                export_main.main(["export"])


if __name__ == "__main__":
    tf.test.main()
