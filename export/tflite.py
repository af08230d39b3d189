"""TFLite (LiteRT) forms of a student SavedModel: fp32, fp16, dynamic range and full int8, both signatures.

The student's SavedModel (`edge_ssl.models.student.Student.save`) has `serving_default` (clip [B, T, S, S, 3] ->
embedding) and `step` (frame + state tensors -> embedding + new state). Both go into one `.tflite` file, builtin ops
only (the Python LiteRT runtime has no Flex delegate). Full int8 calibrates on representative clips: each clip feeds
the clip signature, and is streamed through the Keras step so that the step signature is calibrated on the states
real streams reach, not on random ones. With `int8_io` the inputs and outputs are int8 too (the runner quantizes and
dequantizes them); otherwise they stay float32 around an int8 graph.

`export.runtime.litert.TFLiteModel` runs the converted models (no TensorFlow); the converter here imports
TensorFlow when called.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from export.runtime.litert import SIGNATURES

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")

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
