"""A user's video folder as a `tf.data` pipeline of RGB clips.

Layout (DESIGN.md): `ROOT/<class>/<clip>.{mp4,avi,mov,mkv,webm,m4v}` (extension in any case) or `ROOT/<class>/<clip>/`
holding frames (.jpg/.jpeg/.png, ordered by name). Classes are the folder names, sorted; label = position.

    index = video_folder.index_video_folder("/data/my_actions")   # decodes each clip once to check it
    for path, reason in index.skipped: print(path, reason)
    report = folder_index.DecodeReport()
    ds = video_folder.video_dataset(index, clip_len=16, stride=2, size=(112, 112), mode="random", seed=0,
                                    report=report)

Each example is `{"rgb": float32 [T, H, W, 3] in [0, 1], "label": int32, "clip_index": int32, "path": string}`.

Rules:
  - Probing decodes every clip once: the frame count is what decodes, and a zero-byte, truncated or non-video file,
    a frame that does not decode, or a frame folder with mixed frame sizes is skipped with its reason. Hidden files
    are ignored; any other stray file is skipped as "not a video".
  - Sampling (`edge_ssl.data.sampling`): `clip_len` frames every `stride` frames, `random` / `uniform` / `center`
    starts, `clips_per_video` clips per video. A video shorter than a clip repeats its last frame.
  - Colour and rotation (`edge_ssl.data.decode`): RGB uint8 from any channel count; container rotation applied.
  - Resize and crop: frames are scaled so they cover `size` (aspect kept), then cropped: a random crop in `random`
    mode (the same crop for every frame of a clip), the centre crop otherwise.
  - A clip that fails when the pipeline reads it (the file changed or broke after probing) is dropped from the stream,
    logged, and counted in the `DecodeReport` passed as `report`; the run goes on.
  - Cache (`cache_dir`): all frames of a video, already scaled for `size`, in one .npy per video, written atomically.
    One entry serves every sampling of the video (any mode, stride or clip), so the key is what its content depends on:
    the file's absolute path, modification time and size, and the scaled frame size. An entry that does not load or
    has the wrong shape is recomputed.

TensorFlow is imported only by the functions that build `tf.data` pipelines: indexing and reading clips need
OpenCV and NumPy alone, so the few-shot runner reads folders on a device without TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os

import cv2
import numpy as np

from edge_ssl import files
from edge_ssl.data import decode, folder_index, motion, sampling
from edge_ssl.data.folder_index import (
    Clip,
    ClipUnreadable,
    DecodeReport,
    FolderIndex,
    extension,
    scan_folder,
)

# Bumped when the cached content changes meaning (decoder rules, layout), so old entries are never reused.
_CACHE_VERSION = 1


def _is_candidate(path: str) -> bool:
    return os.path.isdir(path) or extension(path) in decode.VIDEO_EXTENSIONS


def _not_a_video(path: str) -> str:
    ext = extension(path) or "no extension"
    return (
        f"not a video ({ext}; expected {', '.join(decode.VIDEO_EXTENSIONS)} or a folder of frames)"
    )


def _probe(path: str, label: int) -> Clip:
    if os.path.isdir(path):
        return decode.probe_frame_folder(path, label)
    return decode.probe_video(path, label)


def index_video_folder(root: str, num_workers: int | None = None) -> FolderIndex:
    """Scans a video folder and checks every clip decodes.

    Args:
      root: the data folder, `ROOT/<class>/<clip>`.
      num_workers: threads probing clips (OpenCV releases the GIL). Default: CPU count.

    Returns:
      The index: classes, readable clips, and skipped entries with their reasons.

    Raises:
      DataFolderError: `root` is missing, not a folder, or holds no class folders.
    """
    return scan_folder(root, _probe, _is_candidate, _not_a_video, num_workers=num_workers)


def covering_size(height: int, width: int, size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) a frame is scaled to so that it covers `size` with its aspect ratio kept."""
    scale = max(size[0] / height, size[1] / width)
    return max(size[0], round(height * scale)), max(size[1], round(width * scale))


def cache_path(cache_dir: str, clip: Clip, size: tuple[int, int]) -> str:
    """Where the cached frames of `clip`, scaled for `size`, live.

    Args:
      cache_dir: the cache folder.
      clip: the clip.
      size: the pipeline's output (height, width).

    Returns:
      A .npy path whose name hashes the clip's path, modification time and size, and the scaled frame size.
    """
    path = os.path.abspath(clip.path)
    stats = [(path, os.stat(path).st_mtime_ns, os.stat(path).st_size)]
    # A frame folder changes when any frame does; its own mtime only sees added or removed files.
    stats += [(f, os.stat(f).st_mtime_ns, os.stat(f).st_size) for f in clip.frames]
    key = json.dumps(
        [_CACHE_VERSION, stats, covering_size(clip.height, clip.width, size)], ensure_ascii=True
    )
    return os.path.join(cache_dir, hashlib.sha1(key.encode()).hexdigest() + ".npy")


