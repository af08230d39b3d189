"""What an export reads besides the model: the model itself (a student or CV-MIM's pose encoder, told apart by its
input), and the clips or poses it is calibrated on (int8) and checked on (parity).

Calibration and parity data come from the synthetic world (the world a student of that clip shape was distilled on;
for the pose encoder, the world of its pretraining run's size) or from a user's class folders (videos, or pose files
for the pose encoder). `python -m export` maps its flags to these calls; errors are `InputsError`, in this module's
terms (the binary names the flag).
"""

import dataclasses
import json
import os
import sys

import numpy as np

from edge_ssl.data import synthetic


class InputsError(ValueError):
    """The model or the data cannot be read as asked; the message says which and why."""


def model_path(model: str) -> str:
    """The SavedModel to export from `model`: a workdir's `backbone/` (distillation, CV-MIM pretraining) or `model`
    itself when it is a SavedModel."""
    backbone = os.path.join(model, "backbone")
    if os.path.isdir(backbone):
        return backbone
    if os.path.exists(os.path.join(model, "saved_model.pb")):
        return model
    raise InputsError(
        f"{model!r} is neither a distillation workdir nor a CV-MIM pretraining workdir (with backbone/), "
        "nor a SavedModel"
    )


def load_model(path: str):
    """("student", a Student) or ("pose", CV-MIM's backbone), told apart by the model's input."""
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import pose_encoder  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top

    # Importing the model modules registers edge_ssl's layers, which loading rebuilds from their configs.
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise InputsError(f"cannot load a Keras model from {path}: {e}") from e
    shape = tuple(model.input_shape[1:])
    if shape == (pose_encoder.NUM_KEYPOINTS, 2):
        return "pose", model
    if len(shape) == 4:
        return "student", student_lib.Student(model)
    if shape == (pose_encoder.kp.NUM_KEYPOINTS, 2):
        raise InputsError(
            f"the model at {path} takes raw keypoints [17, 2]: an exported pose encoder (artifact saved_model/); "
            "export the CV-MIM pretraining workdir or its backbone/ instead"
        )
    raise InputsError(
        f"the model at {path} takes {list(shape)}: neither a student (clips [T, S, S, 3]) nor CV-MIM's pose "
        f"encoder (normalised poses [{pose_encoder.NUM_KEYPOINTS}, 2])"
    )


def student_world(frames: int, size: int) -> str:
    """The synthetic world a student of this clip shape was distilled on (`tiny` for 32 px and 8 frames or less)."""
    return "tiny" if size <= 32 and frames <= 8 else "small"


def world_frame_rate(frames: int, size: int) -> float:
    """Frames per second of the synthetic world a student of this clip shape was distilled on."""
    return float(synthetic.get_config(student_world(frames, size)).fps)


def run_world(model: str) -> str:
    """The synthetic world of a training workdir's run (its run.json's preset, a distillation's student; `size` in
    runs recorded before those names), `tiny` without one."""
    try:
        with open(os.path.join(model, "run.json"), encoding="utf-8") as f:
            run = json.load(f)
        name = run.get("preset") or run.get("student") or run.get("size")
        return synthetic.CONFIG_WORLDS.get(name, "tiny")
    except (OSError, ValueError, AttributeError):
        return "tiny"


