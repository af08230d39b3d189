"""A user's pose folder as a `tf.data` pipeline of fixed-length 2D keypoint clips.

Layout (DESIGN.md): `ROOT/<class>/<clip>.npy` holding a float array [T, 17, 2] (x, y in pixels) or [T, 17, 3] (x, y,
confidence), COCO-17 order (`edge_ssl.data.keypoints`); or `<clip>.npz` with that array under the key `keypoints`.
Classes are the folder names, sorted; label = position.

    index = pose_folder.index_pose_folder("/data/my_poses")
    ds = pose_folder.pose_dataset(index, clip_len=32, stride=1, mode="random", seed=0)

Each example is `{"pose2d": float32 [T, 17, 2], "confidence": float32 [T, 17] (1 where the file has none),
"label": int32, "clip_index": int32, "path": string}`.

Validation (each failure skips the file with its reason): a file np.load cannot read, a pickled object array (files are
loaded with `allow_pickle=False`, so a pose file can never run code), a .npz without `keypoints`, a shape other than
[T, 17, 2|3], T = 0, a non-numeric dtype, NaN or Inf. Sampling is `edge_ssl.data.sampling`'s, as for video: a clip
shorter than `clip_len` frames repeats its last frame.

TensorFlow is imported only by the functions that build `tf.data` pipelines: indexing and reading clips need
OpenCV and NumPy alone, so the few-shot runner reads folders on a device without TensorFlow.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from edge_ssl.data import folder_index, keypoints, sampling
from edge_ssl.data.folder_index import (
    Clip,
    ClipUnreadable,
    DecodeReport,
    FolderIndex,
    extension,
    scan_folder,
)

POSE_EXTENSIONS = (".npy", ".npz")
NPZ_KEY = "keypoints"
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"


def load_pose(path: str) -> np.ndarray:
    """Loads and validates one pose file.

    Args:
      path: a .npy or .npz file.

    Returns:
      float32 [T, 17, C] with C = 2 (x, y) or 3 (x, y, confidence).

    Raises:
      ClipUnreadable: with the reason the file is not a usable pose clip.
    """
    try:
        if os.path.getsize(path) == 0:
            raise ClipUnreadable("empty file (0 bytes)")
        # np.load falls back to unpickling files without a numpy header; name the real problem instead.
        with open(path, "rb") as f:
            head = f.read(6)
        magic = _ZIP_MAGIC if extension(path) == ".npz" else _NPY_MAGIC
        if not head.startswith(magic):
            raise ClipUnreadable(f"not a readable numpy file: no {extension(path)} header")
        if extension(path) == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if NPZ_KEY not in archive.files:
                    raise ClipUnreadable(
                        f"no '{NPZ_KEY}' array in the .npz (it holds: {', '.join(archive.files) or 'nothing'})"
                    )
                array = archive[NPZ_KEY]
        else:
            array = np.load(path, allow_pickle=False)
    except ClipUnreadable:
        raise
    except ValueError as e:
        # numpy's message for object arrays when pickles are refused.
        if "pickle" in str(e).lower():
            raise ClipUnreadable(
                "holds a pickled object array; save a numeric array (np.save of a float array)"
            ) from e
        raise ClipUnreadable(f"not a readable numpy file: {e}") from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ClipUnreadable(f"not a readable numpy file: {e}") from e
    return validate_pose(array)


def validate_pose(array: np.ndarray) -> np.ndarray:
    """Checks a pose array against the contract and returns it as float32.

    Args:
      array: the loaded array.

    Returns:
      float32 [T, 17, C], C in {2, 3}.

    Raises:
      ClipUnreadable: wrong shape, no frames, a non-numeric dtype, or NaN / Inf values.
    """
    expected = f"[T, {keypoints.NUM_KEYPOINTS}, 2] or [T, {keypoints.NUM_KEYPOINTS}, 3]"
    if array.dtype.kind not in "fiu":
        raise ClipUnreadable(f"dtype {array.dtype} is not a real number type")
    if array.ndim != 3 or array.shape[1] != keypoints.NUM_KEYPOINTS or array.shape[2] not in (2, 3):
        raise ClipUnreadable(f"shape {list(array.shape)} is not {expected} (COCO-17 keypoints)")
    if array.shape[0] == 0:
        raise ClipUnreadable("no frames (T = 0)")
    array = array.astype(np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        frames = np.flatnonzero(bad.any(axis=(1, 2)))
        raise ClipUnreadable(
            f"{int(bad.sum())} NaN or Inf values in {frames.size} frames (first: frame {frames[0]})"
        )
    return array


def _probe(path: str, label: int) -> Clip:
    array = load_pose(path)
    return Clip(
        path=path,
        label=label,
        kind="pose",
        num_frames=array.shape[0],
        has_confidence=array.shape[2] == 3,
    )


def _is_candidate(path: str) -> bool:
    return os.path.isfile(path) and extension(path) in POSE_EXTENSIONS


def _not_a_pose_file(path: str) -> str:
    what = "a folder" if os.path.isdir(path) else (extension(path) or "no extension")
    return f"not a pose file ({what}; expected {' or '.join(POSE_EXTENSIONS)})"


def index_pose_folder(root: str, num_workers: int | None = None) -> FolderIndex:
    """Scans a pose folder and validates every pose file.

    Args:
      root: the data folder, `ROOT/<class>/<clip>.npy|.npz`.
      num_workers: threads loading files. Default: CPU count.

    Returns:
      The index: classes, readable clips, and skipped entries with their reasons.

    Raises:
      DataFolderError: `root` is missing, not a folder, or holds no class folders.
    """
    return scan_folder(root, _probe, _is_candidate, _not_a_pose_file, num_workers=num_workers)


def split_pose(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Splits [T, 17, C] into pose2d float32 [T, 17, 2] and confidence float32 [T, 17] (ones when C = 2)."""
    pose2d = np.ascontiguousarray(array[..., :2], dtype=np.float32)
    if array.shape[-1] == 3:
        return pose2d, np.ascontiguousarray(array[..., 2], dtype=np.float32)
    return pose2d, np.ones(array.shape[:2], np.float32)


