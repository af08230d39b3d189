"""Motion modalities: frame differences (in the graph), dense optical flow (OpenCV, cached on disk), and how much
of a frame moved (`moving_fractions`: the recognizer's still-or-moving measure).

Conventions, shared with the example contract in DESIGN.md:
- `diff[t] = rgb[t] - rgb[t-1]` and `flow[t]` is the motion from frame t-1 to frame t, in pixels (x right, y down);
  `diff[0]` and `flow[0]` are zero, so every modality has T frames aligned with `rgb`.
- Flow is stored as the papers store it: each frame clipped to +-`bound` pixels and quantised to 8 bits with a
  per-frame scale (Cross and Learn keeps flow as JPEGs with a per-frame normalisation factor; we keep the same
  8-bit-with-scale idea in a compressed .npz, which is lossless beyond the quantisation). The mean flow magnitude of
  every frame is stored beside it, and Cross and Learn's high-motion sampling draws windows by it.

TensorFlow is imported only by the graph functions (frame differences, `add_flow`), so the flow cache and
OpenCV flow run without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import cv2
import numpy as np

from edge_ssl import files

FLOW_METHODS = ("dis", "farneback")
DEFAULT_FLOW_BOUND = (
    20.0  # pixels; TSN-style clipping, also what Cross and Learn's stored flow assumes.
)
_CACHE_VERSION = 1


# What a frame difference keeps: each colour channel, or the luma alone.
DIFFERENCES = ("colour", "grey")


def frame_differences(rgb: tf.Tensor, grey: bool = False) -> tf.Tensor:
    """Frame differences with a leading zero frame: `diff[t] = rgb[t] - rgb[t-1]`, `diff[0] = 0`.

    Args:
      rgb: float [..., T, H, W, C]; any leading batch dimensions.
      grey: difference the frames' luma (Rec. 601, C = 3 in, 1 out) instead of each colour channel.

    Returns:
      float [..., T, H, W, C] (C = 1 when `grey`), in [-1, 1] when `rgb` is in [0, 1]. Built from a slice, a
      subtraction and a concat, ops every edge runtime has, so students can compute it in their own graph.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (lazy: see the module docstring)

    rgb = tf.convert_to_tensor(rgb)
    if grey:
        rgb = tf.image.rgb_to_grayscale(rgb)
    zero = tf.zeros_like(rgb[..., :1, :, :, :])
    return tf.concat([zero, rgb[..., 1:, :, :, :] - rgb[..., :-1, :, :, :]], axis=-4)


