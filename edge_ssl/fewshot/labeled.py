"""A labeled folder turned into embeddings: index, pick shots, read model inputs, embed with a cache and a progress line.

Video folders give each clip `clips_per_video` uniformly spaced windows of the model's frame count, centre-cropped to
its size; their embeddings are averaged (test-time averaging) and L2-normalised. Pose folders give each clip its
frames (COCO-17 pixels, the confidence channel dropped); the pose encoder embeds every frame, the per-frame codes are
kept (for the temporal classifier) and their mean is the clip's embedding.

Embeddings are cached by content: the key hashes the model file, the clip file's bytes (every frame's, for a frame
folder) and the reading settings, so another head or other hyper-parameters never embed again, and an edited clip
or re-exported model never reuses a stale entry. Entries are written atomically.

No TensorFlow here: the runner reads folders with OpenCV and NumPy on a device that has LiteRT alone.
"""

import csv
import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from edge_ssl import files
from edge_ssl.data import decode, pose_folder, sampling, video_folder
from edge_ssl.data.folder_index import (
    VIEWS_CSV,
    Clip,
    ClipUnreadable,
    DataFolderError,
    FolderIndex,
    extension,
)
from export.runtime import parity

_VIEW_IN_NAME = re.compile(r"(?:^|[_\-.])(?:view|cam|camera)[_\-]?([A-Za-z0-9]+)", re.IGNORECASE)
_CACHE_VERSION = 1


class LabeledDataError(ValueError):
    """The labeled data cannot serve the run as asked; the message names the folder, class or setting."""


@dataclasses.dataclass
class Embedded:
    """The embedded clips of one folder.

    Attributes:
      classes: class names of the folder, sorted (labels index this list).
      paths: one per embedded clip.
      labels: int [N].
      embeddings: float32 [N, D]: video, the mean of the windows' embeddings, L2-normalised; pose, the mean of the
        per-frame codes.
      frame_embeddings: pose only: per clip, float32 [T_i, D] per-frame codes; None for video.
      views: per clip, its camera view when the folder gives views (views.csv or names like `_view2`), else None.
      skipped: (path, reason) for clips that could not be read now, counted and reported.
      cached: how many clips came from the cache.
      clips: the embedded clips themselves (for heads that read them again).
    """

    classes: list[str]
    paths: list[str]
    labels: np.ndarray
    embeddings: np.ndarray
    frame_embeddings: list[np.ndarray] | None
    views: list[str | None]
    skipped: list[tuple[str, str]]
    cached: int = 0
    clips: list[Clip] = dataclasses.field(default_factory=list)


def index_folder(root: str, modality: str) -> FolderIndex:
    """The folder's index (video or pose), with unreadable entries listed in `skipped`.

    Raises:
      LabeledDataError: the folder is missing, not a folder, or has no class folders or no readable clip.
    """
    index_fn = (
        video_folder.index_video_folder if modality == "video" else pose_folder.index_pose_folder
    )
    try:
        index = index_fn(root)
    except DataFolderError as e:
        raise LabeledDataError(str(e)) from e
    if not index.clips:
        # The commonest cause: a folder of the other modality (videos for a pose model, or the reverse).
        other, extensions = (
            ("pose", pose_folder.POSE_EXTENSIONS)
            if modality == "video"
            else ("video", decode.VIDEO_EXTENSIONS)
        )
        foreign = sum(extension(p) in extensions for p, _ in index.skipped)
        mismatch = (
            f", {foreign} of them {other} files, which a {modality} run (the model card's modality, or "
            f"--modality) does not read"
            if foreign
            else ""
        )
        raise LabeledDataError(
            f"{root} has no readable {modality} clip ({len(index.skipped)} entries skipped{mismatch}; "
            f"run the data doctor: python -m edge_ssl.cli.data_doctor --data_dir={root} --modality={modality})"
        )
    return index


def select_shots(index: FolderIndex, shots: int | None, seed: int) -> tuple[list[Clip], list[Clip]]:
    """(K clips per class drawn with `seed`, the clips left over); every clip and none left when `shots` is None.

    Raises:
      LabeledDataError: a class with fewer readable clips than `shots`, named.
    """
    if shots is None:
        return list(index.clips), []
    if shots < 1:
        raise LabeledDataError(f"--shots must be >= 1, got {shots}")
    rng = np.random.default_rng(seed)
    chosen, rest = [], []
    short = []
    for label, name in enumerate(index.classes):
        members = [c for c in index.clips if c.label == label]
        if len(members) < shots:
            short.append(f"'{name}' has {len(members)}")
            continue
        order = rng.permutation(len(members))
        chosen += [members[i] for i in order[:shots]]
        rest += [members[i] for i in order[shots:]]
    if short:
        raise LabeledDataError(
            f"--shots={shots} needs {shots} readable clips per class in {index.root}; "
            + ", ".join(short)
        )
    return chosen, rest


