"""Tests for export.onnx: the tiny student's clip and step graphs in ONNX Runtime, static and dynamic batch."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.keras import keras
from edge_ssl.models import student as student_lib
from export import onnx as onnx_export
from export.runtime import onnx_runtime, parity


class OnnxTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.student = student_lib.build_student("tiny")
        cls.clips = np.random.default_rng(1).uniform(size=(3, 8, 32, 32, 3)).astype("float32")
        cls.reference = cls.student(cls.clips).numpy()

    @parameterized.parameters(1, None)
    def test_clip_and_step_graphs_match_keras(self, batch):
        clip = onnx_export.convert_clip(self.student, batch)
        step = onnx_export.convert_step(self.student, batch)
        self.assertGreaterEqual(clip.opset_import[0].version, onnx_export.MIN_OPSET)
        dims = clip.graph.input[0].type.tensor_type.shape.dim
        if batch:
            self.assertEqual(dims[0].dim_value, batch)
        else:
            self.assertTrue(dims[0].dim_param)  # a named, dynamic batch axis
        model = onnx_runtime.OnnxModel(clip, step)
        figures = parity.compare(self.reference, model.embed(self.clips))
        self.assertEqual(figures.failures(parity.DEFAULT_THRESHOLDS["fp32"]), [], figures)
        clips = self.clips[:1] if batch == 1 else self.clips
        self.assertAllClose(model.stream(clips), self.reference[: len(clips)], atol=1e-5)
        outputs = {o.name for o in step.graph.output}
        self.assertIn("embedding", outputs)
        self.assertEqual(
            outputs - {"embedding"}, {onnx_runtime.NEXT + k for k in self.student.state_shapes}
        )

    def test_old_opset_is_refused(self):
        with self.assertRaisesRegex(onnx_export.OnnxExportError, "opset 13 is too old"):
            onnx_export.convert_clip(self.student, opset=13)


if __name__ == "__main__":
    tf.test.main()
