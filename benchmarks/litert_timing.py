"""Conversion of a traced model to TFLite and its LiteRT latency, shared by the benchmark scripts.

A traced function is saved as a SavedModel and converted by `export.tflite.convert`, the converter every shipped
artifact goes through, so a benchmark's figures come from the same conversion settings as the artifacts'.
"""

import tempfile
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert

from export import tflite as export_tflite

_SIGNATURE = "serving_default"


def tflite(
    function: tf.types.experimental.ConcreteFunction,
    trackable,
    calibration: Sequence[np.ndarray] | None = None,
) -> bytes:
    """The TFLite bytes of `function` (builtin ops only): fp32, or full int8 calibrated on `calibration`, values of
    the function's one input (random values are enough for latency: it does not depend on them).

    Raises:
      ValueError: calibration for a function of several inputs.
    """
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(trackable, saved, signatures={_SIGNATURE: function})
        representative = None
        if calibration is not None:
            names = list(
                tf.saved_model.load(saved).signatures[_SIGNATURE].structured_input_signature[1]
            )
            if len(names) != 1:
                raise ValueError(
                    f"calibration is for a function of one input; this one has {names}"
                )

            def representative():
                for value in calibration:
                    yield _SIGNATURE, {names[0]: np.asarray(value, np.float32)}

        return export_tflite.convert(
            saved,
            "fp32" if calibration is None else "int8",
            representative,
            signature_keys=(_SIGNATURE,),
        )


def keras_tflite(model, calibration: Sequence[np.ndarray] | None = None) -> bytes:
    """`tflite` of a one-input Keras model at batch 1 in inference mode; `calibration`: inputs for full int8."""
    spec = tf.TensorSpec([1, *model.input_shape[1:]], tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return tflite(function, model, calibration)


def latency_ms(model: bytes, runs: int, warmup: int, num_threads: int = 1) -> float:
    """Median milliseconds per invocation of `model` (TFLite bytes), every input uniform random in [0, 1)."""
    runner = litert.Interpreter(model_content=model, num_threads=num_threads)
    runner.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in runner.get_input_details():
        value = rng.uniform(size=detail["shape"]).astype(detail["dtype"])
        runner.set_tensor(detail["index"], value)
    for _ in range(warmup):
        runner.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.invoke()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))