def _read_all_scaled(clip: Clip, size: tuple[int, int]) -> np.ndarray:
    if clip.kind == "frames":
        frames = decode.read_frame_folder(clip.frames, np.arange(clip.num_frames))
    else:
        frames = decode.read_video(clip.path)
    h, w = covering_size(frames.shape[1], frames.shape[2], size)
    return decode.resize_and_crop(frames, (h, w))


def _load_cached(path: str, clip: Clip, size: tuple[int, int]) -> np.ndarray | None:
    """The cached frames, or None when the entry is missing or unusable (then the caller recomputes it)."""
    if not os.path.exists(path):
        return None
    try:
        frames = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    expected = covering_size(clip.height, clip.width, size)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (*expected, 3):
        return None
    if frames.shape[0] < 1:
        return None
    return frames


def scaled_frames(clip: Clip, size: tuple[int, int], cache_dir: str | None = None) -> np.ndarray:
    """Every frame of `clip`, scaled to cover `size`, from (and into) the decoded-frame cache when `cache_dir` is set.

    Raises:
      ClipUnreadable: the clip no longer decodes.
    """
    if cache_dir is None:
        return _read_all_scaled(clip, size)
    path = cache_path(cache_dir, clip, size)
    frames = _load_cached(path, clip, size)
    if frames is None:
        frames = _read_all_scaled(clip, size)
        with files.atomic_path(path) as tmp:
            # A file object, because np.save would append ".npy" to the temporary name.
            with open(tmp, "wb") as f:
                np.save(f, frames, allow_pickle=False)
    return frames


def read_clip(
    clip: Clip,
    indices: np.ndarray,
    size: tuple[int, int],
    offset: tuple[float, float] = (0.5, 0.5),
    cache_dir: str | None = None,
) -> np.ndarray:
    """Reads the frames at `indices` of one clip, scaled to cover `size` and cropped to it.

    Args:
      clip: a clip from the index.
      indices: int [T] frame indices.
      size: (height, width) of the output.
      offset: the crop's position along (y, x), each in [0, 1]; (0.5, 0.5) is the centre crop.
      cache_dir: when set, frames come from (and go to) the decoded-frame cache there.

    Returns:
      RGB uint8 [T, size[0], size[1], 3].

    Raises:
      ClipUnreadable: the clip no longer decodes.
    """
    if cache_dir is None:
        if clip.kind == "frames":
            frames = decode.read_frame_folder(clip.frames, indices)
        else:
            frames = decode.read_video(clip.path, indices)
        return decode.resize_and_crop(frames, size, offset)
    frames = scaled_frames(clip, size, cache_dir)
    # The decoded count can differ from the probe's if the file changed; the short-video rule still applies.
    indices = np.minimum(indices, frames.shape[0] - 1)
    return decode.resize_and_crop(np.asarray(frames[indices]), size, offset)