def synthetic_clips(split: str, count: int, frames: int, size: int, data_dir: str | None):
    """`count` clips [N, frames, size, size, 3] of a split of the world a student of that shape was distilled on,
    and their labels."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from edge_ssl import tracing  # pylint: disable=g-import-not-at-top
    from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

    ds = synthetic_world.load(student_world(frames, size), split, data_dir=data_dir)
    ds = ds.map(
        tracing.as_written(
            lambda ex: (tf.image.resize(ex["rgb"][:frames], (size, size)), ex["label"])
        )
    )
    clips, labels = zip(*[(c.numpy(), int(l)) for c, l in ds.take(count)])
    return np.stack(clips), np.array(labels)


def folder_clips(path: str, count: int, frames: int, size: int):
    """Up to `count` centre clips of a folder of labelled videos, and their labels."""
    from edge_ssl.data import video_folder  # pylint: disable=g-import-not-at-top

    if not os.path.isdir(path):
        raise InputsError(f"folder {path!r} does not exist")
    try:
        ds = video_folder.video_dataset(path, clip_len=frames, size=(size, size), mode="center")
        pairs = [(ex["rgb"].numpy(), int(ex["label"])) for ex in ds.take(count)]
    except ValueError as e:
        raise InputsError(f"folder {path!r}: {e}") from e
    if not pairs:
        raise InputsError(f"folder {path!r} has no readable clip")
    clips, labels = zip(*pairs)
    return np.stack(clips), np.array(labels)


def synthetic_poses(split: str, count: int, world: str, data_dir: str | None):
    """Every frame's pose2d [N, 17, 2] (pixels) of `count` sequences of the synthetic world, and its class."""
    from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

    ds = synthetic_world.load(world, split, data_dir=data_dir)
    poses, labels = [], []
    for example in ds.take(count):
        pose2d = example["pose2d"].numpy()
        poses.append(pose2d)
        labels.append(np.full(len(pose2d), int(example["label"])))
    return np.concatenate(poses), np.concatenate(labels)


def folder_poses(path: str, count: int):
    """Every frame [N, 17, 2] (confidence dropped) of up to `count` pose files, taken from the classes in turn, and
    its class; unreadable entries are counted on stderr."""
    from edge_ssl.data import folder_index, pose_folder  # pylint: disable=g-import-not-at-top

    if not os.path.isdir(path):
        raise InputsError(f"folder {path!r} does not exist")
    try:
        index = pose_folder.index_pose_folder(path)
    except folder_index.DataFolderError as e:
        raise InputsError(f"folder {path!r}: {e}") from e
    if index.skipped:
        print(
            f"{path}: skipped {len(index.skipped)} unreadable entries (first: {index.skipped[0][0]}: "
            f"{index.skipped[0][1]})",
            file=sys.stderr,
        )
    if not index.clips:
        raise InputsError(f"folder {path!r} has no readable pose file (.npy or .npz, [T, 17, 2|3])")
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


@dataclasses.dataclass(frozen=True)
class ExportData:
    """Calibration inputs and the labelled parity inputs of one export."""

    representative: np.ndarray
    heldout: np.ndarray
    labels: np.ndarray


def export_data(
    kind: str,
    model,
    source: str,
    representative_data: str,
    heldout: str | None,
    num_representative: int,
    num_heldout: int,
    data_dir: str | None,
    world: str | None = None,
) -> ExportData:
    """The data an export of `model` (`load_model`'s kind and model) calibrates and checks parity on.

    Args:
      kind: "student" or "pose".
      model: the Student, or the pose encoder.
      source: what the user named as the model (a workdir or SavedModel): a pose run's world is read from it.
      representative_data: "synthetic" or a folder (videos; pose files for the pose encoder).
      heldout: a labelled folder for parity; None: the synthetic world's held-out split.
      num_representative: calibration clips (pose sequences: every frame is used).
      num_heldout: parity clips (pose sequences: every frame is used).
      data_dir: the TFDS data directory of the synthetic world.
      world: the pose encoder's synthetic world; None: its run's (`run_world`).
    """
    if kind == "pose":
        world = world or run_world(source)
        if representative_data == "synthetic":
            representative, _ = synthetic_poses("pretrain", num_representative, world, data_dir)
        else:
            representative, _ = folder_poses(representative_data, num_representative)
        if heldout:
            parity_inputs, labels = folder_poses(heldout, num_heldout)
        else:
            parity_inputs, labels = synthetic_poses("heldout", num_heldout, world, data_dir)
        return ExportData(representative, parity_inputs, labels)
    frames, size = model.frames, model.input_size
    if representative_data == "synthetic":
        representative, _ = synthetic_clips("pretrain", num_representative, frames, size, data_dir)
    else:
        representative, _ = folder_clips(representative_data, num_representative, frames, size)
    if heldout:
        parity_inputs, labels = folder_clips(heldout, num_heldout, frames, size)
    else:
        parity_inputs, labels = synthetic_clips("heldout", num_heldout, frames, size, data_dir)
    return ExportData(representative, parity_inputs, labels)
