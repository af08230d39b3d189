"""Tests for export.keras_lint: students pass every target; 3D convolutions and pooling fail where they cannot run."""

import json

import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.keras import keras
from edge_ssl.models import student, video_resnet
from export import keras_lint


@keras.utils.register_keras_serializable("edge_ssl_test")
class Doubler(keras.layers.Layer):
    """A custom layer the lint has no rule for, holding a Conv3D it must still find."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Conv3D(2, 1, name="hidden_conv3d")

    def call(self, x):
        return 2.0 * self.inner(x)


def _video_model(layer: keras.layers.Layer) -> keras.Model:
    inputs = keras.Input((4, 8, 8, 3), name="clip")
    return keras.Model(inputs, layer(inputs), name="video")


class LintTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters("tiny", "small", "base")
    def test_students_pass_every_target_without_warnings(self, variant):
        model = student.build_student(variant)
        for keras_model in (model.model, model.step_model):
            result = keras_lint.lint_model(keras_model)
            self.assertEqual(result.ok, {t: True for t in keras_lint.TARGETS})
            self.assertEmpty(result.findings, result.report())
            self.assertGreater(result.layers_checked, 20)

    def test_conv3d_teacher_fails_int8_and_xnnpack_naming_the_layer(self):
        result = keras_lint.lint_model(video_resnet.video_resnet("tiny", frames=4))
        self.assertEqual(
            result.ok,
            {"tflite_builtin": True, "tflite_int8": False, "xnnpack": False, "tensorrt": True},
        )
        int8 = result.errors("tflite_int8")
        self.assertIn("visual/visual_conv1", [f.layer for f in int8])
        self.assertTrue(all(f.layer_class == "Conv3D" for f in int8))
        self.assertEqual({f.kind for f in int8}, {"float_fallback"})
        self.assertEqual({f.kind for f in result.errors("xnnpack")}, {"not_delegated"})
        self.assertEqual(len(int8), 17)  # conv1 and the four convolutions of each of the 4 blocks

    @parameterized.parameters(
        (keras.layers.MaxPooling3D(2, name="pool3d"), "MaxPool3D"),
        (keras.layers.AveragePooling3D(2, name="pool3d"), "AvgPool3D"),
    )
    def test_3d_pooling_needs_flex_on_every_tflite_target(self, layer, op):
        result = keras_lint.lint_model(_video_model(layer))
        for target in ("tflite_builtin", "tflite_int8", "xnnpack"):
            (finding,) = result.errors(target)
            self.assertEqual((finding.layer, finding.kind), ("video/pool3d", "needs_flex"))
            self.assertIn(op, finding.reason)
        self.assertTrue(result.ok["tensorrt"])

    def test_nested_models_and_time_distributed_are_walked(self):
        inner = keras.Sequential(
            [keras.Input((4, 8, 8, 3)), keras.layers.Conv3D(2, 3, name="deep_conv3d")],
            name="inner",
        )
        inputs = keras.Input((2, 4, 8, 8, 3))
        x = keras.layers.TimeDistributed(inner, name="per_clip")(inputs)
        model = keras.Model(inputs, x, name="outer")
        result = keras_lint.lint_model(model)
        (finding,) = result.errors("tflite_int8")
        self.assertEqual(finding.layer, "outer/per_clip/inner/deep_conv3d")

    def test_unknown_layers_warn_and_their_sublayers_are_checked(self):
        result = keras_lint.lint_model(_video_model(Doubler(name="doubler")))
        self.assertTrue(result.ok["tflite_builtin"])
        self.assertFalse(result.ok["tflite_int8"])
        self.assertEqual(result.errors("tflite_int8")[0].layer, "video/doubler/hidden_conv3d")
        unchecked = [f for f in result.warnings("tensorrt") if f.kind == "unchecked"]
        self.assertEqual([f.layer for f in unchecked], ["video/doubler"])
        self.assertIn("the layers it holds are checked here", unchecked[0].reason)

    def test_lambdas_activations_and_dynamic_inputs_are_warnings(self):
        inputs = keras.Input((None, 8))
        x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
        x = keras.layers.Dense(4, activation="elu", name="fc")(x)
        result = keras_lint.lint_model(keras.Model(inputs, x, name="m"))
        self.assertTrue(result.all_ok)
        kinds = {(f.target, f.layer, f.kind) for f in result.warnings()}
        self.assertIn(("tensorrt", "m/double", "unchecked"), kinds)
        self.assertIn(("tflite_int8", "m/fc", "float_fallback"), kinds)
        self.assertNotIn(("tflite_builtin", "m/fc", "float_fallback"), kinds)
        dynamic = [f for f in result.warnings("xnnpack") if f.kind == "dynamic_shape"]
        self.assertLen(dynamic, 1)
        self.assertIn("[1]", dynamic[0].reason)

    def test_tensorflow_functions_on_keras_tensors_are_checked_by_name(self):
        inputs = keras.Input((4, 8, 8, 3))
        x = tf.nn.max_pool3d(inputs, 2, 2, "VALID")
        x = x + 1.0
        result = keras_lint.lint_model(keras.Model(inputs, x, name="ops"))
        (finding,) = result.errors("tflite_builtin")
        self.assertEqual(finding.layer_class, "tf.nn.max_pool3d")
        self.assertEmpty(result.warnings())

    def test_report_names_targets_status_and_layers(self):
        result = keras_lint.lint_model(_video_model(keras.layers.Conv3D(2, 3, name="c3d")))
        report = result.report()
        self.assertIn("Op lint of 'video'", report)
        self.assertRegex(report, r"tflite_builtin\s+ok")
        self.assertRegex(report, r"tflite_int8\s+FAILED\s+1 error, 0 warnings")
        self.assertRegex(report, r"xnnpack\s+FAILED")
        self.assertIn("video/c3d (Conv3D): CONV_3D has no int8 kernel", report)
        summary = json.loads(result.to_json())
        self.assertEqual(summary["ok"]["tflite_int8"], False)
        self.assertEqual(summary["findings"][0]["layer"], "video/c3d")
        with self.assertRaisesRegex(keras_lint.LintError, "FAILED"):
            result.raise_for_errors()
        result.raise_for_errors(["tflite_builtin", "tensorrt"])  # those targets are fine

    def test_targets_subset_merge_and_bad_targets(self):
        model = _video_model(keras.layers.Conv3D(2, 3, name="c3d"))
        int8 = keras_lint.lint_model(model, targets=["tflite_int8"])
        self.assertEqual(int8.ok, {"tflite_int8": False})
        merged = int8.merge(keras_lint.lint_model(model, targets=["tensorrt"]))
        self.assertEqual(merged.ok, {"tflite_int8": False, "tensorrt": True})
        with self.assertRaisesRegex(ValueError, r"unknown lint targets \['coreml'\]"):
            keras_lint.lint_model(model, targets=["coreml"])
        with self.assertRaisesRegex(ValueError, "takes a Keras model"):
            keras_lint.lint_model("model.tflite")

    def test_rule_table_is_consistent(self):
        for key, rules in keras_lint.RULES.items():
            for target, rule in rules.items():
                with self.subTest(key=key, target=target):
                    self.assertIn(target, keras_lint.TARGETS)
                    self.assertIn(rule.severity, (keras_lint.ERROR, keras_lint.WARNING))
                    self.assertIn(rule.kind, keras_lint.KINDS)
                    self.assertTrue(rule.reason)
        for layer in ("Conv3D", "MaxPooling3D", "AveragePooling3D"):
            for target in ("tflite_int8", "xnnpack"):
                self.assertEqual(keras_lint.RULES[layer][target].severity, keras_lint.ERROR)


if __name__ == "__main__":
    tf.test.main()
