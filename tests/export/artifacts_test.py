"""Tests for export.artifacts: the artifact directory of the tiny student, its card with the lint of every converted
graph, and failed exports (parity, a converted graph the lint flags, bad input)."""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from edge_ssl.keras import keras
from edge_ssl.models import layers, pose_encoder
from edge_ssl.models import student as student_lib
from export import artifacts
from export.runtime import layout, parity


@keras.utils.register_keras_serializable("edge_ssl_test")
class Squared(keras.layers.Layer):
    """x * x with tf.square, an op TFLite has no int8 kernel for."""

    def call(self, x):
        return tf.square(x)


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
            layout.CARD,
        ):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        self.assertFalse(os.path.exists(out + ".partial"))
        self.assertEqual(layout.ArtifactDir(out).read_card(), json.loads(json.dumps(card)))
        self.assertEqual(card["input"]["clip"], [8, 32, 32, 3])
        self.assertEqual(card["embedding_dim"], 16)
        self.assertEqual(card["source"], "/runs/student")
        self.assertTrue(all(card["lint"]["ok"].values()))
        for name in ("fp32", "fp16", "int8", "onnx"):
            self.assertTrue(card["artifacts"][name]["passed"], card["artifacts"][name])
            self.assertEqual(card["artifacts"][name]["parity"]["count"], 6)
        self.assertLess(card["artifacts"]["fp32"]["parity"]["max_abs"], 1e-4)
        self.assertIn("tensorflow", card["versions"])
        # Every converted graph is linted for its targets, and the tiny student passes them all.
        targets = {
            name: set(entry["lint"]["ok"])
            for name, entry in card["artifacts"].items()
            if "lint" in entry
        }
        self.assertEqual(
            targets,
            {
                "fp32": {"tflite_builtin", "xnnpack"},
                "fp16": {"tflite_builtin", "xnnpack"},
                "int8": {"tflite_builtin", "tflite_int8", "xnnpack"},
                "onnx": {"tensorrt"},
                "head_trainer": {"tflite_builtin"},
            },
        )
        for name, entry in card["artifacts"].items():
            if "lint" in entry:
                self.assertTrue(all(entry["lint"]["ok"].values()), (name, entry["lint"]))
                self.assertEqual(entry["lint"]["unit"], "ops")
        onnx_sources = {f["source"] for f in card["artifacts"]["onnx"]["lint"]["findings"]}
        self.assertLessEqual(onnx_sources, {"model.onnx", "model_step.onnx"})

    def test_parity_past_its_threshold_stops_the_export_and_writes_nothing_in_place(self):
        out = self.get_temp_dir() + "/strict"
        impossible = dict(parity.DEFAULT_THRESHOLDS, fp32=parity.Thresholds(max_abs=0.0))
        options = artifacts.ExportOptions(
            quantizations=("fp32",), onnx=False, thresholds=impossible
        )
        with self.assertRaisesRegex(
            artifacts.ArtifactError, r"model_fp32.tflite: max abs difference .* > 0"
        ) as raised:
            artifacts.export_student(self.student, out, list(_clips(1)), _clips(2), LABELS, options)
        # The error says what to change (the bounds: the binary names its flags) and where the figures are.
        self.assertEqual(raised.exception.causes, {"parity"})
        self.assertIn("thresholds option", str(raised.exception))
        self.assertIn("model_card.json", str(raised.exception))
        self.assertFalse(os.path.exists(out))
        with open(os.path.join(out + ".partial", layout.CARD), encoding="utf-8") as f:
            self.assertFalse(json.load(f)["artifacts"]["fp32"]["passed"])

    def test_a_graph_the_lint_flags_stops_the_export_unless_allowed(self):
        # SQUARE has no int8 kernel: the Keras-level lint cannot see inside the custom layer (a warning), the
        # converted int8 graph shows the float fallback (an error).
        inputs = keras.Input((pose_encoder.NUM_KEYPOINTS, 2))
        x = keras.layers.Dense(8)(keras.layers.Flatten()(inputs))
        backbone = keras.Model(inputs, layers.L2Normalize()(Squared()(x)))
        keypoints = np.random.default_rng(0).uniform(0, 32, size=(16, 17, 2)).astype("float32")
        options = artifacts.ExportOptions(
            ("int8",), onnx=False, thresholds={"int8": parity.Thresholds(min_cosine=0.9)}
        )
        out = self.get_temp_dir() + "/flagged"
        with self.assertRaisesRegex(
            artifacts.ArtifactError,
            r"op lint of the converted graphs failed(.|\n)*model_int8.tflite: tflite_int8 error +float_fallback"
            r".*\(SQUARE\): SQUARE falls back to float",
        ):
            artifacts.export_pose_encoder(backbone, out, keypoints, keypoints, options=options)
        self.assertFalse(os.path.exists(out))
        with open(os.path.join(out + ".partial", layout.CARD), encoding="utf-8") as f:
            attempt = json.load(f)
        self.assertTrue(all(attempt["lint"]["ok"].values()))  # the Keras-level lint let it through
        self.assertFalse(attempt["artifacts"]["int8"]["lint"]["ok"]["tflite_int8"])

        allowed = dataclasses.replace(options, allow_lint_errors=True)
        card = artifacts.export_pose_encoder(backbone, out, keypoints, keypoints, options=allowed)
        self.assertTrue(os.path.exists(os.path.join(out, "model_int8.tflite")))
        self.assertEqual(
            card["artifacts"]["int8"]["lint"]["ok"],
            {"tflite_builtin": True, "tflite_int8": False, "xnnpack": True},
        )

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


if __name__ == "__main__":
    tf.test.main()
