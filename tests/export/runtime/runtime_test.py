"""Tests for the export.runtime package as a whole: every module imports where TensorFlow cannot be imported."""

import os
import pkgutil
import subprocess
import sys

from absl.testing import absltest

import export.runtime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# Every import of TensorFlow (and its converters) fails in the child, as on a device that has only LiteRT and
# ONNX Runtime; each runtime module is imported and the modules loaded are listed.
_CHILD = """
import importlib, sys
for name in ("tensorflow", "tf_keras", "tf2onnx", "keras"):
    sys.modules[name] = None
for name in sys.argv[1:]:
    importlib.import_module(name)
loaded = [m for m, module in sys.modules.items() if module is not None]
print(sorted(m for m in loaded if m.split(".")[0] in ("tensorflow", "tf_keras", "tf2onnx")))
print(sorted(m for m in loaded if m.startswith("export.") and not m.startswith("export.runtime")))
"""


class RuntimeTest(absltest.TestCase):

    def test_every_module_imports_without_tensorflow_and_without_the_rest_of_export(self):
        names = [
            f"export.runtime.{info.name}"
            for info in pkgutil.iter_modules(export.runtime.__path__)
            if not info.name.startswith("_")
        ]
        self.assertContainsSubset(
            {"export.runtime.layout", "export.runtime.litert", "export.runtime.head_trainer"}, names
        )
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, *names],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=ROOT),
            timeout=120,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertEqual(result.stdout.split("\n")[:2], ["[]", "[]"])


if __name__ == "__main__":
    absltest.main()
