"""Tests for export.runtime.classifier: a linear head appended to an exported model's flatbuffer, without TensorFlow."""

import numpy as np
import tensorflow as tf

from edge_ssl.keras import keras
from edge_ssl.models import student as student_lib
from export import tflite
from export.runtime import classifier, litert


class ClassifierTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.student = student_lib.build_student("tiny")
        path = tf.compat.v1.test.get_temp_dir() + "/student"
        cls.student.save(path)
        rng = np.random.default_rng(0)
        cls.clips = rng.uniform(size=(3, 8, 32, 32, 3)).astype("float32")
        calibration = tflite.representative_data(cls.student, cls.clips[:2])
        cls.fp32 = tflite.convert(path, "fp32")
        cls.int8_io = tflite.convert(path, "int8", calibration, int8_io=True)
        d = cls.student.embedding_dim
        cls.weights = rng.normal(size=(d, 4)).astype("float32")
        cls.bias = rng.normal(size=4).astype("float32")

    def _check(self, content):
        base = litert.TFLiteModel(content)
        model = litert.TFLiteModel(
            classifier.attach_head(content, self.weights, self.bias, list("abcd"))
        )
        out = model.run("serving_default", {"clip": self.clips[:1]})
        embedding = base.embed(self.clips[:1])
        self.assertAllClose(out["embedding"], embedding)
        self.assertAllClose(out["logits"], embedding @ self.weights + self.bias, atol=1e-5)
        self.assertAllClose(out["probabilities"], tf.nn.softmax(out["logits"]).numpy(), atol=1e-6)
        # The streaming signature classifies every frame; after the clip it agrees with the clip signature.
        state = model.initial_state()
        for frame in self.clips[0]:
            step = model.run("step", {"frame": frame[None], **state})
            logits, streamed = step.pop("logits"), step.pop("embedding")
            step.pop("probabilities")
            state = step
        self.assertAllClose(logits, streamed @ self.weights + self.bias, atol=1e-5)
        return model

    def test_fp32_classifier_scores_are_the_head_of_the_embedding(self):
        self._check(self.fp32)

    def test_int8_outputs_are_dequantized_before_the_head(self):
        self._check(self.int8_io)

    def test_labels_travel_in_the_metadata(self):
        content = classifier.attach_head(
            self.fp32, self.weights, self.bias, ["walk", "run", "jump", "wave"]
        )
        self.assertEqual(classifier.read_labels(content), ["walk", "run", "jump", "wave"])
        self.assertIsNone(classifier.read_labels(self.fp32))

    def test_head_and_info_read_back_from_fp32_and_int8_classifiers(self):
        info = {"frame_rate": 8.0, "input": {"frame": [32, 32, 3]}}
        for content in (self.fp32, self.int8_io):
            attached = classifier.attach_head(content, self.weights, self.bias, list("abcd"), info)
            weights, bias = classifier.read_head(attached)
            self.assertAllEqual(weights, self.weights)
            self.assertAllEqual(bias, self.bias)
            self.assertEqual(classifier.read_info(attached), info)
            self.assertEqual(classifier.read_labels(attached), list("abcd"))
        self.assertIsNone(classifier.read_info(self.fp32))
        with self.assertRaisesRegex(classifier.ClassifierError, "no classifier head"):
            classifier.read_head(self.fp32)

    def test_mismatched_head_is_a_clear_error(self):
        with self.assertRaisesRegex(classifier.ClassifierError, "takes 5-d embeddings"):
            classifier.attach_head(self.fp32, np.zeros((5, 2)), np.zeros(2))
        with self.assertRaisesRegex(classifier.ClassifierError, r"weights \[D, C\] and bias \[C\]"):
            classifier.attach_head(self.fp32, self.weights, np.zeros(3))
        with self.assertRaisesRegex(classifier.ClassifierError, "3 labels for 4 classes"):
            classifier.attach_head(self.fp32, self.weights, self.bias, ["a", "b", "c"])


if __name__ == "__main__":
    tf.test.main()
