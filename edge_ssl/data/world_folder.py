"""The synthetic world written out as a user's folders, so the runner (and a person) can use it like their own data.

`write_world(config, split, root)` (what `python -m edge_ssl.cli.world` runs) writes one split as
`ROOT/<action>/p<performance>_view<camera>.mp4` (or, for poses, `.npy` holding the 2D keypoints in pixels, with
`ROOT/views.csv` giving each clip's camera), `ROOT/world.json` (size, split, seed, settings, counts) and optionally a
contact sheet of frames per action. `write_folders(examples, root)` writes examples as `ROOT/video/...` and
`ROOT/pose/...` side by side, for the demo. The camera in a name is what the runner's cross-view protocol reads.
Files are written beside their final name and renamed, so an interrupted write never leaves a clip that looks whole,
and `world.json` is written last, so a folder without it is not a finished world.
"""

import csv
import dataclasses
import io
import math
import os
import shutil
import tempfile
from collections.abc import Iterable

import cv2
import numpy as np

from edge_ssl import files
from edge_ssl.data import synthetic
from edge_ssl.data.folder_index import VIEWS_CSV, WORLD_JSON

MODALITIES = ("video", "pose")


def _write_mp4(path: str, rgb: np.ndarray, fps: float) -> None:
    frames = np.asarray(rgb)
    if frames.dtype != np.uint8:
        frames = np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)
    height, width = frames.shape[1:3]
    # OpenCV picks the container from the extension, so the temporary name ends in .mp4.
    with files.atomic_path(path, suffix=".partial.mp4") as tmp:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {path} (mp4v)")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()


def _clip_name(example) -> str:
    return f"p{int(example['performance_id']):04d}_view{int(example['camera_id'])}"


def _write_npy(path: str, array: np.ndarray) -> None:
    with files.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array, np.float32), allow_pickle=False)


def write_folders(
    examples: Iterable[dict],
    root: str,
    per_class: int | None = None,
    pose: bool = False,
    fps: float = 8.0,
) -> dict[str, int]:
    """Writes examples of the synthetic world (numpy contract dicts) as video (and pose) class folders.

    Args:
      examples: dicts with `rgb` [T, H, W, 3] (float in [0, 1] or uint8), `label`, `performance_id`, `camera_id`
        and, for `pose`, `pose2d` [T, 17, 2].
      root: the output folder; `root/video` (and `root/pose`) are written.
      per_class: the most examples written per action (all when None).
      pose: also write the pose folder.
      fps: frame rate recorded in the videos.

    Returns:
      Examples written per action name.
    """
    counts: dict[str, int] = {}
    for example in examples:
        action = synthetic.ACTIONS[int(example["label"])]
        if per_class is not None and counts.get(action, 0) >= per_class:
            continue
        name = _clip_name(example)
        _write_mp4(os.path.join(root, "video", action, name + ".mp4"), example["rgb"], fps)
        if pose:
            _write_npy(os.path.join(root, "pose", action, name + ".npy"), example["pose2d"])
        counts[action] = counts.get(action, 0) + 1
    return counts


def check_output_dir(root: str) -> None:
    """Refuses an output folder that is a file or already holds anything (a world is written into a new folder).

    Raises:
      ValueError: naming the folder and what to do.
    """
    if os.path.exists(root) and not os.path.isdir(root):
        raise ValueError(f"{root} is a file; give a new or empty folder for the world")
    if os.path.isdir(root) and os.listdir(root):
        raise ValueError(
            f"{root} is not empty ({len(os.listdir(root))} entries); give a new or empty folder for the world, "
            "or delete this one first"
        )


def contact_sheet(
    examples_by_action: dict[str, dict], columns: int = 6, scale: int = 2
) -> np.ndarray:
    """uint8 [rows * H * scale, columns * W * scale, 3]: one row per action, `columns` frames of one clip."""
    rows = []
    for example in examples_by_action.values():
        rgb = np.asarray(example["rgb"])
        picks = np.linspace(0, len(rgb) - 1, columns).round().astype(int)
        rows.append(np.concatenate([rgb[i] for i in picks], axis=1))
    sheet = np.concatenate(rows, axis=0)
    return cv2.resize(
        sheet, (sheet.shape[1] * scale, sheet.shape[0] * scale), interpolation=cv2.INTER_NEAREST
    )


