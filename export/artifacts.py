"""The artifact directory (DESIGN.md): everything a device needs from a trained student or pose encoder, with its
checks.

`export_student` writes, into a folder named `<output_dir>.partial` that becomes `output_dir` only when every
artifact passed:
- `saved_model/`: the student with `serving_default` (clip -> embedding) and `step` (frame + state) signatures;
- `model_fp32.tflite`, `model_fp16.tflite`, `model_int8.tflite` (and `model_dynamic.tflite` when asked): both
  signatures, int8 calibrated on representative clips and the states their streams reach;
- `model.onnx` (clip graph) and `model_step.onnx` (streaming step), static batch 1 unless asked otherwise;
- `head_trainer.tflite`: a linear head with `train`/`infer`/`save`/`restore` signatures (builtin ops), which the
  few-shot runner trains inside LiteRT on the device;
- `model_card.json`: input spec and preprocessing, embedding size, the streaming state, the source, per artifact its
  parity figures against the Keras model on held-out clips (and the streamed artifact against the whole-clip one),
  the lint result, and the versions of the stack.
`export_pose_encoder` writes the same layout for CV-MIM's pose encoder (one `serving_default` signature,
`keypoints` [B, 17, 2] in pixels -> `embedding`, the normalisation inside; no step graph, no state).

The op lint runs first on the Keras model, then on every converted graph (`export.graph_lint`: Flex and custom ops,
float fallbacks in the int8 model, XNNPACK delegation, TensorRT's ONNX parser), each result in the artifact's card
entry; errors stop the export unless `allow_lint_errors`. An artifact past its parity thresholds stops the export too
(the card of the failed attempt is kept in the `.partial` folder to read).
"""

import dataclasses
import os
import shutil
from collections.abc import Sequence

import numpy as np
import onnx

from edge_ssl import files
from edge_ssl.models import pose_encoder
from edge_ssl.models import student as student_lib
from export import graph_lint, keras_lint, lint_result
from export import onnx as onnx_export
from export import tflite, trainable_head
from export.runtime import head_trainer, layout, litert, onnx_runtime, parity
from export.runtime.layout import ArtifactError

