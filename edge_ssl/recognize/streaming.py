"""The runner's classifier, streamed one frame at a time with explicit state, on LiteRT, ONNX Runtime or TensorRT.

`open_classifier(path, engine, precision, num_threads)` reads `classifier.tflite` (what `python -m
edge_ssl.cli.finetune` writes: the exported student with the head appended, class names and `classifier_info` in
its metadata, see `export.runtime.classifier`), checks that it can stream (a `step` signature with `probabilities`,
labels, a video model), and returns a `StreamingClassifier` whose `step(frame)` runs the step signature once on one
preprocessed frame, carries the state, and gives the class probabilities of the window of frames streamed so far.

Which form runs:
- `litert`: the classifier file itself, or, when the head sits on the artifact's own embedding model (the `linear`
  and `prototype` heads), the same head put on the artifact's other `.tflite` forms
  (`export.runtime.classifier.read_head` then `attach_head`, in memory): so `--precision` can choose fp32, fp16 or int8 whatever form the runner used.
  A `finetune` head changed the student, so only the classifier's own form exists then.
- `onnxruntime`: the artifact's `model_step.onnx` with the head applied in NumPy (fp32).
- `tensorrt`: the artifact's `model_step_fp16.plan`, built on the device (`python -m export --formats=tensorrt_fp16`),
  with the head in NumPy.
- `auto` engine: LiteRT when installed, else ONNX Runtime. `auto` precision: the fastest of the available forms on
  this machine, timed once on the step signature and cached (`export.runtime.precision`).

The artifact directory is the one the runner recorded in `classifier_info` (or `artifact_dir` when given).

The model's frame rate (what the recognizer resamples a camera to) is, in order: the classifier's `frame_rate`
(the runner records the training clips' rate), the artifact card's (the rate the student learned at), else an
assumed T / 2 s (T frames spanning two seconds, as in the synthetic world), which `frame_rate_note` says.

No TensorFlow here.
"""

import dataclasses
import importlib.util
import os
from collections.abc import Callable

import numpy as np

from export.runtime import ModelError
from export.runtime import classifier as classifier_lib
from export.runtime import layout, litert
from export.runtime import precision as precision_lib

ENGINES = ("auto", "litert", "onnxruntime", "tensorrt")
PRECISIONS = ("auto", "fp32", "fp16", "int8")
# When neither the classifier nor the card knows the frame rate: a window of T frames is taken to span this many
# seconds (every size of the synthetic world does).
ASSUMED_WINDOW_SECONDS = 2.0
_RUNNER = "python -m edge_ssl.cli.finetune --model=ARTIFACT_DIR --train_dir=LABELED_CLIPS --output_dir=OUT"


class ClassifierError(ValueError):
    """The file cannot be streamed as a classifier here; the message says what it is and what to do."""


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class _LiteRTStep:
    """The `step` signature of a classifier `.tflite` (bytes), its state kept here."""

    def __init__(self, content: bytes, num_threads: int | None):
        self.model = litert.TFLiteModel(content, num_threads=num_threads, required=("step",))
        self.state_names = [k for k in self.model.input_details("step") if k != "frame"]
        self.reset()

    def reset(self) -> None:
        self.state = self.model.initial_state()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        outputs = self.model.run("step", {"frame": frame[None], **self.state})
        self.state = {k: outputs[k] for k in self.state_names}
        return outputs["probabilities"][0]


class _HeadStep:
    """A step graph whose outputs are `embedding` and `next_<state>` (ONNX, TensorRT), with the head in NumPy."""

    def __init__(self, run: Callable, state: dict, weights: np.ndarray, bias: np.ndarray):
        self._run, self._zero = run, state
        self.weights, self.bias = weights, bias
        self.reset()

    def reset(self) -> None:
        self.state = {k: np.zeros_like(v) for k, v in self._zero.items()}

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        outputs = self._run({"frame": frame[None].astype(np.float32), **self.state})
        self.state = {k: outputs["next_" + k] for k in self.state}
        return _softmax(outputs["embedding"][0] @ self.weights + self.bias)


