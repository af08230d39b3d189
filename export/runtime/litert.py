"""LiteRT: a `.tflite` model run with `ai_edge_litert` (never `tf.lite.Interpreter`), no TensorFlow.

`TFLiteModel` runs whole clips through `serving_default` and streams through `step` (a student's two signatures,
see `export.tflite`), (de)quantizing int8 inputs and outputs, so a device with LiteRT alone runs artifacts.
"""

import numpy as np
from ai_edge_litert import interpreter as litert

from export.runtime import ModelError

SIGNATURES = ("serving_default", "step")


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
            raise ModelError(f"{where} is not a readable TFLite model: {e}") from e
        self.signatures = self.interpreter.get_signature_list()
        missing = set(required) - set(self.signatures)
        if missing:
            raise ModelError(f"the model lacks the {sorted(missing)} signature(s)")
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