def difference_stack(rgb: tf.Tensor, num_differences: int = 4, grey: bool = False) -> tf.Tensor:
    """Cross and Learn's cheap motion input: `num_differences` consecutive differences stacked on channels.

    Args:
      rgb: float [..., num_differences + 1, H, W, 3], consecutive frames.
      num_differences: how many differences (the paper uses 4, from 5 frames, giving 12 channels).
      grey: difference the frames' luma instead of each colour channel (one channel per difference).

    Returns:
      float [..., H, W, C * num_differences] (C = 3, or 1 when `grey`), channel block k holding frame k+1 minus
      frame k.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (lazy: see the module docstring)

    rgb = tf.convert_to_tensor(rgb)
    if rgb.shape[-4] is not None and rgb.shape[-4] != num_differences + 1:
        raise ValueError(
            f"difference_stack needs {num_differences + 1} frames, got {rgb.shape[-4]}"
        )
    if grey:
        rgb = tf.image.rgb_to_grayscale(rgb)
    diffs = rgb[..., 1:, :, :, :] - rgb[..., :-1, :, :, :]  # [..., D, H, W, C]
    diffs = tf.unstack(diffs, num=num_differences, axis=-4)
    return tf.concat(diffs, axis=-1)


# Moving pixels: a pixel moved between two frames when its grey level changed by more than this (frames in [0, 1])
# beyond the frame's median change. A camera's sensor noise (sigma <= 5 grey levels, 0.02, in the synthetic world)
# crosses it 1 time in ~10^4 pixels; a limb of clothing >= 40 levels off its background crosses it wherever it moves.
# The median takes out a global brightness change (flicker, auto exposure).
MOVING_LEVEL = 0.1
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def grey(rgb: np.ndarray) -> np.ndarray:
    """float32 luma (Rec. 601) of RGB frames [..., H, W, 3] -> [..., H, W]."""
    return np.asarray(rgb, np.float32) @ _LUMA


def moving_fractions(frames: np.ndarray, level: float = MOVING_LEVEL) -> np.ndarray:
    """The fraction of pixels that moved between each pair of consecutive frames (see `MOVING_LEVEL`).

    NumPy only: the recognizer measures it on the device, frame by frame, and the runner on its training clips.

    Args:
      frames: float [T, H, W, 3] (or [T, H, W] grey) in [0, 1], T >= 2, consecutive frames at the model's rate.
      level: the grey-level change (beyond the median) that counts as movement.

    Returns:
      float32 [T - 1]: entry t for frames t and t + 1.
    """
    frames = grey(frames) if np.ndim(frames) == 4 else np.asarray(frames, np.float32)
    if frames.ndim != 3 or len(frames) < 2:
        raise ValueError(f"need [T >= 2, H, W(, 3)] frames, got shape {frames.shape}")
    change = np.diff(frames, axis=0)
    change -= np.median(change, axis=(1, 2), keepdims=True)
    return (np.abs(change) > level).mean(axis=(1, 2)).astype(np.float32)


def window_movement(fractions) -> float:
    """How much a window moves around its centre: the mean of the middle half of its frame pairs' moving fractions
    (all of them for fewer than 4 pairs). The recognizer times a window's decision at its centre, so its stillness
    is measured there too: a window whose last frames move again is still still at its centre.
    """
    fractions = np.asarray(fractions, np.float64).reshape(-1)
    if fractions.size == 0:
        raise ValueError("need at least one frame pair")
    quarter = len(fractions) // 4
    return float(fractions[quarter : len(fractions) - quarter].mean())


def movement_statistics(windows, level: float = MOVING_LEVEL) -> dict:
    """How much moves in a set of windows: the quantiles of their `window_movement`.

    The runner measures its training windows with it and the classifier carries the result, so the recognizer can
    tell a still scene from the movements it was taught (`edge_ssl.recognize.decisions`).

    Args:
      windows: iterable of float [T, H, W, 3] windows in [0, 1], T >= 2.
      level: as in `moving_fractions`.

    Returns:
      {"level", "windows", "p5", "median"}; p5 and median are None when there were no windows.
    """
    means = [window_movement(moving_fractions(w, level)) for w in windows]
    return {
        "level": level,
        "windows": len(means),
        "p5": float(np.percentile(means, 5)) if means else None,
        "median": float(np.median(means)) if means else None,
    }


def _flow_estimator(method: str):
    if method == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc
    if method == "farneback":
        return lambda prev, nxt, _: cv2.calcOpticalFlowFarneback(
            prev,
            nxt,
            None,
            pyr_scale=0.5,
            levels=3,
            winsize=15,
            iterations=3,
            poly_n=5,
            poly_sigma=1.2,
            flags=0,
        )
    raise ValueError(f"unknown flow method {method!r}; choose one of {FLOW_METHODS}")


def compute_flow(frames: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense optical flow between consecutive frames with OpenCV.

    Args:
      frames: uint8 [T, H, W, 3] RGB (or [T, H, W] grey).
      method: "dis" (DIS, medium preset: fast and accurate enough for training targets) or "farneback".

    Returns:
      float32 [T, H, W, 2] flow in pixels; `flow[0]` is zero.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or frames.shape[0] < 1:
        raise ValueError(
            f"compute_flow needs uint8 [T, H, W, 3] frames, got {frames.dtype} {frames.shape}"
        )
    estimate = _flow_estimator(method)
    grey = [f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    flow = np.zeros(frames.shape[:3] + (2,), np.float32)
    for t in range(1, len(grey)):
        flow[t] = estimate(grey[t - 1], grey[t], None)
    return flow


def add_flow(example: dict[str, tf.Tensor], method: str = "dis") -> dict[str, tf.Tensor]:
    """Adds `flow` [T, H, W, 2] computed with OpenCV from `rgb` (float in [0, 1]), for use in `Dataset.map`.

    For data read from files, prefer `FlowCache`, which computes each video's flow once.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (lazy: see the module docstring)

    rgb = example["rgb"]
    frames = tf.cast(tf.round(tf.clip_by_value(rgb, 0.0, 1.0) * 255.0), tf.uint8)
    flow = tf.numpy_function(
        lambda f: compute_flow(f, method), [frames], tf.float32, stateful=False
    )
    out = dict(example)
    out["flow"] = tf.ensure_shape(flow, rgb.shape[:-1].concatenate([2]))
    return out


