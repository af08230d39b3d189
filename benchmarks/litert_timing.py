"""Conversion of a traced model to TFLite and its LiteRT latency, shared by the benchmark scripts."""

import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert


def tflite(
    function: tf.types.experimental.ConcreteFunction,
    trackable,
    calibration: Sequence[Sequence[np.ndarray]] | None = None,
) -> bytes:
    """The TFLite bytes of `function` (builtin ops only): fp32, or full int8 calibrated on `calibration`, a list of
    the function's positional inputs (random values are enough for latency: it does not depend on them).
    """
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], trackable)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (list(inputs) for inputs in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def keras_tflite(model, calibration: Sequence[np.ndarray] | None = None) -> bytes:
    """`tflite` of a one-input Keras model at batch 1 in inference mode; `calibration`: inputs for full int8."""
    spec = tf.TensorSpec([1, *model.input_shape[1:]], tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return tflite(function, model, None if calibration is None else [[x] for x in calibration])


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
