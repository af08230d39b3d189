"""The artifact directory (DESIGN.md): everything a device needs from a trained student, with its checks.

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
The op lint runs first: errors for a requested target stop the export unless `allow_lint_errors`. An artifact past
its parity thresholds stops the export (the card of the failed attempt is kept in the `.partial` folder to read).
"""

import dataclasses
import json
import os
import shutil
from collections.abc import Sequence

import numpy as np
import onnx

from edge_ssl import files
from edge_ssl.models import student as student_lib
from export import lint
from export import onnx as onnx_export
from export import parity, tflite, trainable_head
from export.card import (  # pylint: disable=unused-import
    CARD,
    CARD_VERSION,
    ArtifactError,
    read_card,
)

LINT_TARGETS = {
    "fp32": "tflite_builtin",
    "fp16": "tflite_builtin",
    "dynamic": "tflite_builtin",
    "int8": "tflite_int8",
}


@dataclasses.dataclass(frozen=True)
class ExportOptions:
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
    stream_max_abs: float,
    stream_tolerance: float,
) -> dict:
    """An artifact's card entry: its parity figures against the Keras model and its streamed-vs-whole-clip
    difference, each against its bound, and whether it passed."""
    failures = figures.failures(thresholds)
    if stream_max_abs > stream_tolerance:
        failures.append(f"streamed vs whole clip {stream_max_abs:.3g} > {stream_tolerance}")
    return {
        "parity": figures.to_dict(),
        "thresholds": dataclasses.asdict(thresholds),
        "stream_max_abs": stream_max_abs,
        "failures": failures,
        "passed": not failures,
        "artifact": name,
    }


def export_student(
    student: student_lib.Student,
    output_dir: str,
    representative: Sequence[np.ndarray],
    heldout: np.ndarray,
    labels: np.ndarray | None = None,
    options: ExportOptions = ExportOptions(),
    source: str | None = None,
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

    Raises:
      ArtifactError: lint errors, a failed conversion, or an artifact past its thresholds.
    """
    heldout = np.asarray(heldout, np.float32)
    want = tuple(student.model.input_shape[1:])
    if heldout.ndim != 5 or tuple(heldout.shape[1:]) != want:
        raise ArtifactError(
            f"held-out clips must be [N, {', '.join(map(str, want))}], got {heldout.shape}"
        )
    if os.path.exists(output_dir) and not os.path.exists(os.path.join(output_dir, CARD)):
        raise ArtifactError(
            f"{output_dir} exists and is not an artifact directory; choose another --output_dir"
        )

    targets = sorted(
        {LINT_TARGETS[q] for q in options.quantizations} | ({"tensorrt"} if options.onnx else set())
    )
    result = lint.lint_model(student.model, targets)
    result = result.merge(lint.lint_model(student.step_model, targets))
    if not options.allow_lint_errors and not all(result.ok.values()):
        raise ArtifactError(
            "op lint failed (use allow_lint_errors to export anyway):\n" + result.report()
        )

    partial = output_dir + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    reference = student(heldout).numpy()
    card = {
        "format_version": CARD_VERSION,
        "kind": "student",
        "modality": "video",
        "input": {
            "clip": list(want),
            "frame": list(want[1:]),
            "dtype": "float32",
            "layout": "NTHWC",
        },
        "preprocessing": (
            f"RGB in [0, 1] (float32), {want[0]} consecutive frames, each resized to {want[1]}x{want[2]}; "
            "streams feed one frame per step"
        ),
        "embedding_dim": int(student.embedding_dim),
        "embedding": "L2-normalised float32",
        "state": {k: list(v) for k, v in student.state_shapes.items()},
        "source": source,
        "lint": result.to_dict(),
        "versions": _versions(),
        "artifacts": {},
    }

    def write_card():
        with open(os.path.join(partial, CARD), "w", encoding="utf-8") as f:
            json.dump(card, f, indent=2)

    student.save(os.path.join(partial, "saved_model"))
    card["artifacts"]["saved_model"] = {
        "file": "saved_model",
        "signatures": list(tflite.SIGNATURES),
    }
    calibration = tflite.representative_data(student, representative)
    for quantization in options.quantizations:
        file = tflite.FILE_NAMES[quantization]
        try:
            content = tflite.convert(
                os.path.join(partial, "saved_model"),
                quantization,
                calibration,
                options.int8_io and quantization == "int8",
            )
        except tflite.ExportError as e:
            write_card()
            raise ArtifactError(str(e)) from e
        with open(os.path.join(partial, file), "wb") as f:
            f.write(content)
        model = tflite.TFLiteModel(content)
        embeddings = model.embed(heldout)
        card["artifacts"][quantization] = _check(
            file,
            parity.compare(reference, embeddings, labels),
            options.thresholds[quantization],
            float(np.max(np.abs(model.stream(heldout[0]) - embeddings[0]))),
            options.stream_tolerance[quantization],
        )
    if options.onnx:
        try:
            clip = onnx_export.convert_clip(student, options.onnx_batch)
            step = onnx_export.convert_step(student, options.onnx_batch)
        except Exception as e:  # tf2onnx raises many types, with the op it could not convert
            write_card()
            raise ArtifactError(f"ONNX conversion failed: {e}") from e
        onnx.save(clip, os.path.join(partial, "model.onnx"))
        onnx.save(step, os.path.join(partial, "model_step.onnx"))
        runner = onnx_export.OnnxModel(clip, step)
        embeddings = runner.embed(heldout)
        entry = _check(
            "model.onnx",
            parity.compare(reference, embeddings, labels),
            options.onnx_thresholds,
            float(np.max(np.abs(runner.stream(heldout[:1]) - embeddings[:1]))),
            options.stream_tolerance["onnx"],
        )
        card["artifacts"]["onnx"] = {
            **entry,
            "step_file": "model_step.onnx",
            "batch": options.onnx_batch,
        }
    # The few-shot runner trains its linear head inside LiteRT with this model, where TensorFlow may be missing.
    with open(os.path.join(partial, trainable_head.FILE_NAME), "wb") as f:
        f.write(trainable_head.build(int(student.embedding_dim)))
    card["artifacts"]["head_trainer"] = {
        "file": trainable_head.FILE_NAME,
        "max_classes": trainable_head.DEFAULT_MAX_CLASSES,
        "signatures": list(trainable_head.SIGNATURES),
    }
    write_card()
    failed = [
        f"{entry['artifact']}: {'; '.join(entry['failures'])}"
        for entry in card["artifacts"].values()
        if not entry.get("passed", True)
    ]
    if failed:
        raise ArtifactError(
            f"parity failed, nothing written to {output_dir} (the attempt is in {partial}):\n  "
            + "\n  ".join(failed)
        )
    files.replace_directory(partial, output_dir)
    return card