def _label_rows(sheet: np.ndarray, names: list[str], row_height: int) -> np.ndarray:
    sheet = sheet.copy()
    for i, name in enumerate(names):
        origin = (4, i * row_height + 14)
        cv2.putText(sheet, name, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(
            sheet, name, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA
        )
    return sheet


def write_world(
    config: synthetic.WorldConfig,
    split: str,
    root: str,
    modality: str = "video",
    per_class: int | None = None,
    seed: int = 0,
    preview: str | None = None,
) -> dict[str, int]:
    """Generates one split of the world and writes it as class folders the runner reads.

    Args:
      config: the world (size and settings, see `synthetic.get_config`).
      split: "pretrain", "test" or "heldout".
      root: a new or empty output folder.
      modality: "video" (`<action>/<clip>.mp4`) or "pose" (`<action>/<clip>.npy` and `views.csv`).
      per_class: clips per action (all of the split's when None); only the performances needed are generated.
      seed: the world's seed.
      preview: optional PNG path for a contact sheet of frames, one row per action.

    Returns:
      Clips written per action name.

    Raises:
      ValueError: on an unknown split or modality, `per_class` below 1, or an output folder that holds something.
    """
    actions = synthetic.split_actions(split)
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; choose one of {MODALITIES}")
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    check_output_dir(root)
    if per_class is not None:
        # Actions cycle through the performances, so this many performances give every action per_class clips.
        needed = math.ceil(per_class / config.num_cameras) * len(actions)
        counts = list(config.performances)
        counts[synthetic.SPLITS.index(split)] = min(needed, config.num_performances(split))
        config = dataclasses.replace(config, performances=tuple(counts))
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    building = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(root))}.", dir=parent)
    try:
        written, first = _write_split(config, split, building, modality, per_class, seed)
        settings = {
            f.name: getattr(config, f.name)
            for f in dataclasses.fields(config)
            if f.name != "performances"
        }
        files.write_json_atomic(
            os.path.join(building, WORLD_JSON),
            {
                "size": config.name,
                "split": split,
                "seed": seed,
                "modality": modality,
                "fps": config.fps,
                "settings": settings,
                "actions": list(actions),
                "clips_per_action": written,
            },
        )
        files.replace_directory(building, root)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if preview:
        sheet = contact_sheet(first)
        sheet = _label_rows(sheet, list(first), sheet.shape[0] // max(1, len(first)))
        # OpenCV picks the format from the extension, so the temporary name ends in .png.
        with files.atomic_path(preview, suffix=".partial.png") as tmp:
            if not cv2.imwrite(tmp, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
                raise OSError(f"OpenCV cannot write {preview}")
    return written


def _write_split(config, split, root, modality, per_class, seed):
    """Writes the clips (and views.csv) into `root`; returns (clips per action, each action's first example)."""
    written: dict[str, int] = {}
    views = []
    first: dict[str, dict] = {}
    for example in synthetic.generate(config, split, seed):
        action = synthetic.ACTIONS[int(example["label"])]
        if per_class is not None and written.get(action, 0) >= per_class:
            continue
        first.setdefault(action, example)
        name = _clip_name(example)
        if modality == "video":
            _write_mp4(os.path.join(root, action, name + ".mp4"), example["rgb"], config.fps)
        else:
            _write_npy(os.path.join(root, action, name + ".npy"), example["pose2d"])
            camera = int(example["camera_id"])
            views.append([f"{action}/{name}.npy", camera, *(float(v) for v in example["view"])])
        written[action] = written.get(action, 0) + 1
    if views:
        text = io.StringIO()
        table = csv.writer(text, lineterminator="\n")
        # `path` and `view` are what the runner's readers take (`labeled.read_views`); the camera's parameters follow.
        table.writerow(["path", "view", *synthetic.VIEW_FIELDS])
        table.writerows(views)
        with files.atomic_path(os.path.join(root, VIEWS_CSV)) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text.getvalue())
    return written, first
