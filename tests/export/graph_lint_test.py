"""Tests for export.graph_lint: converted students and the pose encoder pass; Conv3D in int8, Flex, custom and
unsupported ONNX ops are flagged; the XNNPACK tables agree with what LiteRT's XNNPACK delegate really does.
"""

import collections
import os
import subprocess
import sys

import numpy as np
import onnx
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils
from onnx import TensorProto, helper

from edge_ssl.keras import keras
from edge_ssl.models import pose_encoder
from edge_ssl.models import student as student_lib
from export import graph_lint
from export import onnx as onnx_export
from export import tflite

INT8_TARGETS = ("tflite_builtin", "tflite_int8", "xnnpack")


def _convert(model: keras.Model, int8: bool = False, select_ops: bool = False) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if select_ops:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS,
            tf.lite.OpsSet.SELECT_TF_OPS,
        ]
    if int8:
        shape = [1, *model.input_shape[1:]]
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.uniform(size=shape).astype("float32")] for _ in range(8)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def _undelegated(content: bytes) -> collections.Counter:
    """Ops of the first subgraph that LiteRT's XNNPACK delegate left to TFLite's kernels, as the runtime shows them.

    The interpreter keeps the original nodes beside the DELEGATE nodes that replace them, so a node counts as
    delegated when it produces a DELEGATE node's output, or when its outputs got no memory (tensors inside a
    delegated partition live in XNNPACK).
    """
    interpreter = litert.Interpreter(model_content=content)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    ops = interpreter._get_ops_details()  # pylint: disable=protected-access
    delegate_outputs = {int(i) for o in ops if o["op_name"] == "DELEGATE" for i in o["outputs"]}

    def has_memory(index):
        try:
            interpreter.get_tensor(int(index))
            return True
        except ValueError:
            return False

    left = collections.Counter()
    for op in ops:
        outputs = [int(i) for i in op["outputs"]]
        delegated = any(i in delegate_outputs for i in outputs) or not any(
            has_memory(i) for i in outputs
        )
        if op["op_name"] != "DELEGATE" and not delegated:
            left[op["op_name"]] += 1
    return left


def _not_delegated_by_lint(result, subgraph: str = "serving_default") -> collections.Counter:
    return collections.Counter(
        f.layer_class
        for f in result.findings
        if f.target == "xnnpack"
        and f.kind == "not_delegated"
        and f.layer.startswith(subgraph + "/")
    )


def _onnx_model(nodes, initializers=(), opset: int = 17, inputs=None) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


class GraphLintTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.student = student_lib.build_student("tiny")
        path = os.path.join(tf.compat.v1.test.get_temp_dir(), "student")
        cls.student.save(path)
        clips = np.random.default_rng(0).uniform(size=(2, 8, 32, 32, 3)).astype("float32")
        calibration = tflite.representative_data(cls.student, clips)
        cls.fp32 = tflite.convert(path, "fp32")
        cls.int8 = tflite.convert(path, "int8", calibration)
        # The step signature alone, so that it is the subgraph the interpreter shows (see _undelegated).
        steps = lambda: ((k, v) for k, v in calibration() if k == "step")  # noqa: E731
        cls.step_fp32 = tflite.convert(path, "fp32", signature_keys=["step"])
        cls.step_int8 = tflite.convert(path, "int8", steps, signature_keys=["step"])
        backbone = pose_encoder.pose_embedding_model(pose_encoder.pose_encoder("tiny", 64), 32)
        cls.pose = pose_encoder.keypoint_embedding_model(backbone)

    def test_tiny_student_fp32_int8_and_onnx_pass(self):
        fp32 = graph_lint.lint_tflite(self.fp32, name="model_fp32.tflite")
        self.assertEqual(fp32.ok, {"tflite_builtin": True, "xnnpack": True})
        self.assertEqual(fp32.unit, "ops")
        self.assertGreater(fp32.layers_checked, 100)  # both signatures' ops
        self.assertEqual({f.source for f in fp32.findings}, {"model_fp32.tflite"})
        int8 = graph_lint.lint_tflite(self.int8, INT8_TARGETS)
        self.assertTrue(int8.all_ok, int8.report())
        self.assertEmpty(int8.errors())
        for graph in (
            onnx_export.convert_clip(self.student),
            onnx_export.convert_step(self.student),
        ):
            result = graph_lint.lint_onnx(graph)
            self.assertEmpty(result.findings, result.report())
            self.assertGreater(result.layers_checked, 50)

    def test_xnnpack_findings_match_what_the_delegate_leaves_undelegated(self):
        pose_fp32 = _convert(self.pose)
        pose_int8 = _convert(self.pose, int8=True)
        for name, content, targets, subgraph in (
            ("student fp32", self.fp32, ("xnnpack",), "serving_default"),
            ("student int8", self.int8, ("tflite_int8", "xnnpack"), "serving_default"),
            ("student step fp32", self.step_fp32, ("xnnpack",), "step"),
            ("student step int8", self.step_int8, ("tflite_int8", "xnnpack"), "step"),
            ("pose fp32", pose_fp32, ("xnnpack",), "serving_default"),
            ("pose int8", pose_int8, ("tflite_int8", "xnnpack"), "serving_default"),
        ):
            with self.subTest(name):
                result = graph_lint.lint_tflite(content, targets)
                self.assertEqual(_not_delegated_by_lint(result, subgraph), _undelegated(content))
                self.assertEmpty(
                    [f for f in result.findings if f.kind == "unchecked"], result.report()
                )
                self.assertTrue(result.all_ok, result.report())

    def test_conv3d_in_int8_falls_back_to_float_and_is_not_delegated(self):
        inputs = keras.Input((4, 8, 8, 3))
        x = keras.layers.Conv2D(4, 1, name="conv2d")(inputs[:, 0])
        y = keras.layers.Conv3D(4, 3, padding="same", name="c3d")(inputs)
        outputs = keras.layers.Add()([keras.layers.GlobalAveragePooling2D()(x), y[:, 0, 0, 0]])
        content = _convert(keras.Model(inputs, outputs), int8=True)
        result = graph_lint.lint_tflite(content, INT8_TARGETS, name="video_int8.tflite")
        self.assertEqual(result.ok, {"tflite_builtin": True, "tflite_int8": False, "xnnpack": True})
        (error,) = result.errors("tflite_int8")
        self.assertEqual((error.layer_class, error.kind), ("CONV_3D", "float_fallback"))
        self.assertIn("c3d", error.layer)
        self.assertIn("falls back to float", error.reason)
        self.assertIn(
            ("CONV_3D", "not_delegated"),
            [(f.layer_class, f.kind) for f in result.warnings("xnnpack")],
        )
        self.assertEqual(_undelegated(content)["CONV_3D"], 1)
        self.assertRegex(result.report(), r"tflite_int8\s+FAILED\s+1 error")

    def test_flex_op_is_an_error_on_every_tflite_target(self):
        inputs = keras.Input((4, 8, 8, 3))
        model = keras.Model(inputs, keras.layers.MaxPooling3D(2, name="pool3d")(inputs))
        result = graph_lint.lint_tflite(_convert(model, select_ops=True), INT8_TARGETS)
        for target in INT8_TARGETS:
            (error,) = result.errors(target)
            self.assertEqual((error.layer_class, error.kind), ("FlexMaxPool3D", "needs_flex"))
            self.assertIn("no Flex delegate", error.reason)

    def test_custom_and_unknown_builtin_ops_are_unsupported(self):
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(self.fp32))
        codes = model.operatorCodes
        codes[0].builtinCode = codes[0].deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        codes[0].customCode = b"MyVideoOp"
        codes[1].builtinCode = 9999
        codes[1].deprecatedBuiltinCode = 127  # the largest code the old int8 field holds
        content = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
        result = graph_lint.lint_tflite(content)
        self.assertFalse(result.ok["tflite_builtin"])
        kinds = {(f.layer_class, f.kind) for f in result.errors("tflite_builtin")}
        self.assertIn(("MyVideoOp", "unsupported"), kinds)
        self.assertIn(("BUILTIN_9999", "unsupported"), kinds)

    def test_onnx_ops_outside_tensorrt_10_are_errors(self):
        self.assertIn("Conv", graph_lint.TENSORRT_OPS)
        self.assertNotIn("Unique", graph_lint.TENSORRT_OPS)  # "N" in the support matrix
        fine = _onnx_model([helper.make_node("Relu", ["x"], ["y"])])
        self.assertEmpty(graph_lint.lint_onnx(fine).findings)
        unsupported = _onnx_model(
            [
                helper.make_node("Unique", ["x"], ["u"], name="unique"),
                helper.make_node("MyOp", ["u"], ["y"], domain="com.example"),
            ]
        )
        result = graph_lint.lint_onnx(unsupported.SerializeToString(), name="bad.onnx")
        self.assertEqual(result.ok, {"tensorrt": False})
        reasons = {f.layer_class: f.reason for f in result.errors()}
        self.assertIn("not in TensorRT 10's supported ONNX operators", reasons["Unique"])
        self.assertIn("needs a plugin", reasons["MyOp"])
        self.assertEqual({f.source for f in result.findings}, {"bad.onnx"})
        self.assertTrue(graph_lint.lint_onnx(fine.SerializeToString()).all_ok)  # bytes work too
        newer = _onnx_model([helper.make_node("Relu", ["x"], ["y"])], opset=21)
        self.assertEqual(
            [f.layer_class for f in graph_lint.lint_onnx(newer).errors()], ["opset 21"]
        )

    def test_onnx_axes_the_parser_needs_as_initializers(self):
        axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
        constant = _onnx_model(
            [helper.make_node("ReduceSum", ["x", "axes"], ["y"])], initializers=[axes]
        )
        self.assertTrue(graph_lint.lint_onnx(constant).all_ok)
        computed = _onnx_model(
            [
                helper.make_node("Shape", ["x"], ["shape"]),
                helper.make_node("Slice", ["shape", "one", "two"], ["axes"]),
                helper.make_node("ReduceSum", ["x", "axes"], ["y"]),
            ],
            initializers=[
                helper.make_tensor("one", TensorProto.INT64, [1], [1]),
                helper.make_tensor("two", TensorProto.INT64, [1], [2]),
            ],
        )
        (error,) = graph_lint.lint_onnx(computed).errors()
        self.assertEqual(error.layer_class, "ReduceSum")
        self.assertIn("`axes` as an initializer", error.reason)

    def test_files_targets_and_errors(self):
        folder = self.get_temp_dir()
        path = os.path.join(folder, "model_int8.tflite")
        with open(path, "wb") as f:
            f.write(self.int8)
        self.assertEqual(graph_lint.lint_file(path).model, "model_int8.tflite")
        with self.assertRaisesRegex(graph_lint.GraphLintError, "do not apply to a TFLite model"):
            graph_lint.lint_tflite(self.fp32, ["tensorrt"])
        with self.assertRaisesRegex(ValueError, r"unknown lint targets \['coreml'\]"):
            graph_lint.lint_tflite(self.fp32, ["coreml"])
        with self.assertRaisesRegex(graph_lint.GraphLintError, "not a TFLite flatbuffer"):
            graph_lint.lint_tflite(b"not a model at all")
        with self.assertRaisesRegex(graph_lint.GraphLintError, "not a readable TFLite flatbuffer"):
            graph_lint.lint_tflite(self.fp32[:64])
        with self.assertRaisesRegex(graph_lint.GraphLintError, "not a readable ONNX model"):
            graph_lint.lint_onnx(b"\x08\x07garbage")
        with self.assertRaisesRegex(graph_lint.GraphLintError, "reads .tflite and .onnx"):
            graph_lint.lint_file(os.path.join(folder, "model.pb"))
        with self.assertRaisesRegex(graph_lint.GraphLintError, "no TFLite model at"):
            graph_lint.lint_file(os.path.join(folder, "missing.tflite"))

    def test_lints_on_a_machine_without_tensorflow(self):
        folder = self.get_temp_dir()
        tflite_path, onnx_path = (
            os.path.join(folder, "model_fp32.tflite"),
            os.path.join(folder, "model.onnx"),
        )
        with open(tflite_path, "wb") as f:
            f.write(self.fp32)
        onnx.save(_onnx_model([helper.make_node("Unique", ["x"], ["y"])]), onnx_path)
        code = (
            "import sys; sys.modules['tensorflow'] = None\n"
            "from export import graph_lint\n"
            f"print(graph_lint.lint_file({tflite_path!r}).all_ok, graph_lint.lint_file({onnx_path!r}).all_ok)\n"
            "assert 'tensorflow' not in sys.modules or sys.modules['tensorflow'] is None\n"
        )
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertEqual(result.stdout.split(), ["True", "False"])


if __name__ == "__main__":
    tf.test.main()