def _onnx_step(path: str, weights, bias, num_threads):
    # ONNX Runtime only, so a LiteRT run never imports it.
    from export.runtime import onnx_runtime  # pylint: disable=g-import-not-at-top

    model = onnx_runtime.OnnxModel(step=path, threads=num_threads)
    names = [node.name for node in model.step_session.get_outputs()]

    def run(feed):
        return dict(zip(names, model.step_session.run(names, feed)))

    return _HeadStep(run, model.initial_state(1), weights, bias)


def _tensorrt_step(path: str, weights, bias, state_shapes: dict):
    from export.runtime import tensorrt  # pylint: disable=g-import-not-at-top  (GPU only)

    model = tensorrt.TensorRTModel(path)
    state = {k: np.zeros([1, *shape], np.float32) for k, shape in state_shapes.items()}
    return _HeadStep(model, state, weights, bias)


@dataclasses.dataclass
class StreamingClassifier:
    """A classifier streamed frame by frame.

    Attributes:
      path: the classifier file.
      labels: class names, one per probability.
      frames: T, the window the model describes after T frames (None when unknown).
      size: (height, width) of the model's frames.
      frame_rate: frames per second the model expects.
      frame_rate_note: where `frame_rate` comes from.
      engine: litert, onnxruntime or tensorrt.
      precision: fp32, fp16 or int8.
      files: what runs (file names).
      choice: why this precision (auto), or None.
      movement: how much moved in the windows the runner fitted the head on
        (`edge_ssl.data.motion.movement_statistics`), or None when the classifier does not say.
    """

    path: str
    labels: list[str]
    frames: int | None
    size: tuple[int, int]
    frame_rate: float
    frame_rate_note: str
    engine: str
    precision: str
    files: list[str]
    choice: str | None
    movement: dict | None = None
    _step: object = dataclasses.field(repr=False, default=None)

    def reset(self) -> None:
        """The zero state: the next frame starts a new stream."""
        self._step.reset()

    def step(self, frame: np.ndarray) -> np.ndarray:
        """Class probabilities float32 [C] after one more frame (preprocessed: float32 [S, S, 3] in [0, 1])."""
        return np.asarray(self._step(np.asarray(frame, np.float32)), np.float32)


def _resolve(path: str) -> str:
    if os.path.isdir(path):
        inside = layout.ClassifierDir(path).classifier
        if os.path.exists(inside):
            return inside
        if layout.ArtifactDir(path).has_card():
            raise ClassifierError(
                f"{path} is an artifact directory (an embedding model), not a classifier: run the few-shot runner "
                f"on it first ({_RUNNER}), then pass --classifier=OUT/{layout.CLASSIFIER}"
            )
        raise ClassifierError(
            f"{path} is a folder without {layout.CLASSIFIER} (the runner's output)"
        )
    if not os.path.exists(path):
        raise ClassifierError(
            f"--classifier={path} does not exist (the runner writes OUT/{layout.CLASSIFIER})"
        )
    return path


def _artifact_card(artifact_dir: str | None) -> dict | None:
    if not artifact_dir:
        return None
    try:
        return layout.ArtifactDir(artifact_dir).read_card()
    except layout.ArtifactError:
        return None


def _check_classifier(path: str, content: bytes, num_threads) -> litert.TFLiteModel:
    try:
        model = litert.TFLiteModel(content, num_threads=num_threads, required=())
    except ModelError as e:
        raise ClassifierError(f"{path} is not a readable TFLite model ({e})") from e
    outputs = {name for sig in model.signatures for name in model.output_names(sig)}
    if "probabilities" not in outputs:
        what = (
            "an embedding model (no class probabilities)"
            if "embedding" in outputs
            else "not a classifier"
        )
        raise ClassifierError(
            f"{path} is {what}: run the few-shot runner on its artifact directory first ({_RUNNER}), then pass "
            f"--classifier=OUT/{layout.CLASSIFIER}"
        )
    if "step" not in model.signatures:
        raise ClassifierError(
            f"{path} has no streaming `step` signature (it has {', '.join(sorted(model.signatures))}): the recognizer "
            "feeds one frame at a time with explicit state. Classifiers of pose models and of students exported "
            "without their step cannot stream; export the student again and rerun the runner"
        )
    return model


