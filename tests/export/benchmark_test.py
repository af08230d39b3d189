"""Tests for export.benchmark: figures for every form of a tiny artifact directory (a student in both modes, the pose
encoder), and the PNG plot of latency against accuracy after quantization."""

import json
import os

import numpy as np
import tensorflow as tf
from absl import app
from absl.testing import flagsaver
from matplotlib import image

from edge_ssl.keras import keras
from edge_ssl.models import pose_encoder
from edge_ssl.models import student as student_lib
from export import artifacts, benchmark
from export.runtime import parity

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _row(backend, form, threads, p50, **figures):
    return {"backend": backend, "form": form, "threads": threads, "p50_ms": p50, **figures}


class BenchmarkTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        student = student_lib.build_student("tiny")
        clips = np.random.default_rng(0).uniform(size=(4, 8, 32, 32, 3)).astype("float32")
        labels = np.array([0, 0, 1, 1])
        temp = tf.compat.v1.test.get_temp_dir()
        cls.directory = os.path.join(temp, "artifacts")
        options = artifacts.ExportOptions(
            quantizations=("fp32", "int8"),
            thresholds=dict(parity.DEFAULT_THRESHOLDS, int8=parity.Thresholds(min_cosine=0.9)),
        )
        artifacts.export_student(
            student, cls.directory, list(clips[:2]), clips, labels, options=options
        )
        backbone = pose_encoder.pose_embedding_model(pose_encoder.pose_encoder("tiny", 64), 32)
        poses = np.random.default_rng(1).uniform(0, 32, size=(8, 17, 2)).astype("float32")
        cls.pose_directory = os.path.join(temp, "pose_artifacts")
        artifacts.export_pose_encoder(
            backbone,
            cls.pose_directory,
            poses,
            poses,
            options=artifacts.ExportOptions(quantizations=("fp32",)),
        )

    def _run(self, directory, mode="clip", **flags):
        out = self.get_temp_dir() + f"/{os.path.basename(directory)}_{mode}.json"
        with flagsaver.flagsaver(
            artifact_dir=directory,
            runs=3,
            warmup=1,
            threads=["1", "2"],
            mode=mode,
            output_json=out,
            **flags,
        ):
            self.assertEqual(benchmark.main(["benchmark"]), 0)
        with open(out, encoding="utf-8") as f:
            return out, json.load(f)

    def test_rows_for_every_form_backend_and_mode_and_a_png_beside_the_json(self):
        for mode in ("clip", "stream"):
            out, rows = self._run(self.directory, mode)
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
            self.assertIsNotNone(int8["agreement"])
            with open(out[: -len(".json")] + ".md", encoding="utf-8") as f:
                table = f.read().splitlines()
            self.assertEqual(table[0], benchmark.HEADER.splitlines()[0])
            self.assertLen(table, 4 + len(rows))  # header, rule, one line per row, blank, the CPU
            self.assertRegex(table[-1], r"^CPU: .*(has|features unknown)")
            png = out[: -len(".json")] + ".png"
            with open(png, "rb") as f:
                self.assertEqual(f.read(8), PNG_SIGNATURE)
            height, width = image.imread(png).shape[:2]
            self.assertGreater(min(height, width), 100)

    def test_the_pose_encoder_is_timed_one_pose_at_a_time(self):
        png = self.get_temp_dir() + "/pose.png"
        _, rows = self._run(self.pose_directory, output_png=png)
        self.assertEqual(
            {(r["backend"], r["form"]) for r in rows},
            {("keras", "saved_model"), ("litert", "fp32"), ("onnxruntime", "onnx")},
        )
        self.assertTrue(os.path.exists(png))
        with self.assertRaisesRegex(app.UsageError, "per_frame.*clip mode"):
            self._run(self.pose_directory, mode="stream")

    def test_a_library_call_takes_its_settings_as_arguments(self):
        reported = []
        got = benchmark.rows(
            self.directory, ("litert",), (1,), "stream", runs=2, warmup=0, report=reported.append
        )
        self.assertEqual(
            [(r["form"], r["threads"], r["mode"]) for r in got],
            [("fp32", 1, "stream"), ("int8", 1, "stream")],
        )
        self.assertEqual(reported, got)
        with self.assertRaisesRegex(benchmark.BenchmarkError, "has no model_card.json"):
            benchmark.rows(self.get_temp_dir())
        with self.assertRaisesRegex(benchmark.BenchmarkError, "threads must be >= 1"):
            benchmark.rows(self.directory, threads=(0,))

    def test_the_plot_says_which_accuracy_it_shows(self):
        path = self.get_temp_dir() + "/plot.png"
        rated = [
            _row("keras", "saved_model", None, 9.0),
            _row("litert", "fp32", 1, 5.0, agreement=1.0, mean_cosine=1.0),
            _row("litert", "int8", 1, 2.0, agreement=0.95, mean_cosine=0.99),
            _row("tensorrt", "model_fp16.plan", None, 0.5),  # an engine has no card figures
        ]
        self.assertEqual(benchmark.accuracy_metric(rated)[0], "agreement")
        self.assertIn("top-1 agreement", benchmark.plot(rated, path, "t"))
        few_shot = [dict(r, fewshot_accuracy=0.8) for r in rated[1:3]]
        self.assertIn("few-shot accuracy", benchmark.plot(few_shot, path, "t"))
        unlabelled = [dict(r, agreement=None) for r in rated]
        self.assertEqual(benchmark.accuracy_metric(unlabelled)[0], "mean_cosine")
        os.remove(path)
        self.assertIsNone(benchmark.plot(rated[:1] + rated[3:], path, "t"))
        self.assertFalse(os.path.exists(path))

    def test_bad_flags_and_a_folder_without_a_card_are_usage_errors(self):
        cases = [
            (dict(backends=["litert", "cuda"]), r"--backends: unknown \['cuda'\]"),
            (dict(threads=["0"]), "--threads takes positive integers"),
            (dict(threads=["two"]), "--threads takes positive integers"),
            (dict(runs=0), "--runs must be >= 1"),
        ]
        for flags, message in cases:
            with self.subTest(flags=flags):
                with flagsaver.flagsaver(artifact_dir=self.directory, **flags):
                    with self.assertRaisesRegex(app.UsageError, message):
                        benchmark.main(["benchmark"])
        with flagsaver.flagsaver(artifact_dir=self.get_temp_dir()):
            with self.assertRaisesRegex(app.UsageError, "has no model_card.json"):
                benchmark.main(["benchmark"])

    def test_a_plot_file_that_is_not_png_is_a_usage_error(self):
        with flagsaver.flagsaver(artifact_dir=self.directory, output_png="latency.jpg"):
            with self.assertRaisesRegex(app.UsageError, "must name a .png file"):
                benchmark.main(["benchmark"])


if __name__ == "__main__":
    tf.test.main()
