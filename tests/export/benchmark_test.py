"""Tests for export.benchmark: figures for every form of a tiny artifact directory, in both modes."""

import json
import os

import numpy as np
import tensorflow as tf
from absl.testing import flagsaver

from edge_ssl.keras import keras
from edge_ssl.models import student as student_lib
from export import artifacts, benchmark


class BenchmarkTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        student = student_lib.build_student("tiny")
        clips = np.random.default_rng(0).uniform(size=(4, 8, 32, 32, 3)).astype("float32")
        cls.directory = os.path.join(tf.compat.v1.test.get_temp_dir(), "artifacts")
        options = artifacts.ExportOptions(quantizations=("fp32", "int8"))
        artifacts.export_student(student, cls.directory, list(clips[:2]), clips, options=options)

    def test_rows_for_every_form_backend_and_mode(self):
        for mode in ("clip", "stream"):
            out = self.get_temp_dir() + f"/{mode}.json"
            with flagsaver.flagsaver(
                artifact_dir=self.directory,
                runs=3,
                warmup=1,
                threads=["1", "2"],
                mode=mode,
                output_json=out,
            ):
                self.assertEqual(benchmark.main(["benchmark"]), 0)
            with open(out, encoding="utf-8") as f:
                rows = json.load(f)
            forms = {(r["backend"], r["form"], r["threads"]) for r in rows}
            self.assertEqual(
                forms,
                {("keras", "saved_model", None)}
                | {
                    (b, f, t)
                    for t in (1, 2)
                    for b, f in (("litert", "fp32"), ("litert", "int8"), ("onnxruntime", "onnx"))
                },
            )
            for row in rows:
                self.assertLessEqual(row["p50_ms"], row["p99_ms"])
                self.assertGreater(row["per_second"], 0)
            int8 = next(r for r in rows if r["form"] == "int8")
            self.assertGreater(int8["mean_cosine"], 0.9)


if __name__ == "__main__":
    tf.test.main()
