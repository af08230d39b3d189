"""export.runtime: what runs on the device, with no TensorFlow.

The artifact directory's layout and model card (`layout`), the engines that run exported forms (`litert`:
`.tflite` files with LiteRT; `onnx_runtime`: ONNX graphs with ONNX Runtime; `tensorrt`: TensorRT engines, built on
the device), a head appended to a `.tflite` graph (`classifier`), a linear head trained inside LiteRT
(`head_trainer`), parity figures (`parity`), `--precision=auto` (`precision`) and the machine's facts (`machine`).
The few-shot runner, the recognizer and the benchmark depend on this package and on nothing else of `export`; the
converters that make the files (`export.tflite`, `export.onnx`, `export.trainable_head`, `export.artifacts`) stay
in `export`. `tools/lint.py` fails the test command when a module here imports TensorFlow, tf-keras, tf2onnx or
another part of `export`.
"""


class ModelError(ValueError):
    """A model file the runtime cannot run (unreadable, or without the signatures or graphs asked for)."""
