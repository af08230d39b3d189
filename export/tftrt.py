"""TF-TRT conversion of the student's SavedModel, for TensorFlow builds that have TensorRT (NVIDIA's Jetson wheels).

Pip TensorFlow 2.18+ ships the TF-TRT module with TensorRT disabled; there `convert` raises `TFTRTUnavailable`
naming the ONNX path, the supported route to TensorRT.
"""

import os

import tensorflow as tf

from edge_ssl import environment
from export.runtime import layout


class TFTRTUnavailable(RuntimeError):
    """This TensorFlow build has no TensorRT."""


def tensorrt_enabled() -> bool:
    """Whether this TensorFlow was built with TensorRT (`edge_ssl.environment.tf_trt_enabled`)."""
    return environment.tf_trt_enabled()


def convert(
    saved_model_dir: str, output_dir: str, precision: str = "FP16", onnx_path: str | None = None
) -> str:
    """Converts `saved_model_dir` with TF-TRT into `output_dir`; returns it.

    Raises:
      TFTRTUnavailable: this TensorFlow has no TensorRT; the message names the ONNX route.
    """
    if not tensorrt_enabled():
        # The SavedModel of an artifact directory has the ONNX graph beside it.
        onnx_path = (
            onnx_path or layout.ArtifactDir(os.path.dirname(os.path.abspath(saved_model_dir))).onnx
        )
        raise TFTRTUnavailable(
            f"TF-TRT is not available: TensorFlow {tf.__version__} was built without TensorRT (pip builds since 2.18 "
            f"disable it). Build a TensorRT engine from the ONNX export instead: {onnx_path} "
            "(export.runtime.tensorrt.build_engine, or trtexec on the device)."
        )
    from tensorflow.python.compiler.tensorrt import (
        trt_convert,  # pylint: disable=g-import-not-at-top
    )

    converter = trt_convert.TrtGraphConverterV2(
        input_saved_model_dir=saved_model_dir, precision_mode=precision
    )
    converter.convert()
    converter.save(output_dir)
    return output_dir
