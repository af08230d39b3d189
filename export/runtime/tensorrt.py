"""TensorRT 10 engines from the exported ONNX, built on the device that runs them (GPU-only; optional).

An engine only runs on the TensorRT version and the GPU that built it, so engines are built on the Jetson from
`model.onnx` and written beside it with a card (`<engine>.json`: TensorRT version, GPU name and compute capability,
precision, the ONNX file's SHA-256); `load_engine` refuses an engine whose card names another version or GPU.

- `trtexec_command`: the equivalent `trtexec` command line, for users who prefer it (it ships with TensorRT on the
  device, under /usr/src/tensorrt/bin on JetPack, not with the pip wheels).
- `build_engine`: the TensorRT 10 Python API: fp16, or int8 with an entropy calibrator fed by representative inputs
  and a calibration cache (so a rebuild does not calibrate again); an optimisation profile for a dynamic batch.
  TensorRT 10 is required: TensorRT 11 removed the precision flags and implicit int8 calibration, and JetPack 6 ships
  10.3.
- `TensorRTModel`: inference with the name-based TensorRT 10 API and cuda-python buffers.
Without TensorRT (or without a GPU) every function that needs it raises `TensorRTUnavailable` with the trtexec command
to run on the device instead.
"""

import hashlib
import json
import os
from collections.abc import Iterable, Sequence

import numpy as np

from export.runtime import layout

PRECISIONS = ("fp32", "fp16", "int8")
CARD_SUFFIX = ".json"


class TensorRTUnavailable(RuntimeError):
    """TensorRT (or a CUDA GPU) is not available here."""


class EngineMismatchError(RuntimeError):
    """The engine was built by another TensorRT version or on another GPU."""


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


def trtexec_command(
    onnx_path: str,
    engine_path: str,
    precision: str = "fp16",
    input_name: str = "clip",
    input_shape: Sequence[int] | None = None,
    max_batch: int | None = None,
    calibration_cache: str | None = None,
    workspace_mib: int = 1024,
) -> list[str]:
    """The trtexec (TensorRT 10) command building the same engine as `build_engine`.

    Args:
      input_shape: the input's shape without the batch axis; with `max_batch`, a profile from batch 1 to it
        (optimised for half of it) is given, for an ONNX file with a dynamic batch.
      calibration_cache: for int8, the cache `build_engine` wrote (trtexec cannot calibrate from Python data).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    command = [
        "trtexec",
        f"--onnx={onnx_path}",
        f"--saveEngine={engine_path}",
        f"--memPoolSize=workspace:{workspace_mib}",
    ]
    if max_batch is not None:
        if input_shape is None:
            raise ValueError("a batch profile needs input_shape")
        opt = max(1, max_batch // 2)
        for flag, batch in (("minShapes", 1), ("optShapes", opt), ("maxShapes", max_batch)):
            command.append(f"--{flag}={input_name}:{shape_text([batch, *input_shape])}")
    if precision in ("fp16", "int8"):
        command.append("--fp16")
    if precision == "int8":
        command.append("--int8")
        if calibration_cache:
            command.append(f"--calib={calibration_cache}")
    return command


def _tensorrt(command: list[str]):
    """The tensorrt module (10.x) with a CUDA device, or TensorRTUnavailable naming what to run instead."""
    hint = "build the engine on the device with:\n  " + " ".join(command)
    try:
        import tensorrt as trt  # pylint: disable=g-import-not-at-top
    except ImportError as e:
        raise TensorRTUnavailable(f"TensorRT is not installed here ({e}); {hint}") from e
    major = int(trt.__version__.split(".")[0])
    if major != 10:
        raise TensorRTUnavailable(
            f"TensorRT {trt.__version__} is installed; edge_ssl builds with the TensorRT 10 API (JetPack 6 ships "
            f"10.3; 11 removed int8 calibration and the precision flags); {hint}"
        )
    return trt


def gpu_description() -> dict[str, str]:
    """Name and compute capability of CUDA device 0, from cuda-python; TensorRTUnavailable without one."""
    try:
        from cuda.bindings import runtime as cudart  # pylint: disable=g-import-not-at-top
    except ImportError:
        try:
            from cuda import cudart  # pylint: disable=g-import-not-at-top
        except ImportError as e:
            raise TensorRTUnavailable(f"cuda-python is not installed ({e})") from e
    error, props = cudart.cudaGetDeviceProperties(0)
    if int(error) != 0:
        raise TensorRTUnavailable(f"no CUDA device: {error}")
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return {"gpu": name.strip("\x00"), "compute_capability": f"{props.major}.{props.minor}"}


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_card(card: dict, tensorrt_version: str, gpu: dict[str, str]) -> None:
    """Raises EngineMismatchError when the engine's card names another TensorRT version or GPU than this one."""
    problems = []
    if card.get("tensorrt_version") != tensorrt_version:
        problems.append(
            f"TensorRT {card.get('tensorrt_version')} built it, this is {tensorrt_version}"
        )
    if card.get("gpu") != gpu.get("gpu") or card.get("compute_capability") != gpu.get(
        "compute_capability"
    ):
        problems.append(
            f"it was built on {card.get('gpu')} (sm {card.get('compute_capability')}), this is {gpu.get('gpu')} "
            f"(sm {gpu.get('compute_capability')})"
        )
    if problems:
        raise EngineMismatchError(
            "this engine cannot run here: "
            + "; ".join(problems)
            + f". Rebuild it here from {card.get('onnx', 'the ONNX file')}."
        )


