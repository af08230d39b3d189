"""ONNX forms of a student (tf2onnx), the Jetson path to TensorRT, checked with ONNX Runtime on the CPU.

A student has two graphs, like the SavedModel's two signatures:
- the clip model: `clip` [B, T, S, S, 3] -> `embedding` [B, D];
- the streaming step: `frame` [B, S, S, 3] and one input per state tensor (named as in `Student.state_shapes`) ->
  `embedding` and the new state as `next_<state name>` (ONNX forbids an output named like an input; a caller feeds
  `next_x` back as `x`).
The batch is static (`batch=1`, what a TensorRT engine for one camera wants) or dynamic (`batch=None`, for
optimisation profiles). Opset 17 or newer. `convert_model` converts any one-input model (the pose encoder's
`keypoints` [B, 17, 2] -> `embedding`). `OnnxModel` needs no TensorFlow (the converters import it when called).
"""

from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort

MIN_OPSET = 17
NEXT = "next_"


class OnnxExportError(ValueError):
    """The ONNX export cannot be done as asked."""


def _check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise OnnxExportError(f"opset {opset} is too old; use {MIN_OPSET} or newer")


def _converter():
    """TensorFlow and tf2onnx, imported only when converting (a device runs `OnnxModel` without them)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tf2onnx  # pylint: disable=g-import-not-at-top

    return tf, tf2onnx


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
    tf, tf2onnx = _converter()
    spec = tf.TensorSpec([batch, *model.input_shape[1:]], tf.float32, name=input_name)

    @tf.function(input_signature=[spec])
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
    tf, tf2onnx = _converter()
    specs = student.step_specs(batch)
    names = list(specs)
    signature = [tf.TensorSpec(s.shape, s.dtype, name=name) for name, s in specs.items()]

    @tf.function(input_signature=signature)
    def step_fn(*tensors):
        outputs = student.step_model(dict(zip(names, tensors)), training=False)
        return {(k if k == "embedding" else NEXT + k): v for k, v in outputs.items()}

    proto, _ = tf2onnx.convert.from_function(step_fn, input_signature=signature, opset=opset)
    return proto


class OnnxModel:
    """ONNX Runtime sessions for a clip graph and a step graph (either may be None), on `threads` threads (ONNX
    Runtime's default when None)."""

    def __init__(
        self,
        clip: onnx.ModelProto | str | None = None,
        step: onnx.ModelProto | str | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int | None = None,
    ):
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1

        def session(model):
            if model is None:
                return None
            content = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
            return ort.InferenceSession(content, options, providers=list(providers))

        self.clip_session = session(clip)
        self.step_session = session(step)

    def embed(self, clips: np.ndarray) -> np.ndarray:
        """Embeddings [N, D] of clips [N, T, S, S, 3] (or of whatever the one-input graph takes, such as keypoints
        [N, 17, 2], fed under its own input name); one item per run when the graph's batch is static.
        """
        if self.clip_session is None:
            raise OnnxExportError("no clip graph loaded")
        node = self.clip_session.get_inputs()[0]
        batch, name = node.shape[0], node.name
        clips = np.asarray(clips, np.float32)
        if isinstance(batch, int):
            return np.concatenate(
                [
                    self.clip_session.run(["embedding"], {name: clips[i : i + batch]})[0]
                    for i in range(0, len(clips), batch)
                ]
            )
        return self.clip_session.run(["embedding"], {name: clips})[0]

    def initial_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        if self.step_session is None:
            raise OnnxExportError("no step graph loaded")
        state = {}
        for node in self.step_session.get_inputs():
            if node.name != "frame":
                shape = [batch if not isinstance(d, int) else d for d in node.shape]
                state[node.name] = np.zeros(shape, np.float32)
        return state

    def stream(self, clips: np.ndarray) -> np.ndarray:
        """Embeddings [B, D] after streaming clips [B, T, S, S, 3] frame by frame from the zero state."""
        clips = np.asarray(clips, np.float32)
        state = self.initial_state(len(clips))
        names = [node.name for node in self.step_session.get_outputs()]
        for t in range(clips.shape[1]):
            outputs = dict(
                zip(names, self.step_session.run(names, {"frame": clips[:, t], **state}))
            )
            embedding = outputs.pop("embedding")
            state = {k[len(NEXT) :]: v for k, v in outputs.items()}
        return embedding