def _frame_rate(info: dict, card: dict | None, frames: int | None) -> tuple[float, str]:
    if info.get("frame_rate"):
        return (
            float(info["frame_rate"]),
            f"from the classifier ({info.get('frame_rate_source') or 'runner'})",
        )
    if card and card.get("frame_rate"):
        return float(card["frame_rate"]), "from the artifact's model card"
    window = frames or 8
    return (
        window / ASSUMED_WINDOW_SECONDS,
        f"assumed: neither the classifier nor its model card records one, so the model's {window} frames are taken "
        f"to span {ASSUMED_WINDOW_SECONDS:g} s",
    )


def open_classifier(
    path: str,
    engine: str = "auto",
    precision: str = "auto",
    num_threads: int | None = None,
    artifact_dir: str | None = None,
) -> StreamingClassifier:
    """Loads a classifier to stream.

    Args:
      path: `classifier.tflite`, or the runner's output folder holding it.
      engine: one of ENGINES.
      precision: one of PRECISIONS (see the module docstring for what each engine has).
      num_threads: CPU threads of LiteRT / ONNX Runtime (their default when None).
      artifact_dir: the artifact directory the classifier was made from (default: the one it records).

    Raises:
      ClassifierError: a missing file, an embedding model or artifact directory instead of a classifier, no `step`
        signature, no labels, a pose classifier, an engine or precision that is not available here.
    """
    if engine not in ENGINES:
        raise ClassifierError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if precision not in PRECISIONS:
        raise ClassifierError(
            f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    if num_threads is not None and num_threads < 1:
        raise ClassifierError(f"--num_threads must be >= 1, got {num_threads}")
    path = _resolve(path)
    with open(path, "rb") as f:
        content = f.read()
    model = _check_classifier(path, content, num_threads)
    info = classifier_lib.read_info(content) or {}
    if info.get("modality") == "pose":
        raise ClassifierError(f"{path} classifies poses; the recognizer reads video")
    labels = classifier_lib.read_labels(content)
    if not labels:
        labels = layout.ClassifierDir(os.path.dirname(path)).read_labels()
    frame_detail = model.input_details("step")["frame"]
    classes = int(
        model.run(
            "step", {"frame": np.zeros(frame_detail["shape"], np.float32), **model.initial_state()}
        )["probabilities"].shape[-1]
    )
    if not labels:
        raise ClassifierError(
            f"{path} has no labels (none in its metadata, no {layout.LABELS} beside it): the recognizer cannot name its "
            f"{classes} classes; rerun the runner, which stores them"
        )
    if len(labels) != classes:
        raise ClassifierError(f"{path} has {len(labels)} labels for {classes} classes")
    size = (int(frame_detail["shape"][1]), int(frame_detail["shape"][2]))
    artifact_dir = artifact_dir or info.get("artifact_dir")
    card = _artifact_card(artifact_dir)
    clip = (info.get("input") or {}).get("clip") or ((card or {}).get("input") or {}).get("clip")
    frames = int(clip[0]) if clip else None
    frame_rate, note = _frame_rate(info, card, frames)

    if engine == "auto":
        engine = "litert" if importlib.util.find_spec("ai_edge_litert") else "onnxruntime"
    # The head on the artifact's embedding model can be put on its other forms; a fine-tuned student cannot.
    same_backbone = (
        card is not None
        and info.get("backbone") == "artifact"
        and int(card.get("embedding_dim", -1)) == len(classifier_lib.read_head(content)[0])
    )
    if engine == "litert":
        candidates = _litert_forms(
            path, content, info, artifact_dir if same_backbone else None, num_threads
        )
    elif engine == "onnxruntime":
        candidates = _onnx_forms(
            path, content, artifact_dir if same_backbone else None, num_threads
        )
    else:
        candidates = _tensorrt_forms(path, content, artifact_dir if same_backbone else None, card)
    if precision != "auto":
        if precision not in candidates:
            hint = (
                ""
                if same_backbone
                else " (the artifact's other forms are not usable: its head was fine-tuned with the student, or the "
                "artifact directory it came from is not here; --artifact_dir names it)"
            )
            raise ClassifierError(
                f"--precision={precision} is not available on {engine} for {path}: it has "
                f"{', '.join(sorted(candidates))}{hint}"
            )
        candidates = {precision: candidates[precision]}
    if len(candidates) > 1:
        frame = np.zeros([*size, 3], np.float32)

        def timed(make):
            def load():
                step = make()
                return lambda: step(frame)

            return load

        choice = precision_lib.choose(
            {p: timed(make) for p, (_, make) in candidates.items()},
            {p: paths for p, (paths, _) in candidates.items()},
            f"{engine} step ({num_threads or 'default'} threads)",
            os.path.dirname(os.path.abspath(path)),
        )
        chosen, reason = choice.precision, choice.reason
    else:
        (chosen,) = candidates
        reason = None
    paths, make = candidates[chosen]
    return StreamingClassifier(
        path=path,
        labels=list(labels),
        frames=frames,
        size=size,
        frame_rate=frame_rate,
        frame_rate_note=note,
        engine=engine,
        precision=chosen,
        files=[os.path.basename(p) for p in paths],
        choice=reason,
        movement=info.get("movement"),
        _step=make(),
    )


def _own_precision(content: bytes, info: dict) -> str:
    if info.get("precision") in ("fp32", "fp16", "int8"):
        return info["precision"]
    # An older classifier without its info: an int8 model has int8 tensors.
    from ai_edge_litert import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
    from ai_edge_litert.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    types = {tensor.type for subgraph in model.subgraphs for tensor in subgraph.tensors}
    return "int8" if schema.TensorType.INT8 in types else "fp32"


def _litert_forms(path, content, info, artifact_dir, num_threads) -> dict:
    """precision -> (files, factory of a step) for LiteRT."""
    forms = {_own_precision(content, info): ([path], lambda: _LiteRTStep(content, num_threads))}
    if artifact_dir:
        weights, bias = classifier_lib.read_head(content)
        labels = classifier_lib.read_labels(content)
        shipped = layout.ArtifactDir(artifact_dir).tflite_files(("int8", "fp16", "fp32"))
        for p, source in shipped.items():
            if p in forms:
                continue

            def make(source=source):
                with open(source, "rb") as f:
                    attached = classifier_lib.attach_head(f.read(), weights, bias, labels)
                return _LiteRTStep(attached, num_threads)

            # The classifier file is part of the identity: its head goes on the form.
            forms[p] = ([source, path], make)
    return forms


def _onnx_forms(path, content, artifact_dir, num_threads) -> dict:
    if not importlib.util.find_spec("onnxruntime"):
        raise ClassifierError("--engine=onnxruntime needs onnxruntime (pip install onnxruntime)")
    step = layout.ArtifactDir(artifact_dir).onnx_step if artifact_dir else None
    if not step or not os.path.exists(step):
        missing = (
            f"{artifact_dir} has none"
            if artifact_dir
            else "the artifact directory the classifier came from is not here (or its head was fine-tuned with "
            "the student)"
        )
        raise ClassifierError(
            f"--engine=onnxruntime streams the artifact's {layout.ONNX_STEP} with the classifier's head, and "
            f"{missing}; use --engine=litert, or name the artifact directory with --artifact_dir"
        )
    weights, bias = classifier_lib.read_head(content)
    return {"fp32": ([step, path], lambda: _onnx_step(step, weights, bias, num_threads))}


def _tensorrt_forms(path, content, artifact_dir, card) -> dict:
    if not importlib.util.find_spec("tensorrt"):
        raise ClassifierError(
            "--engine=tensorrt needs TensorRT 10 (JetPack ships it; pip wheels cannot be installed from PyPI alone)"
        )
    plan = layout.ArtifactDir(artifact_dir).step_engine("fp16") if artifact_dir else None
    if not plan or not os.path.exists(plan):
        step_engine = layout.step_engine_name("fp16")
        raise ClassifierError(
            f"--engine=tensorrt streams a TensorRT engine of the artifact's step graph, {step_engine}, built "
            "on this device: python -m export --model=... --output_dir=ARTIFACT_DIR --formats=tensorrt_fp16 "
            f"(or trtexec --onnx=ARTIFACT_DIR/{layout.ONNX_STEP} --saveEngine=ARTIFACT_DIR/{step_engine} --fp16)"
        )
    weights, bias = classifier_lib.read_head(content)
    shapes = (card or {}).get("state") or {}
    return {"fp16": ([plan, path], lambda: _tensorrt_step(plan, weights, bias, shapes))}
