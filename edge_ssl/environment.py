"""What the installed stack can do: versions, Keras 2, TF-TRT, accelerators, the allocator. Shown by the demo, kept in model cards."""

import importlib.metadata
import platform

import tensorflow as tf

from edge_ssl import allocator
from edge_ssl.keras import keras

_PACKAGES = (
    "tensorflow",
    "tf-keras",
    "tensorflow-datasets",
    "numpy",
    "opencv-python-headless",
    "onnx",
    "onnxruntime",
    "tf2onnx",
    "ai-edge-litert",
)


def package_version(name: str) -> str:
    """The installed version of distribution `name`, or "not installed"."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def tf_trt_enabled() -> bool:
    """Whether this TensorFlow build has TensorRT (pip TensorFlow >= 2.18 does not; NVIDIA's Jetson wheels may)."""
    try:
        # pylint: disable=g-import-not-at-top,protected-access
        from tensorflow.python.compiler.tensorrt import trt_convert

        return bool(trt_convert._pywrap_py_utils.is_tensorrt_enabled())
    except (ImportError, AttributeError):
        return False


def describe() -> dict[str, str]:
    """One flat mapping of facts about this machine's stack, for the terminal and for JSON."""
    facts = {"python": platform.python_version(), "machine": platform.machine()}
    facts.update({name: package_version(name) for name in _PACKAGES})
    facts["keras (in use)"] = f"{keras.__version__} ({keras.__name__})"
    facts["tf-trt"] = (
        "enabled" if tf_trt_enabled() else "not in this TensorFlow build (use ONNX -> TensorRT)"
    )
    gpus = tf.config.list_physical_devices("GPU")
    facts["gpus"] = ", ".join(d.name for d in gpus) if gpus else "none"
    facts["tensorrt"] = package_version("tensorrt")
    facts["memory allocator"] = allocator.describe()
    return facts