def mean_magnitude(flow: np.ndarray) -> np.ndarray:
    """Per-frame mean flow magnitude, float32 [T], from flow [T, H, W, 2]."""
    return (
        np.sqrt(np.square(flow[..., 0]) + np.square(flow[..., 1]))
        .mean(axis=(1, 2))
        .astype(np.float32)
    )


def quantize_flow(
    flow: np.ndarray, bound: float = DEFAULT_FLOW_BOUND
) -> tuple[np.ndarray, np.ndarray]:
    """Clips flow to +-bound and stores it in 8 bits with a per-frame scale.

    Returns:
      (codes uint8 [T, H, W, 2], scale float32 [T]) with `flow ~= (codes - 128) / 127 * scale`; the error is at most
      half a step, `scale / 254`, and scale <= bound.
    """
    clipped = np.clip(flow, -bound, bound)
    scale = np.abs(clipped).reshape(len(flow), -1).max(axis=1).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0)[:, None, None, None]
    codes = np.rint(clipped / safe * 127.0) + 128.0
    return codes.astype(np.uint8), scale


def dequantize_flow(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Inverse of `quantize_flow`: float32 [T, H, W, 2] in pixels."""
    return ((codes.astype(np.float32) - 128.0) / 127.0) * scale[:, None, None, None].astype(
        np.float32
    )


@dataclasses.dataclass(frozen=True)
class CachedFlow:
    """Flow of one frame sequence as read back from the cache."""

    flow: np.ndarray  # float32 [T, H, W, 2], pixels, dequantised
    magnitude: np.ndarray  # float32 [T], per-frame mean magnitude before quantisation


class FlowCache:
    """Optical flow computed once per frame sequence and kept on disk, with per-frame magnitude statistics.

    Entries are keyed by a caller-given source id (for a video file: its path, size and modification time), the frame
    sampling, the frames' shape and the flow settings, so a changed video or setting is computed afresh. Entries are
    written atomically; an entry that cannot be read back (a crash in another tool, a full disk) is recomputed.
    """

    def __init__(self, cache_dir: str, method: str = "dis", bound: float = DEFAULT_FLOW_BOUND):
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method {method!r}; choose one of {FLOW_METHODS}")
        if bound <= 0:
            raise ValueError(f"flow bound must be positive, got {bound}")
        self.cache_dir = cache_dir
        self.method = method
        self.bound = float(bound)
        self.hits = 0
        self.misses = 0

    def _path(self, source_id: str, shape: tuple[int, ...]) -> str:
        key = f"v{_CACHE_VERSION}|{source_id}|{shape}|{self.method}|{self.bound}"
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return os.path.join(self.cache_dir, digest[:2], digest + ".npz")

    def get(self, source_id: str, frames: np.ndarray) -> CachedFlow:
        """The flow of `frames` (uint8 [T, H, W, 3]) from the cache, computing and storing it on a miss."""
        path = self._path(source_id, tuple(frames.shape))
        try:
            with np.load(path, allow_pickle=False) as entry:
                self.hits += 1
                return CachedFlow(
                    dequantize_flow(entry["codes"], entry["scale"]), entry["magnitude"]
                )
        except (OSError, KeyError, ValueError, EOFError):
            pass  # Missing or unreadable: compute it again.
        self.misses += 1
        flow = compute_flow(frames, self.method)
        magnitude = mean_magnitude(flow)
        codes, scale = quantize_flow(flow, self.bound)
        with files.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, codes=codes, scale=scale, magnitude=magnitude)
        return CachedFlow(dequantize_flow(codes, scale), magnitude)


def high_motion_window_starts(
    magnitude: np.ndarray, window: int, num: int, rng: np.random.Generator
) -> np.ndarray:
    """Cross and Learn's high-motion sampling: window starts drawn in proportion to the window's summed magnitude.

    Args:
      magnitude: float [N] per-frame mean flow magnitude of a video.
      window: frames per window (the paper: 10 flow frames).
      num: how many starts to draw (with replacement).
      rng: the random generator.

    Returns:
      int64 [num] starts in [0, N - window]. With no motion at all, starts are uniform.
    """
    magnitude = np.asarray(magnitude, np.float64)
    if window < 1 or len(magnitude) < window:
        raise ValueError(
            f"need at least window={window} frames of magnitudes, got {len(magnitude)}"
        )
    sums = np.convolve(
        np.maximum(magnitude, 0.0), np.ones(window), mode="valid"
    )  # [N - window + 1]
    total = sums.sum()
    probs = sums / total if total > 0 else np.full(len(sums), 1.0 / len(sums))
    return rng.choice(len(sums), size=num, p=probs)
