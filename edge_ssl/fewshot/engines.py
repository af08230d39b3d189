"""Embedding engines for the few-shot runner: one artifact directory, four runtimes, one interface.

`open_engine(artifact_dir, card, engine, precision, num_threads)` gives an `Engine` whose `embed(inputs)` maps the
model's inputs [N, ...] (clips [N, T, S, S, 3] for a video student, keypoints [N, 17, 2] for the pose encoder) to
L2-normalised embeddings [N, D]:
- `litert`: `model_<precision>.tflite` with `ai_edge_litert` (no TensorFlow needed);
- `onnxruntime`: `model.onnx` with ONNX Runtime (no TensorFlow needed);
- `tensorrt`: `model_<fp16|int8>.plan`, an engine built on this device from `model.onnx` (`python -m export`);
- `tf`: the SavedModel's `serving_default` signature;
- `auto`: TensorRT where a TensorRT engine and the `tensorrt` module are both here, else LiteRT, else ONNX Runtime,
  else TensorFlow.
Precision `auto` on LiteRT runs the fastest of the artifact's `.tflite` forms on this machine, found by a short timing
on first use and cached per machine and artifact (`export.runtime.precision`); the engine's `choice` says which and why.
Nothing here imports TensorFlow unless the `tf` engine is asked for.
"""

import dataclasses
import importlib.util
import os

import numpy as np

from edge_ssl import files
from export.runtime import layout

ENGINES = ("auto", "tf", "litert", "onnxruntime", "tensorrt")
PRECISIONS = ("auto", "fp32", "fp16", "int8")
_MODULES = {
    "tf": "tensorflow",
    "litert": "ai_edge_litert",
    "onnxruntime": "onnxruntime",
    "tensorrt": "tensorrt",
}


class EngineError(RuntimeError):
    """The engine cannot run this artifact here (not installed, its file missing); the message says what to do."""


def installed(engine: str) -> bool:
    """Whether the runtime behind `engine` can be imported (found, not imported: milliseconds)."""
    return importlib.util.find_spec(_MODULES[engine]) is not None


def tflite_file(artifact_dir: str, precision: str) -> str:
    """The artifact's `model_<precision>.tflite`; for `auto` the first of int8, fp16, fp32 that exists."""
    order = ("int8", "fp16", "fp32") if precision == "auto" else (precision,)
    found = layout.ArtifactDir(artifact_dir).tflite_files(order)
    if found:
        return next(iter(found.values()))
    names = ", ".join(layout.tflite_name(p) for p in order)
    raise EngineError(f"{artifact_dir} has no {names}; export it with --formats=tflite_{order[0]}")


def _engine_file(artifact_dir: str, precision: str) -> str | None:
    order = ("int8", "fp16") if precision in ("auto", "fp32") else (precision,)
    return next(iter(layout.ArtifactDir(artifact_dir).engine_files(order).values()), None)


def file_digest(path: str) -> str:
    """sha256 of a file, or of every file under a folder (names and contents), for cache keys."""
    if not os.path.isdir(path):
        return files.content_digest([path], base=path)
    tree = sorted(
        os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names
    )
    return files.content_digest(tree, base=path)


@dataclasses.dataclass
class Engine:
    """A loaded embedding model.

    Attributes:
      name: the runtime (`litert`, `onnxruntime`, `tensorrt`, `tf`).
      path: the file or folder it runs.
      precision: fp32, fp16 or int8: what the file holds.
      input_name: the model's input (`clip` or `keypoints`).
      digest: sha256 of `path`, the model part of embedding cache keys.
      choice: why this precision runs, when `auto` chose it by timing (None otherwise).
    """

    name: str
    path: str
    precision: str
    input_name: str
    digest: str
    _run: object = dataclasses.field(repr=False, default=None)
    choice: str | None = None

    def embed(self, inputs: np.ndarray) -> np.ndarray:
        """Embeddings [N, D] of inputs [N, ...] (float32)."""
        inputs = np.asarray(inputs, np.float32)
        return np.concatenate([self._run(inputs[i : i + 1]) for i in range(len(inputs))])


def fastest_tflite(
    artifact_dir: str, card: dict, input_name: str, num_threads: int | None
) -> tuple[str, str | None]:
    """(the artifact's fastest `model_<precision>.tflite` here for whole inputs, why), timed or from the cache."""
    from export.runtime import litert  # pylint: disable=g-import-not-at-top
    from export.runtime import precision as precision_lib  # pylint: disable=g-import-not-at-top

    paths = layout.ArtifactDir(artifact_dir).tflite_files(("int8", "fp16", "fp32"))
    if len(paths) < 2:
        return tflite_file(artifact_dir, "auto"), None
    inputs = np.zeros([1, *card["input"][input_name]], np.float32)

    def factory(path):
        def load():
            model = litert.TFLiteModel(path, num_threads=num_threads, required=("serving_default",))
            return lambda: model.run("serving_default", {input_name: inputs})

        return load

    choice = precision_lib.choose(
        {p: factory(path) for p, path in paths.items()},
        {p: [path] for p, path in paths.items()},
        f"litert serving_default ({num_threads or 'default'} threads)",
        artifact_dir,
    )
    return paths[choice.precision], choice.reason


