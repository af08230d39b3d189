"""Tests for tools.lint: a test file without a py_test target, and a stray Keras import, are caught."""

import pathlib
import tempfile
import unittest

from tools import lint


def _write(root: pathlib.Path, rel: str, text: str = "") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


class LintTest(unittest.TestCase):

    def setUp(self):
        self.root = pathlib.Path(tempfile.mkdtemp())

    def test_test_file_without_target_is_reported(self):
        _write(self.root, "tests/a_test.py")
        _write(self.root, "tests/data/b_test.py")
        files = lint.project_files(self.root, "*_test.py")
        missing = lint.tests_without_target(files, ["//tests:a_test.py", "//tests:helper.py"])
        self.assertEqual(missing, [pathlib.PurePosixPath("tests/data/b_test.py")])

    def test_every_test_covered_reports_nothing(self):
        _write(self.root, "tests/data/b_test.py")
        files = lint.project_files(self.root, "*_test.py")
        self.assertEqual(lint.tests_without_target(files, ["//tests/data:b_test.py"]), [])

    def test_virtualenv_and_bazel_outputs_are_not_project_files(self):
        _write(self.root, ".venv/lib/x_test.py")
        _write(self.root, "bazel-out/y_test.py")
        _write(self.root, "third_party/z_test.py")
        self.assertEqual(lint.project_files(self.root, "*_test.py"), [])

    def test_label_to_path(self):
        self.assertEqual(
            lint.label_to_path("//a/b:c_test.py"), pathlib.PurePosixPath("a/b/c_test.py")
        )
        self.assertEqual(lint.label_to_path("//:top_test.py"), pathlib.PurePosixPath("top_test.py"))
        with self.assertRaises(ValueError):
            lint.label_to_path("@other//a:b.py")

    def test_keras_imports_outside_the_keras_module_are_reported(self):
        _write(self.root, "edge_ssl/keras.py", "import tf_keras as keras\n")
        _write(self.root, "edge_ssl/models/m.py", "import os\nfrom tf_keras import layers\n")
        _write(self.root, "export/x.py", "import tensorflow as tf\nm = tf.keras.Model()\n")
        _write(self.root, "export/y.py", "from tensorflow import keras\n")
        _write(self.root, "export/ok.py", "# tf.keras in a comment\ns = 'import tf_keras'\n")
        problems = lint.keras_import_violations(self.root)
        self.assertEqual(len(problems), 3, problems)
        self.assertTrue(problems[0].startswith("edge_ssl/models/m.py:2:"), problems)
        self.assertTrue(problems[1].startswith("export/x.py:2:"), problems)
        self.assertTrue(problems[2].startswith("export/y.py:1:"), problems)

    def test_the_device_runtime_imports_no_tensorflow_and_nothing_of_export_outside_it(self):
        _write(
            self.root, "export/runtime/ok.py", "import numpy\nfrom export.runtime import layout\n"
        )
        _write(self.root, "export/runtime/lazy_tf.py", "def f():\n    import tensorflow as tf\n")
        _write(self.root, "export/runtime/converter.py", "from export import tflite\n")
        _write(self.root, "export/runtime/keras.py", "from edge_ssl.keras import keras\n")
        _write(self.root, "edge_ssl/recognize/r.py", "def f():\n    from export import onnx\n")
        _write(self.root, "edge_ssl/recognize/ok.py", "from export.runtime.layout import CARD\n")
        _write(
            self.root,
            "edge_ssl/fewshot/lazy.py",
            "def f():\n    from export import trainable_head\n",
        )
        _write(self.root, "edge_ssl/fewshot/top.py", "import export.artifacts\n")
        # A TensorFlow head may use the converters: the runner imports it only when it is asked for.
        _write(
            self.root,
            "edge_ssl/fewshot/tf_head.py",
            "import tensorflow\nfrom export import tflite\n",
        )
        _write(self.root, "export/artifacts.py", "import tensorflow\nfrom export import tflite\n")
        problems = lint.runtime_import_violations(self.root)
        self.assertEqual(len(problems), 5, problems)
        self.assertTrue(problems[0].startswith("edge_ssl/fewshot/top.py:1:"), problems)
        self.assertIn("not export.artifacts", problems[0])
        self.assertTrue(problems[1].startswith("edge_ssl/recognize/r.py:2:"), problems)
        self.assertTrue(problems[2].startswith("export/runtime/converter.py:1:"), problems)
        self.assertIn("imports only export.runtime, not export.tflite", problems[2])
        self.assertTrue(problems[3].startswith("export/runtime/keras.py:1:"), problems)
        self.assertTrue(problems[4].startswith("export/runtime/lazy_tf.py:2:"), problems)
        self.assertIn("must not import tensorflow", problems[4])

    def test_what_tensorflow_traces_must_be_traced_as_written(self):
        _write(self.root, "edge_ssl/tracing.py", "import tensorflow as tf\nf = tf.function\n")
        _write(
            self.root, "tests/t_test.py", "import tensorflow as tf\nf = tf.function\n"
        )  # tests may
        _write(
            self.root,
            "edge_ssl/ok.py",
            "class L:\n"
            "    @tracing.as_written\n    def call(self, x): ...\n"
            "    @abc.abstractmethod\n    def train_step(self, batch, n): ...\n"
            "    def prepare(self, data): ...\n"  # another `prepare`: numpy, never traced
            "g = tracing.function(input_signature=[])(lambda: 1)\n",
        )
        _write(
            self.root,
            "export/f.py",
            "def g():\n    import tensorflow as tf\n    return tf.function\n",
        )
        _write(
            self.root,
            "edge_ssl/m.py",
            "class M:\n"
            "    def prepare(self, example, seed): ...\n"
            "    @tracing.function\n    def train_step(self, batch, n): ...\n"
            "    @keras.utils.register_keras_serializable()\n    def call(self, x): ...\n",
        )
        problems = lint.tracing_violations(self.root)
        self.assertEqual(len(problems), 4, problems)
        self.assertTrue(problems[0].startswith("edge_ssl/m.py:2: M.prepare is traced"), problems)
        self.assertTrue(problems[1].startswith("edge_ssl/m.py:4: M.train_step is traced"), problems)
        self.assertTrue(problems[2].startswith("edge_ssl/m.py:6: M.call is traced"), problems)
        self.assertIn("@tracing.as_written", problems[2])
        self.assertTrue(problems[3].startswith("export/f.py:3: write `tracing.function`"), problems)

    def test_main_fails_on_a_missing_target(self):
        _write(self.root, "tests/a_test.py")
        labels = self.root / "labels.txt"
        labels.write_text("", encoding="utf-8")
        self.assertEqual(lint.main(["--root", str(self.root), "--test_srcs", str(labels)]), 1)
        labels.write_text("//tests:a_test.py\n", encoding="utf-8")
        self.assertEqual(lint.main(["--root", str(self.root), "--test_srcs", str(labels)]), 0)


if __name__ == "__main__":
    unittest.main()
