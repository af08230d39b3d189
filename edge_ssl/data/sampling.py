"""Which frames make a clip: pure numpy index functions shared by the video and pose folder readers.

A clip is `clip_len` frames taken every `stride` frames, so it spans `(clip_len - 1) * stride + 1` source frames.

Modes:
  - `random`: each clip starts at a uniformly random frame among those where the whole span fits (training).
  - `center`: the span is centred in the video (one clip per video; `num_clips` > 1 gives that many copies).
  - `uniform`: `num_clips` spans spread evenly from the first possible start to the last (evaluation); one clip is
    the centre one.

Short videos (fewer frames than the span): the clip starts at frame 0, keeps its stride, and every index past the
last frame repeats the last frame. So a 5-frame video read with `clip_len=8, stride=1` gives frames
0, 1, 2, 3, 4, 4, 4, 4. Keeping the stride keeps motion speed the same as in long videos, and repeating the last frame
(rather than looping) never shows a jump back to the start that a motion model could mistake for an action.
"""

import numpy as np

MODES = ("random", "uniform", "center")


def clip_span(clip_len: int, stride: int) -> int:
    """Number of source frames a clip covers, from its first frame to its last, both included."""
    return (clip_len - 1) * stride + 1


def clip_starts(
    num_frames: int,
    clip_len: int,
    stride: int,
    mode: str,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """First frame of each clip.

    Args:
      num_frames: frames in the video, at least 1.
      clip_len: frames per clip, at least 1.
      stride: step between the frames of a clip, at least 1.
      mode: one of `MODES`.
      num_clips: clips to take from this video.
      rng: random generator for `mode="random"`; required there.

    Returns:
      int64 [num_clips] start frames; all 0 when the video is shorter than a clip's span.
    """
    _check(num_frames, clip_len, stride, mode, num_clips)
    last_start = max(num_frames - clip_span(clip_len, stride), 0)
    if mode == "random":
        if rng is None:
            raise ValueError("mode='random' needs an rng")
        return rng.integers(0, last_start + 1, size=num_clips).astype(np.int64)
    if mode == "center" or num_clips == 1:
        return np.full([num_clips], last_start // 2, dtype=np.int64)
    # Evenly spread from the first to the last start, so evaluation sees the whole video.
    return np.round(np.linspace(0, last_start, num_clips)).astype(np.int64)


def clip_indices(
    num_frames: int,
    clip_len: int,
    stride: int,
    mode: str,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Frame indices of each clip, with the short-video rule applied (repeat the last frame).

    Args:
      num_frames: frames in the video, at least 1.
      clip_len: frames per clip.
      stride: step between the frames of a clip.
      mode: one of `MODES`.
      num_clips: clips to take from this video.
      rng: random generator for `mode="random"`.

    Returns:
      int64 [num_clips, clip_len] indices, each in [0, num_frames).
    """
    starts = clip_starts(num_frames, clip_len, stride, mode, num_clips, rng)
    indices = starts[:, None] + np.arange(clip_len, dtype=np.int64)[None, :] * stride
    return np.minimum(indices, num_frames - 1)


def _check(num_frames: int, clip_len: int, stride: int, mode: str, num_clips: int) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    for name, value in (("clip_len", clip_len), ("stride", stride), ("num_clips", num_clips)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
