"""ONNX forms of a student (tf2onnx), the Jetson path to TensorRT, checked with ONNX Runtime on the CPU.

A student has two graphs, like the SavedModel's two signatures:
- the clip model: `clip` [B, T, S, S, 3] -> `embedding` [B, D];
- the streaming step: `frame` [B, S, S, 3] and one input per state tensor (named as in `Student.state_shapes`) ->
  `embedding` and the new state as `next_<state name>` (ONNX forbids an output named like an input; a caller feeds
  `next_x` back as `x`).
The batch is static (`batch=1`, what a TensorRT engine for one camera wants) or dynamic (`batch=None`, for
optimisation profiles). Opset 17 or newer. `convert_model` converts any one-input model (the pose encoder's
`keypoints` [B, 17, 2] -> `embedding`). `export.runtime.onnx_runtime.OnnxModel` runs them without TensorFlow (the
converters here import it when called).
"""

import onnx

from export.runtime.onnx_runtime import NEXT

MIN_OPSET = 17


class OnnxExportError(ValueError):
    """The ONNX export cannot be done as asked."""


def _check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise OnnxExportError(f"opset {opset} is too old; use {MIN_OPSET} or newer")


def _converter():
    """TensorFlow, tf2onnx and edge_ssl's `tf.function` (traced as written), imported only when converting (a device
    runs `OnnxModel` without them)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tf2onnx  # pylint: disable=g-import-not-at-top

    from edge_ssl import tracing  # pylint: disable=g-import-not-at-top

    return tf, tf2onnx, tracing.function


def convert_model(
    model, input_name: str, batch: int | None = 1, opset: int = MIN_OPSET
) -> onnx.ModelProto:
    """A one-input Keras model as ONNX: input `input_name` ([batch, ...the model's input shape]), output `embedding`.

    Args:
      model: a Keras model with one input and one output (run in inference mode).
      input_name: the ONNX input's name (`clip`, `keypoints`), which the runtimes feed by name.
      batch: a static batch size, or None for a dynamic batch axis.
      opset: the ONNX opset, MIN_OPSET or newer.
    """
    _check_opset(opset)
    tf, tf2onnx, tf_function = _converter()
    spec = tf.TensorSpec([batch, *model.input_shape[1:]], tf.float32, name=input_name)

    @tf_function(input_signature=[spec])
    def model_fn(inputs):
        return {"embedding": model(inputs, training=False)}

    proto, _ = tf2onnx.convert.from_function(model_fn, input_signature=[spec], opset=opset)
    return proto


def convert_clip(student, batch: int | None = 1, opset: int = MIN_OPSET) -> onnx.ModelProto:
    """The whole-clip model as ONNX, input `clip`, output `embedding`."""
    return convert_model(student.model, "clip", batch, opset)


def convert_step(student, batch: int | None = 1, opset: int = MIN_OPSET) -> onnx.ModelProto:
    """The streaming step as ONNX: inputs `frame` and the state; outputs `embedding` and `next_<state>`."""
    _check_opset(opset)
    tf, tf2onnx, tf_function = _converter()
    specs = student.step_specs(batch)
    names = list(specs)
    signature = [tf.TensorSpec(s.shape, s.dtype, name=name) for name, s in specs.items()]

    @tf_function(input_signature=signature)
    def step_fn(*tensors):
        outputs = student.step_model(dict(zip(names, tensors)), training=False)
        return {(k if k == "embedding" else NEXT + k): v for k, v in outputs.items()}

    proto, _ = tf2onnx.convert.from_function(step_fn, input_signature=signature, opset=opset)
    return proto