LINT_TARGETS = {
    "fp32": "tflite_builtin",
    "fp16": "tflite_builtin",
    "dynamic": "tflite_builtin",
    "int8": "tflite_int8",
}
# What each converted file is linted for: every .tflite for builtins and XNNPACK, the int8 one for int8 as well.
GRAPH_LINT_TARGETS = {
    "fp32": ("tflite_builtin", "xnnpack"),
    "fp16": ("tflite_builtin", "xnnpack"),
    "dynamic": ("tflite_builtin", "xnnpack"),
    "int8": ("tflite_builtin", "tflite_int8", "xnnpack"),
}


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Which forms to write and what they must pass.

    Attributes:
      quantizations: TFLite forms, from `tflite.QUANTIZATIONS`.
      onnx: write `model.onnx` (and a student's `model_step.onnx`).
      onnx_batch: the ONNX graphs' static batch; None for a dynamic batch axis.
      int8_io: int8 inputs and outputs for the int8 TFLite model (float32 otherwise).
      thresholds: parity thresholds per TFLite form.
      onnx_thresholds: parity thresholds of the ONNX graph.
      stream_tolerance: per form, the largest allowed difference between streamed and whole-clip embeddings
        (students only).
      allow_lint_errors: export although the op lint reports errors, of the Keras model or of a converted graph
        (the card records them).
    """

    quantizations: tuple[str, ...] = ("fp32", "fp16", "int8")
    onnx: bool = True
    onnx_batch: int | None = 1  # None: a dynamic batch axis
    int8_io: bool = False
    thresholds: dict[str, parity.Thresholds] = dataclasses.field(
        default_factory=lambda: dict(parity.DEFAULT_THRESHOLDS)
    )
    onnx_thresholds: parity.Thresholds = parity.Thresholds(max_abs=1e-4)
    stream_tolerance: dict[str, float] = dataclasses.field(
        default_factory=lambda: {
            "fp32": 1e-4,
            "fp16": 1e-2,
            "dynamic": 5e-2,
            "int8": 0.1,
            "onnx": 1e-4,
        }
    )  # max abs difference between an artifact's streamed and whole-clip embeddings
    allow_lint_errors: bool = False


def _versions() -> dict[str, str]:
    import ai_edge_litert  # pylint: disable=g-import-not-at-top
    import onnxruntime  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tf2onnx  # pylint: disable=g-import-not-at-top

    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top

    return {
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
    }


def _check(
    name: str,
    figures: parity.Parity,
    thresholds: parity.Thresholds,
    stream_max_abs: float | None = None,
    stream_tolerance: float | None = None,
) -> dict:
    """An artifact's card entry: its parity figures against the Keras model and, for a streaming model, its
    streamed-vs-whole-clip difference, each against its bound, and whether it passed."""
    failures = figures.failures(thresholds)
    if stream_max_abs is not None and stream_max_abs > stream_tolerance:
        failures.append(f"streamed vs whole clip {stream_max_abs:.3g} > {stream_tolerance}")
    return {
        "parity": figures.to_dict(),
        "thresholds": dataclasses.asdict(thresholds),
        "stream_max_abs": stream_max_abs,
        "failures": failures,
        "passed": not failures,
        "artifact": name,
    }


class _Model:
    """What the export of one kind of model needs to know; `_export` does everything they share.

    Subclasses hold the Keras model(s) and say how to lint, save, calibrate, convert and run them, and what their
    card says about inputs.
    """

    signatures: tuple[str, ...]
    onnx_files: tuple[str, ...]  # the first one is the whole-input graph, `model.onnx`

    def keras_models(self) -> list:
        raise NotImplementedError

    def card_fields(self) -> dict:
        raise NotImplementedError

    @property
    def embedding_dim(self) -> int:
        raise NotImplementedError

    def reference(self, heldout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def save(self, path: str) -> None:
        raise NotImplementedError

    def calibration(self) -> tflite.Representative:
        raise NotImplementedError

    def run_tflite(self, model: litert.TFLiteModel, heldout: np.ndarray):
        """(embeddings [N, D], streamed-vs-whole max abs difference or None)."""
        raise NotImplementedError

    def convert_onnx(self, batch: int | None) -> list[onnx.ModelProto]:
        raise NotImplementedError

    def run_onnx(self, graphs: list[onnx.ModelProto], heldout: np.ndarray):
        """(embeddings [N, D], streamed-vs-whole max abs difference or None)."""
        raise NotImplementedError


class _StudentModel(_Model):
    signatures = litert.SIGNATURES
    onnx_files = (layout.ONNX, layout.ONNX_STEP)

    def __init__(
        self,
        student: student_lib.Student,
        representative: Sequence[np.ndarray],
        frame_rate: float | None,
    ):
        self.student = student
        self.representative = representative
        self.frame_rate = frame_rate

    def keras_models(self):
        return [self.student.model, self.student.step_model]

    def card_fields(self):
        want = tuple(self.student.model.input_shape[1:])
        return {
            "kind": "student",
            "modality": "video",
            "input": {
                "clip": list(want),
                "frame": list(want[1:]),
                "dtype": "float32",
                "layout": "NTHWC",
            },
            "preprocessing": (
                f"RGB in [0, 1] (float32), {want[0]} consecutive frames, each scaled to cover {want[1]}x{want[2]} "
                "(aspect kept) and centre-cropped (edge_ssl.data.decode.model_input); streams feed one frame per "
                "step"
            ),
            # Frames per second of the clips the student learned from (None: not known at export); the recognizer
            # resamples a camera to it.
            "frame_rate": self.frame_rate,
            "embedding_dim": self.embedding_dim,
            "embedding": "L2-normalised float32",
            "state": {k: list(v) for k, v in self.student.state_shapes.items()},
        }

    @property
    def embedding_dim(self):
        return int(self.student.embedding_dim)

    def reference(self, heldout):
        return self.student(heldout).numpy()

    def save(self, path):
        self.student.save(path)

    def calibration(self):
        return tflite.representative_data(self.student, self.representative)

    def run_tflite(self, model, heldout):
        embeddings = model.embed(heldout)
        return embeddings, float(np.max(np.abs(model.stream(heldout[0]) - embeddings[0])))

    def convert_onnx(self, batch):
        return [
            onnx_export.convert_clip(self.student, batch),
            onnx_export.convert_step(self.student, batch),
        ]

    def run_onnx(self, graphs, heldout):
        runner = onnx_runtime.OnnxModel(*graphs)
        embeddings = runner.embed(heldout)
        return embeddings, float(np.max(np.abs(runner.stream(heldout[:1]) - embeddings[:1])))


def _export(
    subject: _Model,
    output_dir: str,
    heldout: np.ndarray,
    labels: np.ndarray | None,
    options: ExportOptions,
    source: str | None,
) -> dict:
    """Lints, saves, converts, lints the converted graphs and checks parity, then moves the directory into place.

    Raises:
      ArtifactError: see `export_student`.
    """
    if os.path.exists(output_dir) and not layout.ArtifactDir(output_dir).has_card():
        raise ArtifactError(
            f"{output_dir} exists and is not an artifact directory", causes=("output_dir",)
        )
    unknown = sorted(set(options.quantizations) - set(tflite.QUANTIZATIONS))
    if unknown:
        raise ArtifactError(
            f"unknown quantization(s) {unknown}; choose from {', '.join(tflite.QUANTIZATIONS)}"
        )

    targets = sorted(
        {LINT_TARGETS[q] for q in options.quantizations} | ({"tensorrt"} if options.onnx else set())
    )
    models = subject.keras_models()
    result = keras_lint.lint_model(models[0], targets)
    for model in models[1:]:
        result = result.merge(keras_lint.lint_model(model, targets))
    if not options.allow_lint_errors and not all(result.ok.values()):
        raise ArtifactError(
            "op lint failed (the allow_lint_errors option exports anyway):\n" + result.report(),
            causes=("lint",),
        )

    partial = output_dir + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    attempt = layout.ArtifactDir(partial)
    reference = subject.reference(heldout)
    card = {
        "format_version": layout.CARD_VERSION,
        **subject.card_fields(),
        "source": source,
        "lint": result.to_dict(),
        "versions": _versions(),
        "artifacts": {},
    }
    graph_lints: list[lint_result.LintResult] = []

    def write_card():
        attempt.write_card(card)

    def add_lint(entry: dict, graph: lint_result.LintResult) -> None:
        # Every converted graph is linted, whatever the Keras-level lint said: it sees what the converter made of
        # custom layers, Lambdas and TensorFlow functions, which the Keras lint cannot.
        entry["lint"] = graph.to_dict()
        graph_lints.append(graph)

    subject.save(attempt.saved_model)
    card["artifacts"]["saved_model"] = {
        "file": layout.SAVED_MODEL,
        "signatures": list(subject.signatures),
    }
    calibration = subject.calibration()
    for quantization in options.quantizations:
        file = layout.tflite_name(quantization)
        try:
            content = tflite.convert(
                attempt.saved_model,
                quantization,
                calibration,
                options.int8_io and quantization == "int8",
                subject.signatures,
            )
        except tflite.ExportError as e:
            write_card()
            raise ArtifactError(str(e)) from e
        with open(attempt.tflite(quantization), "wb") as f:
            f.write(content)
        embeddings, streamed = subject.run_tflite(
            litert.TFLiteModel(content, required=subject.signatures), heldout
        )
        entry = _check(
            file,
            parity.compare(reference, embeddings, labels),
            options.thresholds[quantization],
            streamed,
            options.stream_tolerance[quantization],
        )
        add_lint(entry, graph_lint.lint_tflite(content, GRAPH_LINT_TARGETS[quantization], file))
        card["artifacts"][quantization] = entry
    if options.onnx:
        try:
            graphs = subject.convert_onnx(options.onnx_batch)
        except Exception as e:  # tf2onnx raises many types, with the op it could not convert
            write_card()
            raise ArtifactError(f"ONNX conversion failed: {e}") from e
        for graph, file in zip(graphs, subject.onnx_files):
            onnx.save(graph, os.path.join(partial, file))
        embeddings, streamed = subject.run_onnx(graphs, heldout)
        entry = _check(
            subject.onnx_files[0],
            parity.compare(reference, embeddings, labels),
            options.onnx_thresholds,
            streamed,
            options.stream_tolerance["onnx"],
        )
        if len(graphs) > 1:
            entry["step_file"] = subject.onnx_files[1]
        entry["batch"] = options.onnx_batch
        graph = graph_lint.lint_onnx(graphs[0], name=subject.onnx_files[0])
        for extra, file in zip(graphs[1:], subject.onnx_files[1:]):
            graph = graph.merge(graph_lint.lint_onnx(extra, name=file))
        add_lint(entry, graph)
        card["artifacts"]["onnx"] = entry
    # The few-shot runner trains its linear head inside LiteRT with this model, where TensorFlow may be missing.
    head = trainable_head.build(subject.embedding_dim)
    with open(attempt.head_trainer, "wb") as f:
        f.write(head)
    card["artifacts"]["head_trainer"] = {
        "file": layout.HEAD_TRAINER,
        "max_classes": head_trainer.DEFAULT_MAX_CLASSES,
        "signatures": list(head_trainer.SIGNATURES),
    }
    add_lint(
        card["artifacts"]["head_trainer"],
        graph_lint.lint_tflite(head, ("tflite_builtin",), layout.HEAD_TRAINER),
    )
    write_card()
    problems, causes = [], []
    lint_failed = [graph for graph in graph_lints if not graph.all_ok]
    if lint_failed and not options.allow_lint_errors:
        errors = [
            f"  {graph.model}: {finding.target} {finding.line()}"
            for graph in lint_failed
            for finding in graph.errors()
        ]
        causes.append("lint")
        problems.append(
            "op lint of the converted graphs failed (each artifact's full lint is in the card; the "
            "allow_lint_errors option exports anyway):\n" + "\n".join(errors)
        )
    failed = [
        f"{entry['artifact']}: {'; '.join(entry['failures'])}"
        for entry in card["artifacts"].values()
        if not entry.get("passed", True)
    ]
    if failed:
        causes.append("parity")
        problems.append(
            "parity failed (the bounds are the thresholds option; every artifact's "
            f"figures are in the attempt's {layout.CARD}):\n  " + "\n  ".join(failed)
        )
    if problems:
        raise ArtifactError(
            f"nothing written to {output_dir} (the attempt is in {partial}):\n"
            + "\n".join(problems),
            causes=tuple(causes),
        )
    files.replace_directory(partial, output_dir)
    return card


def export_student(
    student: student_lib.Student,
    output_dir: str,
    representative: Sequence[np.ndarray],
    heldout: np.ndarray,
    labels: np.ndarray | None = None,
    options: ExportOptions = ExportOptions(),
    source: str | None = None,
    frame_rate: float | None = None,
) -> dict:
    """Writes the artifact directory of `student` at `output_dir`; returns the model card.

    Args:
      student: the trained student.
      output_dir: the artifact directory (must not exist yet, or be an earlier artifact directory to replace).
      representative: calibration clips [T, S, S, 3] for int8 (the user's own clips or the synthetic world's).
      heldout: clips [N, T, S, S, 3] the parity figures are measured on (not the representative ones).
      labels: [N] classes of `heldout`, for the top-1 agreement of nearest-prototype classification.
      options: forms and thresholds.
      source: where the student came from (a distillation workdir), recorded in the card.
      frame_rate: frames per second of the clips the student was trained on, recorded in the card (None: unknown).

    Raises:
      ArtifactError: lint errors (of the Keras model, or of a converted graph), a failed conversion, or an artifact
        past its thresholds.
    """
    heldout = np.asarray(heldout, np.float32)
    want = tuple(student.model.input_shape[1:])
    if heldout.ndim != 5 or tuple(heldout.shape[1:]) != want:
        raise ArtifactError(
            f"held-out clips must be [N, {', '.join(map(str, want))}], got {heldout.shape}"
        )
    return _export(
        _StudentModel(student, representative, frame_rate),
        output_dir,
        heldout,
        labels,
        options,
        source,
    )


def pose_calibration(keypoints: np.ndarray, extent: float | None = None) -> np.ndarray:
    """Calibration poses for the pose encoder's int8 model: the representative poses, and each one moved against the
    image's edges.

    The int8 model quantises raw pixel coordinates over the range its calibration covers, and clips the rest; a few
    sequences of poses cover only part of the image. Moving a pose changes nothing after CV-MIM's normalisation, so
    the moved copies widen the input's range (to [0, extent] at least) and no other tensor's.

    Args:
      keypoints: representative poses [N, 17, 2] in pixels.
      extent: the largest coordinate the model should take without clipping (the image's larger side); default: the
        largest coordinate in `keypoints`.

    Returns:
      float32 [3N, 17, 2].
    """
    keypoints = np.asarray(keypoints, np.float32)
    extent = float(np.max(keypoints) if extent is None else extent)
    low = keypoints.min(axis=(1, 2), keepdims=True)
    high = keypoints.max(axis=(1, 2), keepdims=True)
    return np.concatenate([keypoints, keypoints - low, keypoints + (extent - high)])


class _PoseModel(_Model):
    signatures = ("serving_default",)
    onnx_files = (layout.ONNX,)

    def __init__(self, backbone, representative: np.ndarray, image_extent: float | None):
        self.model = pose_encoder.keypoint_embedding_model(backbone)
        self.poses = (
            pose_calibration(representative, image_extent)
            if len(representative)
            else representative
        )

    def keras_models(self):
        return [self.model]

    def card_fields(self):
        fields = {
            "kind": "pose_encoder",
            "modality": "pose",
            "input": {
                "keypoints": [pose_encoder.kp.NUM_KEYPOINTS, 2],
                "dtype": "float32",
                "layout": "NKC",
            },
            "keypoint_order": list(pose_encoder.kp.COCO17),
            "preprocessing": (
                "COCO-17 keypoints (x, y) in image pixels as stored in pose files, the confidence channel dropped; "
                "the model selects CV-MIM's 13 keypoints and normalises them (hip centre, largest torso distance) "
                "itself. A sequence is embedded frame by frame"
            ),
            "embedding_dim": self.embedding_dim,
            "embedding": "L2-normalised float32 (CV-MIM's z_p)",
            "per_frame": True,
        }
        if len(self.poses):
            # Coordinates outside this range are clipped by the int8 model's input quantisation.
            fields["int8_keypoint_range"] = [float(self.poses.min()), float(self.poses.max())]
        return fields

    @property
    def embedding_dim(self):
        return int(self.model.output_shape[-1])

    def reference(self, heldout):
        return self.model(heldout, training=False).numpy()

    def save(self, path):
        pose_encoder.save_keypoint_model(self.model, path)

    def calibration(self):
        poses = self.poses
        if not len(poses):
            return None

        def generate():
            for keypoints in poses:
                yield "serving_default", {"keypoints": keypoints[None]}

        return generate

    def run_tflite(self, model, heldout):
        embeddings = [
            model.run("serving_default", {"keypoints": k[None]})["embedding"] for k in heldout
        ]
        return np.concatenate(embeddings), None

    def convert_onnx(self, batch):
        return [onnx_export.convert_model(self.model, "keypoints", batch)]

    def run_onnx(self, graphs, heldout):
        return onnx_runtime.OnnxModel(graphs[0]).embed(heldout), None


def _keypoints(name: str, array, allow_empty: bool = False) -> np.ndarray:
    array = np.asarray(array, np.float32)
    count = pose_encoder.kp.NUM_KEYPOINTS
    if array.ndim != 3 or array.shape[1:] != (count, 2) or (not allow_empty and not len(array)):
        hint = (
            " (drop the confidence channel: keypoints[..., :2])" if array.shape[-1:] == (3,) else ""
        )
        raise ArtifactError(
            f"{name} must be COCO-17 keypoints [N, {count}, 2] in pixels, got {list(array.shape)}{hint}"
        )
    if not np.all(np.isfinite(array)):
        raise ArtifactError(f"{name} hold NaN or Inf coordinates")
    return array


def export_pose_encoder(
    backbone,
    output_dir: str,
    representative: np.ndarray,
    heldout: np.ndarray,
    labels: np.ndarray | None = None,
    options: ExportOptions = ExportOptions(),
    source: str | None = None,
    image_extent: float | None = None,
) -> dict:
    """Writes the artifact directory of CV-MIM's pose encoder at `output_dir`; returns the model card.

    The exported model takes `keypoints` float32 [B, 17, 2], raw COCO-17 image coordinates in pixels (as pose files
    store them, confidence dropped), does CV-MIM's 13-keypoint selection and normalisation inside (exactly what
    training does to its inputs, `edge_ssl.data.pose.normalize`), and gives `embedding` float32 [B, D], the
    L2-normalised z_p. The directory has the student's layout (`saved_model/` with `serving_default`, the `.tflite`
    forms, `model.onnx`, `head_trainer.tflite`, `model_card.json`), with `"kind": "pose_encoder"`,
    `"modality": "pose"` and `"per_frame": true` in the card and no streaming state; the same lint and parity
    checks stop it.

    Args:
      backbone: CV-MIM's backbone (`pose_encoder.pose_embedding_model`, or the `backbone/` SavedModel of a CV-MIM
        pretraining workdir loaded with Keras): normalised poses [B, 13, 2] -> [B, D].
      output_dir: the artifact directory (must not exist yet, or be an earlier artifact directory to replace).
      representative: calibration poses [N, 17, 2] in pixels for int8 (the user's own or the synthetic world's).
      heldout: poses [N, 17, 2] the parity figures are measured on (not the representative ones).
      labels: [N] classes of `heldout` (a frame has its sequence's class), for the top-1 agreement.
      options: forms and thresholds (`stream_tolerance` does not apply: the model has no state).
      source: where the encoder came from (a pretraining workdir), recorded in the card.
      image_extent: the larger side of the images the keypoints come from, in pixels: the int8 model takes
        coordinates up to it without clipping (default: the largest coordinate in `representative`).

    Raises:
      ArtifactError: a backbone that does not take [B, 13, 2] poses, keypoints of another shape, lint errors, a
        failed conversion, or an artifact past its thresholds.
    """
    shape = tuple(getattr(backbone, "input_shape", ())[1:])
    if shape != (pose_encoder.NUM_KEYPOINTS, 2):
        raise ArtifactError(
            f"the pose encoder's backbone must take normalised poses [B, {pose_encoder.NUM_KEYPOINTS}, 2], "
            f"it takes {list(shape)}"
        )
    heldout = _keypoints("held-out poses", heldout)
    representative = _keypoints("representative poses", representative, allow_empty=True)
    if "int8" in options.quantizations and not len(representative):
        raise ArtifactError("int8 needs representative poses to calibrate on")
    if image_extent is not None and image_extent <= 0:
        raise ArtifactError(f"image_extent must be positive, got {image_extent}")
    return _export(
        _PoseModel(backbone, representative, image_extent),
        output_dir,
        heldout,
        labels,
        options,
        source,
    )
