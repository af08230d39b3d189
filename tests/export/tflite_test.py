"""Tests for export.tflite and export.runtime.parity on the tiny student: every quantization, both signatures, streaming."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.keras import keras
from edge_ssl.models import student as student_lib
from export import tflite
from export.runtime import ModelError, litert, parity

LABELS = np.array([0, 0, 1, 1, 2, 2])


class TFLiteTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.student = student_lib.build_student("tiny")
        cls.path = tf.compat.v1.test.get_temp_dir() + "/student"
        cls.student.save(cls.path)
        # Three "classes" the random student can tell apart (reddish, greenish, bluish), two noisy clips each. Its
        # nearest-prototype margins are small (0.02-0.05 in cosine), so the test also shows int8 keeps them.
        rng = np.random.default_rng(0)
        colours = 0.15 + 0.7 * np.eye(3)[LABELS][:, None, None, None, :]
        noise = rng.uniform(-0.1, 0.1, size=(6, 8, 32, 32, 3))
        cls.clips = np.clip(colours + noise, 0.0, 1.0).astype("float32")
        cls.reference = cls.student(cls.clips).numpy()

    @parameterized.parameters(*tflite.QUANTIZATIONS)
    def test_conversion_keeps_both_signatures_and_passes_its_parity_thresholds(self, quantization):
        model = litert.TFLiteModel(
            tflite.convert(
                self.path, quantization, tflite.representative_data(self.student, self.clips[:4])
            )
        )
        self.assertContainsSubset(set(litert.SIGNATURES), set(model.signatures))
        embeddings = model.embed(self.clips)
        figures = parity.compare(self.reference, embeddings, LABELS)
        self.assertEqual(figures.failures(parity.DEFAULT_THRESHOLDS[quantization]), [], figures)
        # The streamed artifact against the whole-clip artifact.
        streamed = model.stream(self.clips[0])
        tolerance = 1e-5 if quantization != "int8" else 0.05
        self.assertAllClose(streamed, embeddings[0], atol=tolerance)

    def test_int8_graph_is_integer_and_int8_io_is_quantized_by_the_runner(self):
        content = tflite.convert(
            self.path,
            "int8",
            tflite.representative_data(self.student, self.clips[:4]),
            int8_io=True,
        )
        model = litert.TFLiteModel(content)
        runner = model._runners["step"]  # pylint: disable=protected-access
        frame = runner.get_input_details()["frame"]
        self.assertEqual(frame["dtype"], np.int8)
        figures = parity.compare(self.reference, model.embed(self.clips), LABELS)
        self.assertGreater(figures.mean_cosine, 0.98, figures)
        ops = {
            op["op_name"] for op in model.interpreter._get_ops_details()
        }  # pylint: disable=protected-access
        self.assertIn("CONV_2D", ops)
        self.assertNotIn("FlexConv3D", ops)

    def test_a_perturbed_artifact_fails_parity(self):
        perturbed = student_lib.build_student("tiny")
        perturbed.model.set_weights(
            [
                w + 0.05 * np.random.default_rng(3).standard_normal(w.shape)
                for w in self.student.model.get_weights()
            ]
        )
        path = self.get_temp_dir() + "/perturbed"
        perturbed.save(path)
        model = litert.TFLiteModel(tflite.convert(path, "fp32"))
        figures = parity.compare(self.reference, model.embed(self.clips), LABELS)
        self.assertNotEmpty(figures.failures(parity.DEFAULT_THRESHOLDS["fp32"]))

    def test_corrupt_tflite_file_is_a_clear_error(self):
        path = self.get_temp_dir() + "/corrupt.tflite"
        with open(path, "wb") as f:
            f.write(b"not a flatbuffer" * 8)
        with self.assertRaisesRegex(ModelError, "corrupt.tflite is not a readable TFLite model"):
            litert.TFLiteModel(path)

    def test_bad_requests_are_clear_errors(self):
        with self.assertRaisesRegex(tflite.ExportError, "unknown quantization 'int4'"):
            tflite.convert(self.path, "int4")
        with self.assertRaisesRegex(tflite.ExportError, "int8 needs representative clips"):
            tflite.convert(self.path, "int8")
        with self.assertRaisesRegex(tflite.ExportError, "need quantization='int8'"):
            tflite.convert(self.path, "fp16", int8_io=True)


class ParityTest(tf.test.TestCase):

    def test_figures_by_hand(self):
        reference = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
        candidate = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0], [0.1, 1.0]])
        figures = parity.compare(reference, candidate, np.array([0, 1, 0, 1]))
        self.assertAlmostEqual(figures.max_abs, 0.9)
        self.assertAlmostEqual(figures.min_cosine, 0.2 / (1 + 0.01))
        self.assertEqual(figures.agreement, 0.75)  # the third clip now lands on class 1
        # Agreement is reported, gated only when asked.
        failures = figures.failures(parity.DEFAULT_THRESHOLDS["int8"])
        self.assertLen(failures, 1)
        self.assertIn("mean cosine", failures[0])
        strict = parity.Thresholds(min_agreement=0.97)
        self.assertEqual(figures.failures(strict), ["top-1 agreement 75.0% < 97%"])

    def test_accuracy_drop_is_paired_leave_one_out_nearest_prototype_accuracy(self):
        labels = np.array([0, 0, 0, 1, 1, 1])
        reference = np.array([[1, 0], [0.9, 0.1], [1, 0.2], [0, 1], [0.1, 0.9], [0.2, 1.0]])
        # Each clip's class mean of the other clips is nearest: the reference classifies all six.
        self.assertTrue(parity.prototype_hits(reference, labels).all())
        candidate = reference.copy()
        candidate[2] = [0.0, 1.0]  # one clip of class 0 moved onto class 1
        hits = parity.prototype_hits(candidate, labels)
        self.assertEqual(hits.tolist(), [True, True, False, True, True, True])
        figures = parity.compare(reference, candidate, labels)
        self.assertAlmostEqual(figures.accuracy, 1.0)
        self.assertAlmostEqual(figures.candidate_accuracy, 5 / 6)
        self.assertAlmostEqual(figures.accuracy_drop, 1 / 6)
        drops = np.array([0, 0, 1, 0, 0, 0], np.float64)
        self.assertAlmostEqual(figures.accuracy_drop_ci95, 1.96 * drops.std(ddof=1) / np.sqrt(6))
        # One flip in six clips is no evidence of a drop above 3 points; the same flip rate over many clips is.
        self.assertEqual(figures.failures(parity.Thresholds(max_accuracy_drop=0.03)), [])
        many = parity.compare(
            np.tile(reference, (40, 1)), np.tile(candidate, (40, 1)), np.tile(labels, 40)
        )
        failures = many.failures(parity.Thresholds(max_accuracy_drop=0.03))
        self.assertLen(failures, 1)
        self.assertIn("few-shot accuracy drop 16.7%", failures[0])

    def test_int8_flips_between_close_classes_without_a_drop_pass_the_default_gate(self):
        rng = np.random.default_rng(0)
        labels = np.repeat(np.arange(5), 40)
        centres = rng.normal(size=(5, 32))
        centres[1] = centres[0]  # two classes the model cannot tell apart
        reference = centres[labels] + 0.3 * rng.normal(size=(200, 32))
        candidate = reference + 0.12 * rng.normal(size=(200, 32))  # quantisation-like noise
        figures = parity.compare(reference, candidate, labels)
        # Decisions between the two flip (an agreement gate of 98% fails it) and accuracy does not move.
        self.assertNotEmpty(figures.failures(parity.Thresholds(min_agreement=0.98)))
        self.assertEqual(figures.accuracy_drop, 0.0)
        self.assertGreater(figures.mean_cosine, 0.99)
        self.assertEqual(figures.failures(parity.DEFAULT_THRESHOLDS["int8"]), [])

    def test_shape_mismatch_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "two \\[N, D\\] arrays of one shape"):
            parity.compare(np.zeros([3, 4]), np.zeros([3, 5]))


if __name__ == "__main__":
    tf.test.main()
