"""TFLite (LiteRT) forms of a student SavedModel: fp32, fp16, dynamic range and full int8, both signatures.

The student's SavedModel (`edge_ssl.models.student.Student.save`) has `serving_default` (clip [B, T, S, S, 3] ->
embedding) and `step` (frame + state tensors -> embedding + new state). Both go into one `.tflite` file, builtin ops
only (the Python LiteRT runtime has no Flex delegate). Full int8 calibrates on representative clips: each clip feeds
the clip signature, and is streamed through the Keras step so that the step signature is calibrated on the states
real streams reach, not on random ones. With `int8_io` the inputs and outputs are int8 too (the runner quantizes and
dequantizes them); otherwise they stay float32 around an int8 graph.

`TFLiteModel` runs a converted model with `ai_edge_litert` (never `tf.lite.Interpreter`): whole clips, and streams.
It needs no TensorFlow (the converter imports it when called), so a device with LiteRT alone runs artifacts.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
from ai_edge_litert import interpreter as litert

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")
SIGNATURES = ("serving_default", "step")

Representative = Callable[[], Iterator[tuple[str, dict[str, np.ndarray]]]]


class ExportError(ValueError):
    """The model cannot be converted as asked (missing calibration data, unknown quantization, a Flex op)."""


def representative_data(student, clips: Iterable[np.ndarray]) -> Representative:
    """Calibration inputs for both signatures from clips [T, S, S, 3] (float32 in [0, 1]).

    Args:
      student: the `edge_ssl.models.student.Student` whose step produces the states.
      clips: a re-iterable collection of clips (a list or an array), each of the student's clip shape.
    """

    def generate():
        for clip in clips:
            clip = np.asarray(clip, np.float32)[None]
            yield "serving_default", {"clip": clip}
            state = student.init_state(1)
            for t in range(clip.shape[1]):
                frame = clip[:, t]
                yield "step", {"frame": frame, **{k: np.asarray(v) for k, v in state.items()}}
                _, state = student.step(frame, state)

    return generate


def convert(
    saved_model_dir: str,
    quantization: str,
    representative: Representative | None = None,
    int8_io: bool = False,
    signature_keys: Sequence[str] = SIGNATURES,
) -> bytes:
    """The `.tflite` bytes of the SavedModel's signatures: a student's `serving_default` and `step` by default, or
    those named in `signature_keys` (a pose encoder has `serving_default` alone).

    Raises:
      ExportError: an unknown quantization, int8 without representative data, int8_io without int8, or a
        conversion that fails (the converter's message is kept).
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(
            f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}"
        )
    if quantization == "int8" and representative is None:
        raise ExportError("int8 needs representative clips to calibrate on")
    if int8_io and quantization != "int8":
        raise ExportError("int8 inputs and outputs need quantization='int8'")
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=list(signature_keys)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    try:
        return converter.convert()
    except (
        Exception
    ) as e:  # the converter raises ConverterError and others, with the op that failed
        raise ExportError(f"TFLite {quantization} conversion failed: {e}") from e


class TFLiteModel:
    """A converted model run with LiteRT: `embed(clips)` through `serving_default`, `stream(clip)` through `step`.

    `required` names the signatures the file must have (a student's two by default; a pose encoder or a classifier
    may have `serving_default` alone).
    """

    def __init__(
        self,
        model: bytes | str,
        num_threads: int | None = None,
        required: tuple[str, ...] = SIGNATURES,
    ):
        kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": model}
        where = "the model bytes" if isinstance(model, bytes) else model
        try:
            self.interpreter = litert.Interpreter(num_threads=num_threads, **kwargs)
        except (ValueError, RuntimeError) as e:
            raise ExportError(f"{where} is not a readable TFLite model: {e}") from e
        self.signatures = self.interpreter.get_signature_list()
        missing = set(required) - set(self.signatures)
        if missing:
            raise ExportError(f"the model lacks the {sorted(missing)} signature(s)")
        self._runners = {
            name: self.interpreter.get_signature_runner(name) for name in self.signatures
        }
        # Read once: a stream calls `run` every frame, and the details do not change.
        self._details = {
            name: (runner.get_input_details(), runner.get_output_details())
            for name, runner in self._runners.items()
        }

    @staticmethod
    def _quantize(value: np.ndarray, detail: dict) -> np.ndarray:
        if detail["dtype"] == np.float32:
            return np.asarray(value, np.float32)
        scale, zero = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(value / scale + zero), info.min, info.max).astype(detail["dtype"])

    @staticmethod
    def _dequantize(value: np.ndarray, detail: dict) -> np.ndarray:
        if detail["dtype"] == np.float32:
            return value
        scale, zero = detail["quantization"]
        return (value.astype(np.float32) - zero) * scale

    def run(self, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One invocation of signature `name`; float inputs and outputs (int8 ones are (de)quantized here)."""
        runner = self._runners[name]
        details_in, details_out = self._details[name]
        outputs = runner(**{k: self._quantize(v, details_in[k]) for k, v in inputs.items()})
        return {k: self._dequantize(v, details_out[k]) for k, v in outputs.items()}

    def embed(self, clips: np.ndarray) -> np.ndarray:
        """Embeddings [N, D] of clips [N, T, S, S, 3], one clip per invocation (the signature's batch is 1)."""
        return np.concatenate(
            [self.run("serving_default", {"clip": c[None]})["embedding"] for c in clips]
        )

    def initial_state(self) -> dict[str, np.ndarray]:
        """The zero state of one stream, from the step signature's inputs."""
        details = self._details["step"][0]
        return {k: np.zeros(d["shape"], np.float32) for k, d in details.items() if k != "frame"}

    def input_details(self, name: str) -> dict[str, dict]:
        """Signature `name`'s inputs: name -> LiteRT's details (shape, dtype, quantization)."""
        return self._details[name][0]

    def output_names(self, name: str) -> list[str]:
        """Signature `name`'s output names."""
        return list(self._details[name][1])

    def stream(self, clip: np.ndarray) -> np.ndarray:
        """The embedding [D] after streaming clip [T, S, S, 3] frame by frame from the zero state."""
        state = self.initial_state()
        for frame in clip:
            outputs = self.run("step", {"frame": frame[None], **state})
            embedding = outputs["embedding"]
            state = {k: outputs[k] for k in state}
        return embedding[0]