def _litert(path: str, input_name: str, num_threads: int | None):
    from export.runtime import litert  # pylint: disable=g-import-not-at-top  (LiteRT only)

    model = litert.TFLiteModel(path, num_threads=num_threads, required=("serving_default",))
    return lambda x: model.run("serving_default", {input_name: x})["embedding"]


def _onnxruntime(path: str, num_threads: int | None):
    # Imported here: each engine loads only its own runtime.
    from export.runtime import onnx_runtime  # pylint: disable=g-import-not-at-top

    return onnx_runtime.OnnxModel(clip=path, threads=num_threads).embed


def _tensorrt(path: str, input_name: str):
    from export.runtime import tensorrt  # pylint: disable=g-import-not-at-top

    model = tensorrt.TensorRTModel(path)
    return lambda x: model({input_name: x})["embedding"]


def _tf(path: str, input_name: str, num_threads: int | None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if num_threads:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    function = tf.saved_model.load(path).signatures["serving_default"]
    return lambda x: function(**{input_name: tf.constant(x)})["embedding"].numpy()


def choose(artifact_dir: str, engine: str, precision: str) -> str:
    """The engine `auto` stands for here, or `engine` itself after checking its runtime is installed."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if precision not in PRECISIONS:
        raise EngineError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if engine == "auto":
        if installed("tensorrt") and _engine_file(artifact_dir, precision):
            return "tensorrt"
        artifact = layout.ArtifactDir(artifact_dir)
        for candidate, exists in (
            ("litert", bool(artifact.tflite_files(("fp32", "fp16", "int8")))),
            ("onnxruntime", os.path.exists(artifact.onnx)),
            ("tf", os.path.isdir(artifact.saved_model)),
        ):
            if exists and installed(candidate):
                return candidate
        raise EngineError(
            f"no engine can run {artifact_dir}: it needs a .tflite with ai-edge-litert, model.onnx with onnxruntime, "
            "or saved_model/ with tensorflow installed"
        )
    if not installed(engine):
        package = {
            "tf": "tensorflow",
            "litert": "ai-edge-litert",
            "onnxruntime": "onnxruntime",
        }.get(engine)
        how = (
            f"pip install {package}"
            if package
            else "install TensorRT 10 from NVIDIA (JetPack ships it)"
        )
        raise EngineError(
            f"--engine={engine} needs the {_MODULES[engine]} module, which is not installed ({how})"
        )
    return engine


def open_engine(
    artifact_dir: str,
    card: dict,
    engine: str = "auto",
    precision: str = "auto",
    num_threads: int | None = None,
) -> Engine:
    """Loads the artifact's embedding model on the chosen runtime.

    Args:
      artifact_dir: the artifact directory (from `python -m export`).
      card: its model card.
      engine: one of ENGINES.
      precision: which `.tflite` (or TensorRT engine) to run; `auto` on LiteRT takes the fastest form here (timed
        once, cached), on TensorRT int8 then fp16 (the others are fp32 or what their file holds).
      num_threads: CPU threads for LiteRT, ONNX Runtime and TensorFlow (their default when None).

    Raises:
      EngineError: an unknown engine or precision, a runtime that is not installed, or a missing file.
    """
    engine = choose(artifact_dir, engine, precision)
    input_name = next(iter(card["input"])) if card.get("kind") == "pose_encoder" else "clip"
    choice = None
    if engine == "litert":
        if precision == "auto":
            path, choice = fastest_tflite(artifact_dir, card, input_name, num_threads)
        else:
            path = tflite_file(artifact_dir, precision)
        run = _litert(path, input_name, num_threads)
        quantization = layout.precision_of(path)
    elif engine == "onnxruntime":
        path = layout.ArtifactDir(artifact_dir).onnx
        if not os.path.exists(path):
            raise EngineError(f"{artifact_dir} has no {layout.ONNX}; export it with --formats=onnx")
        run, quantization = _onnxruntime(path, num_threads), "fp32"
    elif engine == "tensorrt":
        path = _engine_file(artifact_dir, precision)
        if path is None:
            raise EngineError(
                f"{artifact_dir} has no TensorRT engine ({layout.engine_name('fp16')} or "
                f"{layout.engine_name('int8')}); build one on this "
                f"device: python -m export --model=... --output_dir={artifact_dir} --formats=tensorrt_fp16"
            )
        run = _tensorrt(path, input_name)
        quantization = layout.precision_of(path)
    else:
        path = layout.ArtifactDir(artifact_dir).saved_model
        if not os.path.isdir(path):
            raise EngineError(f"{artifact_dir} has no {layout.SAVED_MODEL}/ for --engine=tf")
        run, quantization = _tf(path, input_name, num_threads), "fp32"
    return Engine(engine, path, quantization, input_name, file_digest(path), run, choice)
