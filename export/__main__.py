"""Exports a trained student, or CV-MIM's pose encoder, to the artifact directory a device uses (SavedModel, TFLite,
ONNX, model card).

Example:
  ./run.sh python -m export --model=out/student_small --output_dir=out/artifacts --representative_data=synthetic \\
      --data_dir=/tmp/edge_ssl_tfds --formats=tflite_fp32,tflite_fp16,tflite_int8,onnx
  # CV-MIM's pose encoder, from a pretraining workdir (python -m edge_ssl.cli.pretrain --method=cv_mim ...):
  ./run.sh python -m export --model=out/cv_mim_tiny --output_dir=out/pose_artifacts --data_dir=/tmp/edge_ssl_tfds

`--model` is a distillation workdir or a CV-MIM pretraining workdir (its `backbone/` is used), or the SavedModel of a
student or of CV-MIM's backbone; which one it is is read from the model's input. Calibration data for int8 come from
`--representative_data`: `synthetic` (the synthetic world's pretraining split; for the pose encoder, the world of the
pretraining run's size) or a folder of the user's own videos, or pose files for the pose encoder (class folders, as
for the runner); parity is measured on other data (the world's held-out classes, or the `--heldout` folder). The
pose encoder is exported to take raw COCO-17 keypoints in pixels and normalises them inside. Exit status 1 when the
lint or a parity check fails; nothing is written in place then.
"""

import os
import sys

import numpy as np
from absl import app, flags

from edge_ssl import library_logs
from export import inputs
from export.runtime import layout, parity

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model",
    None,
    "A distillation or CV-MIM pretraining workdir, or the SavedModel of a student or of CV-MIM's backbone.",
)
flags.DEFINE_string("output_dir", None, "The artifact directory to write.")
flags.DEFINE_string(
    "representative_data",
    "synthetic",
    "'synthetic' or a folder of videos (pose files for the pose encoder) for int8 calibration.",
)
flags.DEFINE_string(
    "heldout",
    None,
    "Folder of labelled videos (pose files for the pose encoder) for parity (default: the synthetic held-out "
    "split).",
)
flags.DEFINE_string("data_dir", None, "TFDS data directory of the synthetic world.")
flags.DEFINE_integer(
    "num_representative", 32, "Calibration clips (pose sequences: every frame is used)."
)
flags.DEFINE_integer("num_heldout", 32, "Parity clips (pose sequences: every frame is used).")
flags.DEFINE_enum(
    "synthetic_world",
    None,
    ["tiny", "small", "base"],
    "Pose encoder: the synthetic world's size for --representative_data=synthetic and parity (default: the "
    "pretraining run's, from its run.json; tiny without one).",
)
flags.DEFINE_float(
    "image_extent",
    None,
    "Pose encoder: the larger side, in pixels, of the images the keypoints come from; the int8 model takes "
    "coordinates up to it without clipping (default: the largest coordinate in the calibration poses).",
)
FORMATS = (
    "tflite_fp32",
    "tflite_fp16",
    "tflite_dynamic",
    "tflite_int8",
    "onnx",
    "tensorrt_fp16",
    "tensorrt_int8",
    "tftrt",
)
flags.DEFINE_list(
    "formats",
    ["tflite_fp32", "tflite_fp16", "tflite_int8", "onnx"],
    f"Forms to write: {', '.join(FORMATS)}.",
)
flags.DEFINE_bool(
    "int8_io", False, "int8 inputs and outputs for the int8 model (float32 otherwise)."
)
flags.DEFINE_integer("onnx_batch", 1, "ONNX batch size; 0 for a dynamic batch axis.")
# The parity bounds' defaults are parity.DEFAULT_THRESHOLDS, so the two cannot drift apart.
_BOUNDS = parity.DEFAULT_THRESHOLDS
flags.DEFINE_float(
    "fp32_max_abs",
    _BOUNDS["fp32"].max_abs,
    "fp32 parity: largest allowed absolute difference.",
)
flags.DEFINE_float(
    "fp16_min_cosine", _BOUNDS["fp16"].min_cosine, "fp16 parity: smallest allowed mean cosine."
)
flags.DEFINE_float(
    "dynamic_min_cosine",
    _BOUNDS["dynamic"].min_cosine,
    "Dynamic-range parity: smallest allowed mean cosine.",
)
flags.DEFINE_float(
    "int8_min_cosine", _BOUNDS["int8"].min_cosine, "int8 parity: smallest allowed mean cosine."
)
flags.DEFINE_float(
    "int8_min_agreement",
    _BOUNDS["int8"].min_agreement,
    "int8 parity: smallest allowed top-1 agreement of nearest-prototype decisions (default: reported, not gated).",
)
flags.DEFINE_float(
    "int8_max_accuracy_drop",
    _BOUNDS["int8"].max_accuracy_drop,
    "int8 parity: largest allowed drop of leave-one-out nearest-prototype accuracy on the held-out clips; the "
    "export fails only when the drop's 95% confidence interval lies wholly above it.",
)
flags.DEFINE_bool("allow_lint_errors", False, "Export even when the op lint reports errors.")
flags.DEFINE_float(
    "frame_rate",
    None,
    "Student: frames per second of the clips it was trained on, recorded in the model card for the recognizer "
    "(default: the synthetic world's rate with --representative_data=synthetic, else not recorded).",
)