def build_engine(
    onnx_path: str,
    engine_path: str,
    precision: str = "fp16",
    calibration_inputs: Iterable[np.ndarray] | None = None,
    calibration_cache: str | None = None,
    input_name: str = "clip",
    max_batch: int | None = None,
    workspace_mib: int = 1024,
) -> dict:
    """Builds a TensorRT engine from `onnx_path` and writes it with its card; returns the card.

    Raises:
      TensorRTUnavailable: no TensorRT 10 or no GPU here (the message has the trtexec command).
      ValueError: int8 without calibration inputs or an existing cache; an unknown precision.
      RuntimeError: the ONNX file does not parse or the build fails (TensorRT's errors are in the message).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not os.path.exists(onnx_path):
        raise FileNotFoundError(f"no ONNX file at {onnx_path}; run the export first")
    if (
        precision == "int8"
        and calibration_inputs is None
        and not (calibration_cache and os.path.exists(calibration_cache))
    ):
        raise ValueError(
            "int8 needs calibration inputs, or a calibration cache from an earlier build"
        )
    import onnx  # pylint: disable=g-import-not-at-top

    model_input = onnx.load(onnx_path, load_external_data=False).graph.input[0]
    dims = [d.dim_value if d.dim_value else None for d in model_input.type.tensor_type.shape.dim]
    command = trtexec_command(
        onnx_path,
        engine_path,
        precision,
        model_input.name,
        dims[1:] if dims[0] is None else None,
        max_batch if dims[0] is None else None,
        calibration_cache,
        workspace_mib,
    )
    trt = _tensorrt(command)
    gpu = gpu_description()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as f:
        if not parser.parse(f.read()):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise RuntimeError(f"TensorRT cannot parse {onnx_path}: " + "; ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if dims[0] is None:
        batch = max_batch or 1
        profile = builder.create_optimization_profile()
        shape = dims[1:]
        profile.set_shape(input_name, [1, *shape], [max(1, batch // 2), *shape], [batch, *shape])
        config.add_optimization_profile(profile)
        if precision == "int8":
            config.set_calibration_profile(profile)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, calibration_inputs, calibration_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(
            f"TensorRT could not build an engine from {onnx_path} (see its log above)"
        )
    with open(engine_path, "wb") as f:
        f.write(serialized)
    card = {
        "tensorrt_version": trt.__version__,
        **gpu,
        "precision": precision,
        "onnx": os.path.abspath(onnx_path),
        "onnx_sha256": sha256(onnx_path),
        "input": {"name": input_name, "shape": dims},
        "max_batch": max_batch,
        "trtexec": " ".join(command),
    }
    with open(engine_path + CARD_SUFFIX, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2)
    return card


def _calibrator(trt, inputs: Iterable[np.ndarray] | None, cache: str | None):
    """An IInt8EntropyCalibrator2 over `inputs` (one batch each), reading and writing `cache`."""
    from cuda.bindings import runtime as cudart  # pylint: disable=g-import-not-at-top

    batches = iter(inputs or ())

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.memory = None
            self.batch_size = 1

        def get_batch_size(self):
            return self.batch_size

        def get_batch(self, names):  # pylint: disable=unused-argument
            batch = next(batches, None)
            if batch is None:
                return None
            batch = np.ascontiguousarray(batch, np.float32)
            self.batch_size = batch.shape[0]
            if self.memory is not None:
                cudart.cudaFree(self.memory)
            _, self.memory = cudart.cudaMalloc(batch.nbytes)
            cudart.cudaMemcpy(
                self.memory,
                batch.ctypes.data,
                batch.nbytes,
                cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
            )
            return [int(self.memory)]

        def read_calibration_cache(self):
            if cache and os.path.exists(cache):
                with open(cache, "rb") as f:
                    return f.read()
            return None

        def write_calibration_cache(self, data):
            if cache:
                with open(cache, "wb") as f:
                    f.write(bytes(data))

    return Calibrator()


def load_engine(engine_path: str):
    """The deserialized engine, after checking its card against this device's TensorRT and GPU.

    Raises:
      FileNotFoundError: no engine, or no card beside it.
      EngineMismatchError: built by another TensorRT version or on another GPU.
      TensorRTUnavailable: no TensorRT 10 or GPU here.
    """
    card_path = engine_path + CARD_SUFFIX
    if not os.path.exists(engine_path):
        raise FileNotFoundError(f"no engine at {engine_path}")
    if not os.path.exists(card_path):
        raise FileNotFoundError(
            f"{engine_path} has no card ({card_path}); build engines with edge_ssl so that their origin is known"
        )
    with open(card_path, encoding="utf-8") as f:
        card = json.load(f)
    trt = _tensorrt(
        ["trtexec", f"--onnx={card.get('onnx', layout.ONNX)}", f"--saveEngine={engine_path}"]
    )
    check_card(card, trt.__version__, gpu_description())
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    with open(engine_path, "rb") as f:
        engine = runtime.deserialize_cuda_engine(f.read())
    if engine is None:
        raise RuntimeError(f"TensorRT could not deserialize {engine_path}")
    return engine


class TensorRTModel:
    """Runs an engine built by `build_engine` (TensorRT 10 name-based API, buffers from cuda-python).

    `model({"clip": array})` returns every output by name as numpy arrays. Checked against the card first (another
    TensorRT version or GPU is an error). Written against the TensorRT 10 documentation; it needs a GPU to run.
    """

    def __init__(self, engine_path: str):
        self.engine = load_engine(engine_path)
        import tensorrt as trt  # pylint: disable=g-import-not-at-top
        from cuda.bindings import runtime as cudart  # pylint: disable=g-import-not-at-top

        self._trt, self._cudart = trt, cudart
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) != mode]

    def _check(self, result, what: str):
        error = result[0] if isinstance(result, tuple) else result
        if int(error) != 0:
            raise RuntimeError(f"CUDA {what} failed: {error}")
        return result[1] if isinstance(result, tuple) and len(result) > 1 else None

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, trt = self._cudart, self._trt
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise ValueError(f"missing engine inputs {sorted(missing)}; it takes {self.inputs}")
        stream = self._check(cudart.cudaStreamCreate(), "stream creation")
        buffers = []
        try:
            for name in self.inputs:
                array = np.ascontiguousarray(
                    inputs[name], trt.nptype(self.engine.get_tensor_dtype(name))
                )
                self.context.set_input_shape(name, array.shape)
                pointer = self._check(cudart.cudaMalloc(array.nbytes), "malloc")
                buffers.append(pointer)
                self._check(
                    cudart.cudaMemcpy(
                        pointer,
                        array.ctypes.data,
                        array.nbytes,
                        cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                    ),
                    "copy to device",
                )
                self.context.set_tensor_address(name, int(pointer))
            results = {}
            for name in self.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                results[name] = np.empty(shape, trt.nptype(self.engine.get_tensor_dtype(name)))
                pointer = self._check(cudart.cudaMalloc(results[name].nbytes), "malloc")
                buffers.append(pointer)
                self.context.set_tensor_address(name, int(pointer))
            if not self.context.execute_async_v3(stream):
                raise RuntimeError("TensorRT execution failed")
            self._check(cudart.cudaStreamSynchronize(stream), "synchronize")
            for name, pointer in zip(self.outputs, buffers[len(self.inputs) :]):
                array = results[name]
                self._check(
                    cudart.cudaMemcpy(
                        array.ctypes.data,
                        pointer,
                        array.nbytes,
                        cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                    ),
                    "copy to host",
                )
            return results
        finally:
            for pointer in buffers:
                cudart.cudaFree(pointer)
            cudart.cudaStreamDestroy(stream)