def read_clip_with_flow(
    clip: Clip,
    indices: np.ndarray | None,
    size: tuple[int, int],
    flow_cache: motion.FlowCache,
    offset: tuple[float, float] = (0.5, 0.5),
    cache_dir: str | None = None,
    high_motion: tuple[int, int, np.random.Generator] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames and optical flow of one clip; the flow of the whole video is computed once and cached.

    Flow is computed between consecutive frames of the video (at the scaled size) and sampled at the clip's indices,
    as MoDist samples flow frames: with a stride, each flow frame is still the motion between two adjacent frames.

    Args:
      clip: a clip from the index.
      indices: int [T] frame indices, or None with `high_motion`.
      size: (height, width) of the output.
      flow_cache: where each video's flow and per-frame magnitudes are kept.
      offset: the crop's position, as in `read_clip`; rgb and flow share it.
      cache_dir: the decoded-frame cache, as in `read_clip`.
      high_motion: (clip_len, stride, rng): draw the clip's start in proportion to the motion of its window
        (Cross and Learn's high-motion sampling) instead of taking `indices`.

    Returns:
      (RGB uint8 [T, H, W, 3], flow float32 [T, H, W, 2] in pixels of the output frames).
    """
    frames = scaled_frames(clip, size, cache_dir)
    cached = flow_cache.get(os.path.basename(cache_path("", clip, size)), np.asarray(frames))
    if high_motion is not None:
        clip_len, stride, rng = high_motion
        span = sampling.clip_span(clip_len, stride)
        if len(frames) >= span:
            start = int(motion.high_motion_window_starts(cached.magnitude, span, 1, rng)[0])
        else:
            start = 0
        indices = start + np.arange(clip_len) * stride
    indices = np.minimum(indices, frames.shape[0] - 1)
    rgb = decode.resize_and_crop(np.asarray(frames[indices]), size, offset)
    flow = decode.resize_and_crop(cached.flow[indices], size, offset)
    return rgb, flow


def video_dataset(
    source: str | FolderIndex,
    clip_len: int = 16,
    stride: int = 1,
    size: tuple[int, int] = (112, 112),
    mode: str = "random",
    clips_per_video: int = 1,
    seed: int | None = None,
    cache_dir: str | None = None,
    num_parallel_calls: int | None = None,
    shuffle: bool | None = None,
    report: DecodeReport | None = None,
    flow_cache: motion.FlowCache | None = None,
    high_motion: bool = False,
) -> tf.data.Dataset:
    """RGB clips of a video folder as a `tf.data.Dataset`, decoded in parallel, optionally with optical flow.

    Args:
      source: the data folder, or its index from `index_video_folder`.
      clip_len: frames per clip (T).
      stride: step between a clip's frames in the source video.
      size: (height, width) of the output frames.
      mode: "random" (random start and random crop; training), "uniform" or "center" (centre crop; evaluation).
      clips_per_video: clips per video, each its own example with its `clip_index`; spread evenly in "uniform".
      seed: seeds shuffling, random starts and random crops; a fixed seed gives the same stream each run (each epoch
        still differs from the one before).
      cache_dir: folder for the decoded-frame cache; None decodes every time.
      num_parallel_calls: clips decoded at once (OpenCV releases the GIL, so threads use separate cores); None: tf.data.AUTOTUNE.
      shuffle: shuffle the clips each epoch; default: only in "random" mode.
      report: collects the clips that fail at read time; they are also logged.
      flow_cache: when set, each example also has `flow` float32 [T, H, W, 2], from the video's flow computed once
        and kept in this cache (see `read_clip_with_flow`).
      high_motion: in "random" mode with a flow cache, draw clip starts by the window's motion (Cross and Learn).

    Returns:
      A dataset of `{"rgb": float32 [T, H, W, 3] in [0, 1], "label": int32, "clip_index": int32, "path": string}`
      (and `flow` with a flow cache).

    Raises:
      DataFolderError: the folder is missing or empty, or has no readable clip.
      ValueError: bad sampling arguments.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (lazy: see the module docstring)

    from edge_ssl import tracing  # pylint: disable=g-import-not-at-top

    if num_parallel_calls is None:
        num_parallel_calls = tf.data.AUTOTUNE
    index = source if isinstance(source, FolderIndex) else index_video_folder(source)
    folder_index.check_sampling(index, "clips", clip_len, stride, mode, clips_per_video)
    if high_motion and (flow_cache is None or mode != "random"):
        raise ValueError("high_motion sampling needs a flow_cache and mode='random'")
    report = report if report is not None else DecodeReport()
    shuffle = mode == "random" if shuffle is None else shuffle
    clips = index.clips
    height, width = size
    flow_shape = [clip_len, height, width, 2] if flow_cache is not None else [0]
    empty_flow = np.zeros(flow_shape, np.float32)

    def load(position, clip_index, element_seed):
        clip = clips[int(position)]
        # One generator per example, from the stream's seed: parallel calls never share generator state.
        rng = np.random.default_rng(int(element_seed) & 0xFFFFFFFFFFFFFFFF)
        try:
            indices = sampling.clip_indices(
                clip.num_frames, clip_len, stride, mode, clips_per_video, rng
            )[int(clip_index)]
            offset = tuple(rng.uniform(size=2)) if mode == "random" else (0.5, 0.5)
            if flow_cache is None:
                return read_clip(clip, indices, size, offset, cache_dir), empty_flow, True
            rgb, flow = read_clip_with_flow(
                clip,
                indices,
                size,
                flow_cache,
                offset,
                cache_dir,
                high_motion=(clip_len, stride, rng) if high_motion else None,
            )
            return rgb, flow, True
        # A run never dies on one bad file: any failure is reported and the example dropped by the filter below.
        except (ClipUnreadable, OSError, ValueError, cv2.error) as e:
            report.add(clip.path, str(e) or type(e).__name__)
            return np.zeros([clip_len, height, width, 3], np.uint8), empty_flow, False

    ds = folder_index.clip_table(index, clips_per_video, shuffle, seed)

    @tracing.as_written
    def decode_map(example, element_seed):
        rgb, flow, ok = tf.numpy_function(
            load,
            [example["position"], example["clip_index"], element_seed],
            [tf.uint8, tf.float32, tf.bool],
            stateful=True,
        )
        rgb.set_shape([clip_len, height, width, 3])
        flow.set_shape(flow_shape)
        ok.set_shape([])
        return example, rgb, flow, ok

    @tracing.as_written
    def is_ok(example, rgb, flow, ok):
        return ok

    @tracing.as_written
    def to_example(example, rgb, flow, ok):
        out = {
            "rgb": tf.cast(rgb, tf.float32) / 255.0,
            "label": example["label"],
            "clip_index": example["clip_index"],
            "path": example["path"],
        }
        if flow_cache is not None:
            out["flow"] = flow
        return out

    ds = ds.map(decode_map, num_parallel_calls=num_parallel_calls)
    return ds.filter(is_ok).map(to_example, num_parallel_calls=num_parallel_calls)