# What to change on the command line past an `ArtifactError`, by its cause.
FLAG_HINTS = {
    "output_dir": "choose another --output_dir (a new folder, or an artifact directory to replace)",
    "lint": "--allow_lint_errors exports anyway",
    "parity": "the parity bounds are --fp32_max_abs, --fp16_min_cosine, --dynamic_min_cosine, --int8_min_cosine, "
    "--int8_max_accuracy_drop and --int8_min_agreement",
}


def _check_numbers() -> None:
    """Counts and parity bounds a user can get wrong, as usage errors before any model is loaded."""
    for name in ("num_representative", "num_heldout"):
        if getattr(FLAGS, name) < 1:
            raise app.UsageError(f"--{name} must be >= 1, got {getattr(FLAGS, name)}")
    if FLAGS.onnx_batch < 0:
        raise app.UsageError(
            f"--onnx_batch must be >= 1, or 0 for a dynamic batch; got {FLAGS.onnx_batch}"
        )
    if FLAGS.fp32_max_abs < 0:
        raise app.UsageError(f"--fp32_max_abs must be >= 0, got {FLAGS.fp32_max_abs}")
    for name in (
        "fp16_min_cosine",
        "dynamic_min_cosine",
        "int8_min_cosine",
        "int8_min_agreement",
        "int8_max_accuracy_drop",
    ):
        if getattr(FLAGS, name) is not None and not 0.0 <= getattr(FLAGS, name) <= 1.0:
            raise app.UsageError(
                f"--{name} is a fraction in [0, 1], got {getattr(FLAGS, name)} (97% is 0.97)"
            )


