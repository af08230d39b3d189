"""What the video and pose folder readers share: the `ROOT/<class>/<clip>` walk, the index, skip and decode reports.

Layout (DESIGN.md, "User data formats"): every non-hidden folder directly under ROOT is a class, named by the folder,
classes sorted by name, label = position in that order. Hidden entries (names starting with ".", such as .DS_Store)
are ignored everywhere, and so are the folder's own metadata files at ROOT (`ROOT_METADATA`: the camera views of a
pose folder, and the description `edge_ssl.cli.world` writes); anything else that is not a clip is reported in
`skipped` with its reason, never dropped silently.

TensorFlow is imported only by the functions that build `tf.data` pipelines: indexing and reading clips need
OpenCV and NumPy alone, so the few-shot runner reads folders on a device without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterable
from concurrent import futures

import numpy as np
from absl import logging

from edge_ssl.data import sampling

# ROOT/views.csv: each clip's camera (columns path, view), read for pose folders' cross-view protocol.
VIEWS_CSV = "views.csv"
# ROOT/world.json: how `edge_ssl.cli.world` made the folder (size, split, seed, settings).
WORLD_JSON = "world.json"
ROOT_METADATA = (VIEWS_CSV, WORLD_JSON)


class DataFolderError(ValueError):
    """The data folder is missing, not a folder, or holds no class folders. The message names the path."""


class ClipUnreadable(Exception):
    """A clip cannot be read; the message is the reason shown to the user."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """One readable clip.

    Attributes:
      path: the clip's file, or its frame folder.
      label: index of its class in `FolderIndex.classes`.
      kind: "video" (a file OpenCV decodes), "frames" (a folder of images) or "pose" (a .npy/.npz file).
      num_frames: frames that actually decode (not the container's claim).
      height: frame height in pixels after the rotation rule of `edge_ssl.data.decode` (0 for pose).
      width: frame width in pixels (0 for pose).
      fps: frames per second from the container; 0.0 when unknown (frame folders, pose).
      frames: for "frames" clips, the image files in order; empty otherwise.
      has_confidence: for "pose" clips, whether the file holds a confidence channel.
    """

    path: str
    label: int
    kind: str
    num_frames: int
    height: int = 0
    width: int = 0
    fps: float = 0.0
    frames: tuple[str, ...] = ()
    has_confidence: bool = False


@dataclasses.dataclass
class FolderIndex:
    """What a folder holds: its classes, its readable clips and everything skipped with the reason.

    Attributes:
      root: the folder that was scanned.
      classes: class names, sorted; a clip's label indexes this list.
      clips: readable clips, sorted by path.
      skipped: (path, reason) for every entry that is not a readable clip, sorted by path.
    """

    root: str
    classes: list[str]
    clips: list[Clip]
    skipped: list[tuple[str, str]]

    def clips_per_class(self) -> dict[str, int]:
        """Class name -> number of readable clips (0 for a class with none)."""
        counts = {name: 0 for name in self.classes}
        for clip in self.clips:
            counts[self.classes[clip.label]] += 1
        return counts

    def empty_classes(self) -> list[str]:
        """Classes with no readable clip."""
        return [name for name, n in self.clips_per_class().items() if n == 0]


class DecodeReport:
    """Counts the clips that failed while a `tf.data` pipeline read them (a file changed or broke after indexing).

    Shared between the parallel decode calls, so updates hold a lock. Every failure is also logged as a warning.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[tuple[str, str]] = []

    def add(self, path: str, reason: str) -> None:
        """Records that `path` failed for `reason`."""
        logging.warning("skipped %s at read time: %s", path, reason)
        with self._lock:
            self._failures.append((path, reason))

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(path, reason) per failed read, in the order they happened."""
        with self._lock:
            return list(self._failures)

    @property
    def num_failed(self) -> int:
        """Number of failed reads (a clip read once per epoch can count once per epoch)."""
        with self._lock:
            return len(self._failures)


def is_hidden(name: str) -> bool:
    """Hidden entries (.DS_Store, ._resource forks, .git) are never data."""
    return name.startswith(".")


def list_visible(folder: str) -> list[str]:
    """Names in `folder` that are not hidden, sorted."""
    return sorted(name for name in os.listdir(folder) if not is_hidden(name))


def scan_folder(
    root: str,
    probe: Callable[[str, int], Clip],
    is_candidate: Callable[[str], bool],
    not_candidate_reason: Callable[[str], str],
    num_workers: int | None = None,
) -> FolderIndex:
    """Walks `ROOT/<class>/<entry>` and probes each candidate clip, in parallel.

    Args:
      root: the data folder.
      probe: (path, label) -> Clip; raises `ClipUnreadable` with the reason for a clip that cannot be read.
      is_candidate: whether a class folder entry (a path) should be probed as a clip.
      not_candidate_reason: the skip reason for an entry that is not a candidate.
      num_workers: threads probing clips; OpenCV and numpy release the GIL while decoding. Default: CPU count.

    Returns:
      The folder's index.

    Raises:
      DataFolderError: `root` is missing, not a folder, or holds no class folders.
    """
    if not os.path.exists(root):
        raise DataFolderError(f"data folder does not exist: {root}")
    if not os.path.isdir(root):
        raise DataFolderError(f"data folder is not a folder: {root}")
    classes, skipped, candidates = [], [], []
    for name in list_visible(root):
        path = os.path.join(root, name)
        if os.path.isdir(path):
            classes.append(name)
        elif name not in ROOT_METADATA:
            skipped.append((path, "not a class folder (files belong in ROOT/<class>/)"))
    if not classes:
        raise DataFolderError(
            f'no class folders in {root}: expected ROOT/<class>/<clip> (README.md, "User data folders")'
        )
    for label, name in enumerate(classes):
        for entry in list_visible(os.path.join(root, name)):
            path = os.path.join(root, name, entry)
            if is_candidate(path):
                candidates.append((path, label))
            else:
                skipped.append((path, not_candidate_reason(path)))

    def run(item: tuple[str, int]) -> Clip | tuple[str, str]:
        path, label = item
        try:
            return probe(path, label)
        except ClipUnreadable as e:
            return (path, str(e))

    clips = []
    workers = num_workers or os.cpu_count() or 1
    with futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(run, candidates):
            if isinstance(result, Clip):
                clips.append(result)
            else:
                skipped.append(result)
    return FolderIndex(
        root=root,
        classes=classes,
        clips=sorted(clips, key=lambda c: c.path),
        skipped=sorted(skipped),
    )


def extension(path: str) -> str:
    """Lower-case extension with its dot ("" for none), so ".MP4" and ".mp4" are the same."""
    return os.path.splitext(path)[1].lower()


def summarize(values: Iterable[float]) -> dict[str, float] | None:
    """min / median / max of `values`, or None when there are none."""
    values = sorted(values)
    if not values:
        return None
    n = len(values)
    median = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
    return {"min": values[0], "median": median, "max": values[-1]}


def check_sampling(
    index: FolderIndex, what: str, clip_len: int, stride: int, mode: str, clips_per_video: int
) -> None:
    """Raises before any decoding when a folder's dataset cannot be built: no readable clip, or bad sampling.

    Args:
      index: the folder's index.
      what: what the clips are called in the message ("clips", "pose files").
      clip_len, stride, mode, clips_per_video: the sampling arguments, see `edge_ssl.data.sampling`.

    Raises:
      DataFolderError: the index holds no readable clip.
      ValueError: a bad sampling argument.
    """
    if not index.clips:
        raise DataFolderError(
            f"no readable {what} in {index.root} ({len(index.skipped)} entries skipped)"
        )
    if mode not in sampling.MODES:
        raise ValueError(f"mode must be one of {sampling.MODES}, got {mode!r}")
    sampling.clip_indices(1, clip_len, stride, "center", clips_per_video)  # validates the arguments


def clip_table(index: FolderIndex, clips_per_video: int, shuffle: bool, seed: int | None):
    """The examples to read, before decoding: a `tf.data.Dataset` of (entry, element seed).

    Each entry is `{"position": index of the clip in index.clips, "clip_index": which of its clips, "label",
    "path"}`; `clips_per_video` entries per clip, shuffled each epoch when `shuffle`. The element seed (int64) gives
    each example its own random generator, so parallel decoders never share one and a fixed `seed` repeats the stream.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (lazy: see the module docstring)

    clips = index.clips
    positions = np.repeat(np.arange(len(clips), dtype=np.int64), clips_per_video)
    ds = tf.data.Dataset.from_tensor_slices(
        {
            "position": positions,
            "clip_index": np.tile(np.arange(clips_per_video, dtype=np.int32), len(clips)),
            "label": np.array([clips[i].label for i in positions], np.int32),
            "path": np.array([clips[i].path for i in positions], dtype=object),
        }
    )
    if shuffle:
        ds = ds.shuffle(len(positions), seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((ds, seeds))
