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

import json
import os
import sys

import numpy as np
from absl import app, flags

from edge_ssl import library_logs
from export import layout, parity

FLAGS = flags.FLAGS
# The synthetic world a pretraining run of each config size used (edge_ssl.train.data.WORLD_SIZES; export does not
# import training code).
RUN_WORLDS = {"tiny": "tiny", "small": "small", "paper": "base", "base": "base"}
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
# The parity bounds' defaults are parity.DEFAULT_THRESHOLDS (issue 8's), so the two cannot drift apart.
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


def _model_path(model: str) -> str:
    backbone = os.path.join(model, "backbone")
    if os.path.isdir(backbone):
        return backbone
    if os.path.exists(os.path.join(model, "saved_model.pb")):
        return model
    raise app.UsageError(
        f"--model={model!r} is neither a distillation workdir nor a CV-MIM pretraining workdir (with backbone/), "
        "nor a SavedModel"
    )


def _load(path: str):
    """("student", a Student) or ("pose", CV-MIM's backbone), told apart by the model's input."""
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import pose_encoder  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top

    # Importing the model modules registers edge_ssl's layers, which loading rebuilds from their configs.
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise app.UsageError(f"cannot load a Keras model from {path}: {e}") from e
    shape = tuple(model.input_shape[1:])
    if shape == (pose_encoder.NUM_KEYPOINTS, 2):
        return "pose", model
    if len(shape) == 4:
        return "student", student_lib.Student(model)
    if shape == (pose_encoder.kp.NUM_KEYPOINTS, 2):
        raise app.UsageError(
            f"the model at {path} takes raw keypoints [17, 2]: an exported pose encoder (artifact saved_model/); "
            "export the CV-MIM pretraining workdir or its backbone/ instead"
        )
    raise app.UsageError(
        f"the model at {path} takes {list(shape)}: neither a student (clips [T, S, S, 3]) nor CV-MIM's pose "
        f"encoder (normalised poses [{pose_encoder.NUM_KEYPOINTS}, 2])"
    )


def _student_world(frames: int, size: int) -> str:
    """The synthetic world a student of this clip shape was distilled on."""
    return "tiny" if size <= 32 and frames <= 8 else "small"


def _student_frame_rate(frames: int, size: int) -> float | None:
    """--frame_rate, else the synthetic world's rate when the student's data is the world, else None (unknown)."""
    if FLAGS.frame_rate is not None or FLAGS.representative_data != "synthetic":
        return FLAGS.frame_rate
    from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top

    return float(synthetic.get_config(_student_world(frames, size)).fps)


def _synthetic(split: str, count: int, frames: int, size: int):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

    ds = synthetic_world.load(_student_world(frames, size), split, data_dir=FLAGS.data_dir)
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


def _world(model: str) -> str:
    """The synthetic world for pose data: --synthetic_world, else the pretraining run's (run.json), else tiny."""
    if FLAGS.synthetic_world:
        return FLAGS.synthetic_world
    try:
        with open(os.path.join(model, "run.json"), encoding="utf-8") as f:
            return RUN_WORLDS.get(json.load(f).get("size"), "tiny")
    except (OSError, ValueError, AttributeError):
        return "tiny"


def _synthetic_poses(split: str, count: int, world: str):
    """Every frame's pose2d [N, 17, 2] (pixels) of `count` sequences of the synthetic world, and its class."""
    from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

    ds = synthetic_world.load(world, split, data_dir=FLAGS.data_dir)
    poses, labels = [], []
    for example in ds.take(count):
        pose2d = example["pose2d"].numpy()
        poses.append(pose2d)
        labels.append(np.full(len(pose2d), int(example["label"])))
    return np.concatenate(poses), np.concatenate(labels)


def _pose_folder(path: str, count: int):
    """Every frame [N, 17, 2] (confidence dropped) of up to `count` pose files, taken from the classes in turn."""
    from edge_ssl.data import folder_index, pose_folder  # pylint: disable=g-import-not-at-top

    if not os.path.isdir(path):
        raise app.UsageError(f"folder {path!r} does not exist")
    try:
        index = pose_folder.index_pose_folder(path)
    except folder_index.DataFolderError as e:
        raise app.UsageError(f"folder {path!r}: {e}") from e
    if index.skipped:
        print(
            f"{path}: skipped {len(index.skipped)} unreadable entries (first: {index.skipped[0][0]}: "
            f"{index.skipped[0][1]})",
            file=sys.stderr,
        )
    if not index.clips:
        raise app.UsageError(
            f"folder {path!r} has no readable pose file (.npy or .npz, [T, 17, 2|3])"
        )
    # Files are sorted by path, so by class: take the first file of every class, then the second, ...
    seen: dict[int, int] = {}
    order = []
    for clip in index.clips:
        order.append((seen.get(clip.label, 0), clip.label, clip))
        seen[clip.label] = seen.get(clip.label, 0) + 1
    poses, labels = [], []
    for _, label, clip in sorted(order, key=lambda item: item[:2])[:count]:
        pose2d, _ = pose_folder.split_pose(pose_folder.load_pose(clip.path))
        poses.append(pose2d)
        labels.append(np.full(len(pose2d), label))
    return np.concatenate(poses), np.concatenate(labels)


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
    path = _model_path(FLAGS.model)
    kind, model = _load(path)
    if kind == "pose":
        world = _world(FLAGS.model)
        if FLAGS.representative_data == "synthetic":
            representative, _ = _synthetic_poses("pretrain", FLAGS.num_representative, world)
        else:
            representative, _ = _pose_folder(FLAGS.representative_data, FLAGS.num_representative)
        if FLAGS.heldout:
            heldout, labels = _pose_folder(FLAGS.heldout, FLAGS.num_heldout)
        else:
            heldout, labels = _synthetic_poses("heldout", FLAGS.num_heldout, world)
    else:
        frames, size = model.frames, model.input_size
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
    from export import tensorrt, tftrt  # pylint: disable=g-import-not-at-top

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