def _student_frame_rate(frames: int, size: int) -> float | None:
    """--frame_rate, else the synthetic world's rate when the student's data is the world, else None (unknown)."""
    if FLAGS.frame_rate is not None or FLAGS.representative_data != "synthetic":
        return FLAGS.frame_rate
    return inputs.world_frame_rate(frames, size)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from export import artifacts  # pylint: disable=g-import-not-at-top

    formats = list(FLAGS.formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise app.UsageError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    _check_numbers()
    if FLAGS.frame_rate is not None and FLAGS.frame_rate <= 0:
        raise app.UsageError(f"--frame_rate must be > 0 frames per second, got {FLAGS.frame_rate}")
    try:
        path = inputs.model_path(FLAGS.model)
    except inputs.InputsError as e:
        raise app.UsageError(f"--model: {e}") from e
    try:
        kind, model = inputs.load_model(path)
        data = inputs.export_data(
            kind,
            model,
            FLAGS.model,
            FLAGS.representative_data,
            FLAGS.heldout,
            FLAGS.num_representative,
            FLAGS.num_heldout,
            FLAGS.data_dir,
            world=FLAGS.synthetic_world,
        )
    except inputs.InputsError as e:
        raise app.UsageError(str(e)) from e
    representative, heldout, labels = data.representative, data.heldout, data.labels
    thresholds = {
        "fp32": parity.Thresholds(max_abs=FLAGS.fp32_max_abs),
        "fp16": parity.Thresholds(min_cosine=FLAGS.fp16_min_cosine),
        "dynamic": parity.Thresholds(min_cosine=FLAGS.dynamic_min_cosine),
        "int8": parity.Thresholds(
            min_cosine=FLAGS.int8_min_cosine,
            min_agreement=FLAGS.int8_min_agreement,
            max_accuracy_drop=FLAGS.int8_max_accuracy_drop,
        ),
    }
    options = artifacts.ExportOptions(
        quantizations=tuple(f[len("tflite_") :] for f in formats if f.startswith("tflite_")),
        onnx="onnx" in formats or any(f.startswith("tensorrt_") for f in formats),
        onnx_batch=FLAGS.onnx_batch or None,
        int8_io=FLAGS.int8_io,
        thresholds=thresholds,
        allow_lint_errors=FLAGS.allow_lint_errors,
    )
    # An artifact directory is replaced whole (engines built from its old ONNX included): say so, and what went.
    earlier = (
        sorted(os.listdir(FLAGS.output_dir))
        if layout.ArtifactDir(FLAGS.output_dir).has_card()
        else None
    )
    try:
        if kind == "pose":
            card = artifacts.export_pose_encoder(
                model,
                FLAGS.output_dir,
                representative,
                heldout,
                labels,
                options,
                source=path,
                image_extent=FLAGS.image_extent,
            )
        else:
            card = artifacts.export_student(
                model,
                FLAGS.output_dir,
                list(representative),
                heldout,
                labels,
                options,
                source=path,
                frame_rate=_student_frame_rate(model.frames, model.input_size),
            )
    except (artifacts.ArtifactError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        for cause in sorted(getattr(e, "causes", ())):
            print(f"  {FLAG_HINTS[cause]}", file=sys.stderr)
        return 1
    if earlier is not None:
        print(
            f"replaced the artifact directory written there before (it held {', '.join(earlier)})"
        )
    print(f"wrote {FLAGS.output_dir} ({card['kind']}):")
    for name, entry in card["artifacts"].items():
        figures = entry.get("parity")
        if figures:
            agreement = "-" if figures["agreement"] is None else f"{figures['agreement']:.1%}"
            drop = figures.get("accuracy_drop")
            drop = (
                ""
                if drop is None
                else f"  few-shot accuracy {figures['candidate_accuracy']:.1%} "
                f"(drop {drop:.1%} ± {figures['accuracy_drop_ci95']:.1%})"
            )
            streamed = entry.get("stream_max_abs")
            streamed = "" if streamed is None else f"  streamed vs clip {streamed:.2e}"
            print(
                f"  {name:8s} max abs {figures['max_abs']:.2e}  mean cosine {figures['mean_cosine']:.5f}  "
                f"top-1 agreement {agreement}{drop}{streamed}"
            )
        lint_result = entry.get("lint")
        if lint_result and not all(lint_result["ok"].values()):
            failed = ", ".join(t for t, ok in lint_result["ok"].items() if not ok)
            print(f"  {name:8s} op lint errors allowed on {failed} (see {layout.CARD})")
    return _engines(formats, representative)


def _engines(formats: list[str], representative: np.ndarray) -> int:
    """TensorRT engines and TF-TRT, built after the portable artifacts; 1 when one cannot be built here."""
    from export import tftrt  # pylint: disable=g-import-not-at-top
    from export.runtime import tensorrt  # pylint: disable=g-import-not-at-top

    status = 0
    artifact = layout.ArtifactDir(FLAGS.output_dir)
    for form in formats:
        try:
            if form.startswith("tensorrt_"):
                precision = form[len("tensorrt_") :]
                engine = artifact.engine(precision)
                calibration = None
                if precision == "int8":
                    calibration = [clip[None] for clip in representative]
                tensorrt.build_engine(
                    artifact.onnx,
                    engine,
                    precision,
                    calibration,
                    artifact.calibration_cache,
                )
                print(f"  {form}: {engine}")
                if precision == "fp16" and os.path.exists(artifact.onnx_step):
                    # The recognizer streams frames through the step graph (fp16 only: int8 calibration would
                    # need the states real streams reach, as the TFLite int8 model has).
                    step_engine = artifact.step_engine("fp16")
                    tensorrt.build_engine(
                        artifact.onnx_step, step_engine, "fp16", input_name="frame"
                    )
                    print(f"  {form} (streaming step): {step_engine}")
            elif form == "tftrt":
                tftrt.convert(artifact.saved_model, artifact.tftrt, onnx_path=artifact.onnx)
                print(f"  tftrt: {artifact.tftrt}")
        except (tensorrt.TensorRTUnavailable, tftrt.TFTRTUnavailable) as e:
            print(f"error: {form}: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    library_logs.hide_unless_asked()  # before TensorFlow loads, which `main` does
    flags.mark_flags_as_required(["model", "output_dir"])
    app.run(main)
