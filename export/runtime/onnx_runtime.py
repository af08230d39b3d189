"""ONNX Runtime: a student's ONNX graphs (`export.onnx`) run on the CPU or a GPU provider, no TensorFlow.

`OnnxModel` holds a clip graph (`clip` -> `embedding`) and a streaming step graph (`frame` and the state ->
`embedding` and the new state as `next_<name>`), either of which may be absent.
"""

from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort

from export.runtime import ModelError

NEXT = "next_"


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
            raise ModelError("no clip graph loaded")
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
            raise ModelError("no step graph loaded")
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
