"""Tests for export.runtime.layout: the artifact directory's and the classifier folder's file names, and the model
card."""

import json
import os
import re
import subprocess
import sys

from absl.testing import absltest

from export.runtime import layout


class ArtifactDirTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path
        self.artifact = layout.ArtifactDir(self.dir)

    def test_names_resolve_inside_the_directory(self):
        # The on-disk contract (DESIGN.md), spelled out: a renamed file breaks every device already deployed.
        expected = {
            self.artifact.card: "model_card.json",
            self.artifact.saved_model: "saved_model",
            self.artifact.onnx: "model.onnx",
            self.artifact.onnx_step: "model_step.onnx",
            self.artifact.head_trainer: "head_trainer.tflite",
            self.artifact.calibration_cache: "calibration.cache",
            self.artifact.tftrt: "tftrt",
            self.artifact.tflite("int8"): "model_int8.tflite",
            self.artifact.tflite("fp16"): "model_fp16.tflite",
            self.artifact.engine("fp16"): "model_fp16.plan",
            self.artifact.step_engine(): "model_step_fp16.plan",
        }
        for path, name in expected.items():
            self.assertEqual(path, os.path.join(self.dir, name))

    def test_lists_the_forms_that_are_there_in_the_order_asked(self):
        for name in ("model_fp32.tflite", "model_int8.tflite", "model_int8.plan"):
            self.create_tempfile(os.path.join(self.dir, name))
        self.assertEqual(
            self.artifact.tflite_files(("int8", "fp16", "fp32")),
            {"int8": self.artifact.tflite("int8"), "fp32": self.artifact.tflite("fp32")},
        )
        self.assertEqual(list(self.artifact.tflite_files(("fp32", "int8"))), ["fp32", "int8"])
        self.assertEqual(
            self.artifact.engine_files(("int8", "fp16")), {"int8": self.artifact.engine("int8")}
        )

    def test_precision_of_reads_the_file_name(self):
        self.assertEqual(layout.precision_of(self.artifact.tflite("int8")), "int8")
        self.assertEqual(layout.precision_of("model_dynamic.tflite"), "dynamic")
        self.assertEqual(layout.precision_of(self.artifact.engine("fp16")), "fp16")
        with self.assertRaisesRegex(ValueError, "classifier.tflite is not a model_<precision>"):
            layout.precision_of("out/classifier.tflite")

    def test_card_round_trip(self):
        card = {
            "format_version": layout.CARD_VERSION,
            "embedding_dim": 16,
            "input": {"clip": [8, 32, 32, 3]},
        }
        self.assertFalse(self.artifact.has_card())
        self.artifact.write_card(card)
        self.assertTrue(self.artifact.has_card())
        self.assertEqual(self.artifact.read_card(), card)
        with open(os.path.join(self.dir, "model_card.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f), card)

    def test_missing_card_is_a_clear_error(self):
        # A folder without a card (a training workdir, say) is refused with the command that exports it.
        with self.assertRaisesRegex(
            layout.ArtifactError,
            f"has no model_card.json.*python -m export --model={re.escape(self.dir)} ",
        ):
            self.artifact.read_card()
        missing = os.path.join(self.dir, "nothing_here")
        with self.assertRaisesRegex(layout.ArtifactError, "is not a directory"):
            layout.ArtifactDir(missing).read_card()

    def test_unreadable_or_foreign_card_is_a_clear_error(self):
        with open(self.artifact.card, "w", encoding="utf-8") as f:
            f.write("{not json")
        with self.assertRaisesRegex(layout.ArtifactError, "is not a readable model card"):
            self.artifact.read_card()
        self.artifact.write_card({"kind": "something else"})
        with self.assertRaisesRegex(layout.ArtifactError, "no embedding_dim"):
            self.artifact.read_card()

    def test_imports_neither_tensorflow_nor_numpy(self):
        # The runner and the recognizer read artifact directories on devices without TensorFlow.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        code = "import sys, export.runtime.layout; print(sorted({'tensorflow', 'numpy'} & set(sys.modules)))"
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=root),
            timeout=60,
            check=True,
        )
        self.assertEqual(result.stdout.strip(), "[]")


class ClassifierDirTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path
        self.folder = layout.ClassifierDir(self.dir)

    def test_names_resolve_inside_the_folder(self):
        expected = {
            self.folder.classifier: "classifier.tflite",
            self.folder.labels: "labels.txt",
            self.folder.metrics: "metrics.json",
            self.folder.confusion_png: "confusion.png",
            self.folder.report: "report.md",
        }
        for path, name in expected.items():
            self.assertEqual(path, os.path.join(self.dir, name))

    def test_labels_round_trip_in_output_order(self):
        self.assertEqual(self.folder.read_labels(), [])
        self.folder.write_labels(["wave", "clap", "jump"])
        with open(os.path.join(self.dir, "labels.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read(), "wave\nclap\njump\n")
        self.assertEqual(self.folder.read_labels(), ["wave", "clap", "jump"])

    def test_reads_the_runner_metrics(self):
        with open(os.path.join(self.dir, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump({"accuracy": 0.5}, f)
        self.assertEqual(self.folder.read_metrics(), {"accuracy": 0.5})


if __name__ == "__main__":
    absltest.main()
