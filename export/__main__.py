"""Exports a trained student to the artifact directory a device uses (SavedModel, TFLite, ONNX, model card).

Example:
  ./run.sh python -m export --model=out/student_small --output_dir=out/artifacts --representative_data=synthetic \\
      --data_dir=/tmp/edge_ssl_tfds --formats=tflite_fp32,tflite_fp16,tflite_int8,onnx

`--model` is a distillation workdir (its `backbone/` is used) or a student SavedModel. Calibration clips for int8 come
from `--representative_data`: `synthetic` (the synthetic world's pretraining split) or a folder of the user's own videos
(class folders, as for the runner); parity is measured on other clips (the world's held-out classes, or
`--heldout` folder). Exit status 1 when the lint or a parity check fails; nothing is written in place then.
"""

import os
import sys

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A distillation workdir or a student SavedModel.")
flags.DEFINE_string("output_dir", None, "The artifact directory to write.")
flags.DEFINE_string(
    "representative_data", "synthetic", "'synthetic' or a folder of videos for int8 calibration."
)
flags.DEFINE_string(
    "heldout", None, "Folder of labelled videos for parity (default: the synthetic held-out split)."
)
flags.DEFINE_string("data_dir", None, "TFDS data directory of the synthetic world.")
flags.DEFINE_integer("num_representative", 32, "Calibration clips.")
flags.DEFINE_integer("num_heldout", 32, "Parity clips.")
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
flags.DEFINE_float("fp32_max_abs", 1e-4, "fp32 parity: largest allowed absolute difference.")
flags.DEFINE_float("fp16_min_cosine", 0.999, "fp16 parity: smallest allowed mean cosine.")
flags.DEFINE_float("int8_min_cosine", 0.98, "int8 parity: smallest allowed mean cosine.")
flags.DEFINE_float("int8_min_agreement", 0.97, "int8 parity: smallest allowed top-1 agreement.")
flags.DEFINE_bool("allow_lint_errors", False, "Export even when the op lint reports errors.")


def _student_path(model: str) -> str:
    backbone = os.path.join(model, "backbone")
    if os.path.isdir(backbone):
        return backbone
    if os.path.exists(os.path.join(model, "saved_model.pb")):
        return model
    raise app.UsageError(
        f"--model={model!r} is neither a distillation workdir (with backbone/) nor a SavedModel"
    )


def _synthetic(split: str, count: int, frames: int, size: int):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

    world = "tiny" if size <= 32 and frames <= 8 else "small"
    ds = synthetic_world.load(world, split, data_dir=FLAGS.data_dir)
    ds = ds.map(lambda ex: (tf.image.resize(ex["rgb"][:frames], (size, size)), ex["label"]))
    clips, labels = zip(*[(c.numpy(), int(l)) for c, l in ds.take(count)])
    return np.stack(clips), np.array(labels)


def _folder(path: str, count: int, frames: int, size: int):
    from edge_ssl.data import video_folder  # pylint: disable=g-import-not-at-top

    if not os.path.isdir(path):
        raise app.UsageError(f"folder {path!r} does not exist")
    try:
        ds = video_folder.video_dataset(path, clip_len=frames, size=(size, size), mode="center")
        pairs = [(ex["rgb"].numpy(), int(ex["label"])) for ex in ds.take(count)]
    except ValueError as e:
        raise app.UsageError(f"folder {path!r}: {e}") from e
    if not pairs:
        raise app.UsageError(f"folder {path!r} has no readable clip")
    clips, labels = zip(*pairs)
    return np.stack(clips), np.array(labels)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top
    from export import artifacts, parity  # pylint: disable=g-import-not-at-top

    path = _student_path(FLAGS.model)
    student = student_lib.load_student(path)
    frames, size = student.frames, student.input_size
    formats = list(FLAGS.formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise app.UsageError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    if FLAGS.representative_data == "synthetic":
        representative, _ = _synthetic("pretrain", FLAGS.num_representative, frames, size)
    else:
        representative, _ = _folder(
            FLAGS.representative_data, FLAGS.num_representative, frames, size
        )
    if FLAGS.heldout:
        heldout, labels = _folder(FLAGS.heldout, FLAGS.num_heldout, frames, size)
    else:
        heldout, labels = _synthetic("heldout", FLAGS.num_heldout, frames, size)
    thresholds = dict(parity.DEFAULT_THRESHOLDS)
    thresholds["fp32"] = parity.Thresholds(max_abs=FLAGS.fp32_max_abs)
    thresholds["fp16"] = parity.Thresholds(min_cosine=FLAGS.fp16_min_cosine)
    thresholds["int8"] = parity.Thresholds(
        min_cosine=FLAGS.int8_min_cosine, min_agreement=FLAGS.int8_min_agreement
    )
    options = artifacts.ExportOptions(
        quantizations=tuple(f[len("tflite_") :] for f in formats if f.startswith("tflite_")),
        onnx="onnx" in formats or any(f.startswith("tensorrt_") for f in formats),
        onnx_batch=FLAGS.onnx_batch or None,
        int8_io=FLAGS.int8_io,
        thresholds=thresholds,
        allow_lint_errors=FLAGS.allow_lint_errors,
    )
    try:
        card = artifacts.export_student(
            student, FLAGS.output_dir, list(representative), heldout, labels, options, source=path
        )
    except (artifacts.ArtifactError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {FLAGS.output_dir}:")
    for name, entry in card["artifacts"].items():
        figures = entry.get("parity")
        if figures:
            agreement = "-" if figures["agreement"] is None else f"{figures['agreement']:.1%}"
            print(
                f"  {name:8s} max abs {figures['max_abs']:.2e}  mean cosine {figures['mean_cosine']:.5f}  "
                f"top-1 agreement {agreement}  streamed vs clip {entry['stream_max_abs']:.2e}"
            )
    return _engines(formats, representative)


def _engines(formats: list[str], representative: np.ndarray) -> int:
    """TensorRT engines and TF-TRT, built after the portable artifacts; 1 when one cannot be built here."""
    from export import tensorrt, tftrt  # pylint: disable=g-import-not-at-top

    status = 0
    onnx_path = os.path.join(FLAGS.output_dir, "model.onnx")
    for form in formats:
        try:
            if form.startswith("tensorrt_"):
                precision = form[len("tensorrt_") :]
                engine = os.path.join(FLAGS.output_dir, f"model_{precision}.plan")
                calibration = None
                if precision == "int8":
                    calibration = [clip[None] for clip in representative]
                tensorrt.build_engine(
                    onnx_path,
                    engine,
                    precision,
                    calibration,
                    os.path.join(FLAGS.output_dir, "calibration.cache"),
                )
                print(f"  {form}: {engine}")
            elif form == "tftrt":
                tftrt.convert(
                    os.path.join(FLAGS.output_dir, "saved_model"),
                    os.path.join(FLAGS.output_dir, "tftrt"),
                    onnx_path=onnx_path,
                )
                print(f"  tftrt: {os.path.join(FLAGS.output_dir, 'tftrt')}")
        except (tensorrt.TensorRTUnavailable, tftrt.TFTRTUnavailable) as e:
            print(f"error: {form}: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    flags.mark_flags_as_required(["model", "output_dir"])
    app.run(main)
