"""Tests for export.artifacts: the artifact directory of the tiny student, its card, and a failed export."""

import json
import os

import numpy as np
import tensorflow as tf

from edge_ssl.keras import keras
from edge_ssl.models import student as student_lib
from export import artifacts, parity

LABELS = np.array([0, 0, 1, 1, 2, 2])


def _clips(seed: int) -> np.ndarray:
    """Three classes the random student can tell apart (dark, mid, bright), two noisy clips each."""
    rng = np.random.default_rng(seed)
    levels = np.array([0.15, 0.5, 0.85])[LABELS][:, None, None, None, None]
    return np.clip(levels + rng.uniform(-0.1, 0.1, size=(6, 8, 32, 32, 3)), 0, 1).astype("float32")


class ArtifactsTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.student = student_lib.build_student("tiny")

    def test_writes_every_artifact_and_a_card_with_its_checks(self):
        out = self.get_temp_dir() + "/artifacts"
        card = artifacts.export_student(
            self.student, out, list(_clips(1)), _clips(2), LABELS, source="/runs/student"
        )
        for name in (
            "saved_model/saved_model.pb",
            "model_fp32.tflite",
            "model_fp16.tflite",
            "model_int8.tflite",
            "model.onnx",
            "model_step.onnx",
            artifacts.CARD,
        ):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        self.assertFalse(os.path.exists(out + ".partial"))
        self.assertEqual(artifacts.read_card(out), json.loads(json.dumps(card)))
        self.assertEqual(card["input"]["clip"], [8, 32, 32, 3])
        self.assertEqual(card["embedding_dim"], 16)
        self.assertEqual(card["source"], "/runs/student")
        self.assertTrue(all(card["lint"]["ok"].values()))
        for name in ("fp32", "fp16", "int8", "onnx"):
            self.assertTrue(card["artifacts"][name]["passed"], card["artifacts"][name])
            self.assertEqual(card["artifacts"][name]["parity"]["count"], 6)
        self.assertLess(card["artifacts"]["fp32"]["parity"]["max_abs"], 1e-4)
        self.assertIn("tensorflow", card["versions"])

    def test_parity_past_its_threshold_stops_the_export_and_writes_nothing_in_place(self):
        out = self.get_temp_dir() + "/strict"
        impossible = dict(parity.DEFAULT_THRESHOLDS, fp32=parity.Thresholds(max_abs=0.0))
        options = artifacts.ExportOptions(
            quantizations=("fp32",), onnx=False, thresholds=impossible
        )
        with self.assertRaisesRegex(
            artifacts.ArtifactError, r"model_fp32.tflite: max abs difference .* > 0"
        ):
            artifacts.export_student(self.student, out, list(_clips(1)), _clips(2), LABELS, options)
        self.assertFalse(os.path.exists(out))
        with open(os.path.join(out + ".partial", artifacts.CARD), encoding="utf-8") as f:
            self.assertFalse(json.load(f)["artifacts"]["fp32"]["passed"])

    def test_bad_inputs_are_clear_errors(self):
        with self.assertRaisesRegex(
            artifacts.ArtifactError, r"held-out clips must be \[N, 8, 32, 32, 3\]"
        ):
            artifacts.export_student(
                self.student, self.get_temp_dir() + "/x", [], np.zeros([2, 8, 16, 16, 3])
            )
        taken = self.get_temp_dir() + "/taken"
        os.makedirs(taken)
        with self.assertRaisesRegex(artifacts.ArtifactError, "is not an artifact directory"):
            artifacts.export_student(self.student, taken, list(_clips(1)), _clips(2))
        with self.assertRaisesRegex(artifacts.ArtifactError, "has no model_card.json"):
            artifacts.read_card(taken)


if __name__ == "__main__":
    tf.test.main()