def read_views(root: str, clips: Sequence[Clip]) -> list[str | None]:
    """Camera views of `clips`: from `ROOT/views.csv` (columns `path`, `view`; paths relative to ROOT) when present,
    else from names such as `walk_view2.npy` or `cam-1.npy`; None for a clip with neither.

    Raises:
      LabeledDataError: a views.csv without `path` and `view` columns.
    """
    table = {}
    csv_path = os.path.join(root, VIEWS_CSV)
    if os.path.exists(csv_path):
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"path", "view"} <= set(reader.fieldnames):
                raise LabeledDataError(f"{csv_path} needs the columns 'path' and 'view'")
            table = {os.path.normpath(row["path"]): row["view"] for row in reader}
    views = []
    for clip in clips:
        relative = os.path.normpath(os.path.relpath(clip.path, root))
        if relative in table:
            views.append(table[relative])
            continue
        match = _VIEW_IN_NAME.search(os.path.splitext(os.path.basename(clip.path))[0])
        views.append(match.group(1) if match else None)
    return views


def read_video_inputs(
    clip: Clip, frames: int, size: int, clips_per_video: int, stride: int
) -> np.ndarray:
    """`clips_per_video` windows of `frames` frames, uniformly spaced, centre-cropped: float32 [M, T, S, S, 3]."""
    indices = sampling.clip_indices(clip.num_frames, frames, stride, "uniform", clips_per_video)
    windows = [video_folder.read_clip(clip, idx, (size, size)) for idx in np.atleast_2d(indices)]
    return np.stack([decode.model_input(window, (size, size)) for window in windows])


def read_pose_inputs(clip: Clip) -> np.ndarray:
    """The clip's frames as pose encoder inputs: float32 [T, 17, 2] pixels (confidence dropped)."""
    return pose_folder.load_pose(clip.path)[..., :2]


class Progress:
    """A progress line on stderr: count, rate and time left; redrawn in place on a terminal, every 10% otherwise."""

    def __init__(self, total: int, what: str, stream=None):
        self.total, self.what, self.done = total, what, 0
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._next_line = 0.1

    def update(self, count: int = 1) -> None:
        self.done += count
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        text = f"{self.what}: {self.done}/{self.total} ({rate:.1f}/s, {left:.0f} s left)"
        if self._tty:
            self.stream.write("\r" + text + ("\n" if self.done >= self.total else ""))
            self.stream.flush()
        elif self.done >= self.total or self.done >= self._next_line * self.total:
            self.stream.write(text + "\n")
            self._next_line = min(1.0, self.done / self.total + 0.1)


def embed_clips(
    root: str,
    classes: list[str],
    clips: Sequence[Clip],
    modality: str,
    embed_fn: Callable[[np.ndarray], np.ndarray],
    model_digest: str,
    card: dict,
    cache_dir: str | None,
    clips_per_video: int = 1,
    stride: int = 1,
    what: str = "embedding clips",
) -> Embedded:
    """Embeds `clips` with `embed_fn` (an engine's `embed`), through the cache.

    Args:
      root: the folder the clips come from (for views.csv).
      classes: the folder's class names.
      clips: the clips to embed.
      modality: "video" or "pose".
      embed_fn: inputs [N, ...] -> embeddings [N, D].
      model_digest: the model file's hash, part of the cache key.
      card: the model card (the student's clip shape).
      cache_dir: where entries live; None: no cache.
      clips_per_video: video windows averaged per clip.
      stride: frame stride inside a video window.
      what: the progress line's label.

    Returns:
      The embedded clips; a clip that fails to read now is in `skipped`, not in the arrays.
    """
    settings = {"modality": modality, "version": _CACHE_VERSION}
    if modality == "video":
        frames, size = int(card["input"]["clip"][0]), int(card["input"]["clip"][1])
        settings.update(frames=frames, size=size, clips_per_video=clips_per_video, stride=stride)
    progress = Progress(len(clips), what)
    kept, units, skipped, cached = [], [], [], 0
    for clip in clips:
        try:
            path, values = None, None
            # Hashing reads the whole file: only worth it when there is a cache to look in.
            if cache_dir:
                content = files.content_digest(clip.frames or (clip.path,))
                key = hashlib.sha256(json.dumps([model_digest, content, settings]).encode())
                path = os.path.join(cache_dir, key.hexdigest() + ".npy")
            if path and os.path.exists(path):
                try:
                    values = np.load(path, allow_pickle=False)
                    cached += 1
                except (OSError, ValueError, EOFError):
                    values = None  # a damaged entry is recomputed
            if values is None:
                if modality == "video":
                    inputs = read_video_inputs(clip, frames, size, clips_per_video, stride)
                else:
                    inputs = read_pose_inputs(clip)
                values = np.asarray(embed_fn(inputs), np.float32)
                if path:
                    with files.atomic_path(path) as tmp:
                        with open(tmp, "wb") as f:
                            np.save(f, values, allow_pickle=False)
        except (ClipUnreadable, OSError) as e:
            skipped.append((clip.path, str(e)))
            progress.update()
            continue
        kept.append(clip)
        units.append(values)
        progress.update()
    if not kept:
        raise LabeledDataError(f"none of the {len(clips)} clips of {root} could be read now")
    pooled = np.stack([u.mean(axis=0) for u in units])
    if modality == "video":
        pooled = parity.l2_normalize(pooled)
    # Pose: the plain mean of unit per-frame codes, not re-normalised, so that a linear head's logits of a sequence
    # are exactly the mean of its per-frame logits (what the per-frame classifier.tflite gives, averaged).
    return Embedded(
        classes=classes,
        paths=[c.path for c in kept],
        labels=np.array([c.label for c in kept], np.int64),
        embeddings=pooled.astype(np.float32),
        frame_embeddings=units if modality == "pose" else None,
        views=read_views(root, kept),
        skipped=skipped,
        cached=cached,
        clips=kept,
    )