def pose_dataset(
    source: str | FolderIndex,
    clip_len: int = 32,
    stride: int = 1,
    mode: str = "random",
    clips_per_video: int = 1,
    seed: int | None = None,
    num_parallel_calls: int | None = None,
    shuffle: bool | None = None,
    report: DecodeReport | None = None,
) -> tf.data.Dataset:
    """Fixed-length keypoint clips of a pose folder as a `tf.data.Dataset`.

    Args:
      source: the data folder, or its index from `index_pose_folder`.
      clip_len: frames per clip (T).
      stride: step between a clip's frames in the source sequence.
      mode: "random", "uniform" or "center" (see `edge_ssl.data.sampling`).
      clips_per_video: clips per file, each its own example with its `clip_index`.
      seed: seeds shuffling and random starts.
      num_parallel_calls: files loaded at once; None: tf.data.AUTOTUNE.
      shuffle: shuffle each epoch; default: only in "random" mode.
      report: collects the files that fail at read time; they are also logged.

    Returns:
      A dataset of `{"pose2d": float32 [T, 17, 2], "confidence": float32 [T, 17], "label": int32,
      "clip_index": int32, "path": string}`.

    Raises:
      DataFolderError: the folder is missing or empty, or has no readable clip.
      ValueError: bad sampling arguments.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (lazy: see the module docstring)

    from edge_ssl import tracing  # pylint: disable=g-import-not-at-top

    if num_parallel_calls is None:
        num_parallel_calls = tf.data.AUTOTUNE
    index = source if isinstance(source, FolderIndex) else index_pose_folder(source)
    folder_index.check_sampling(index, "pose files", clip_len, stride, mode, clips_per_video)
    report = report if report is not None else DecodeReport()
    shuffle = mode == "random" if shuffle is None else shuffle
    clips = index.clips
    k = keypoints.NUM_KEYPOINTS

    def load(position, clip_index, element_seed):
        clip = clips[int(position)]
        rng = np.random.default_rng(int(element_seed) & 0xFFFFFFFFFFFFFFFF)
        try:
            array = load_pose(clip.path)
            indices = sampling.clip_indices(
                array.shape[0], clip_len, stride, mode, clips_per_video, rng
            )[int(clip_index)]
            pose2d, confidence = split_pose(array[indices])
            return pose2d, confidence, True
        except (ClipUnreadable, OSError) as e:
            report.add(clip.path, str(e) or type(e).__name__)
            return (
                np.zeros([clip_len, k, 2], np.float32),
                np.zeros([clip_len, k], np.float32),
                False,
            )

    ds = folder_index.clip_table(index, clips_per_video, shuffle, seed)

    @tracing.as_written
    def load_map(example, element_seed):
        pose2d, confidence, ok = tf.numpy_function(
            load,
            [example["position"], example["clip_index"], element_seed],
            [tf.float32, tf.float32, tf.bool],
            stateful=True,
        )
        pose2d.set_shape([clip_len, k, 2])
        confidence.set_shape([clip_len, k])
        ok.set_shape([])
        out = {
            "pose2d": pose2d,
            "confidence": confidence,
            "label": example["label"],
            "clip_index": example["clip_index"],
            "path": example["path"],
        }
        return out, ok

    @tracing.as_written
    def is_ok(out, ok):
        return ok

    @tracing.as_written
    def drop_ok(out, ok):
        return out

    ds = ds.map(load_map, num_parallel_calls=num_parallel_calls)
    return ds.filter(is_ok).map(drop_ok)
