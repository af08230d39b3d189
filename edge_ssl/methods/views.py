"""What a method gives a distillation teacher: its views, each a frozen model and how to build its input from one
window of the distillation data (`Method.teacher_views`).

A window is a dict with `rgb` [T, H, W, 3] in [0, 1] and, when the method needs them, `flow` [T, H, W, 2] or `pose2d`
[T, 17, 2]. A view's input has the model's fixed size: the window is subsampled in time (uniformly, or in clips at the
stride the method trained on) and resized, flow vectors scaled with the image. Views are named `visual` (the kept
representation) and `motion` (what the method saw in motion, where it has a motion pathway). The building blocks here
are shared by the methods' `teacher_views`.
"""

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from edge_ssl.data import augment
from edge_ssl.data import pose as pose_lib
from edge_ssl.keras import keras
from edge_ssl.models import layers

# Cross and Learn's motion stream sees one stack of a few motion frames; a whole window is described, as two-stream
# networks are at test time, by the mean of its features over stacks spread over the window (benchmarks/README.md,
# "What a teacher's views and its students know").
MOTION_STACKS = 4
# A pose teacher describes a window by the mean of its z_p over this many frames spread over it.
POSE_FRAMES = 8


@dataclasses.dataclass
class View:
    """One embedding a teacher gives: a frozen model and how to build its input from a window."""

    model: keras.Model
    inputs: Callable[[dict[str, tf.Tensor]], tf.Tensor]  # window -> one input of `model`


def uniform_frames(x: tf.Tensor, count: int) -> tf.Tensor:
    """`count` frames of `x` [T, ...] at uniformly spaced positions (the first and the last included)."""
    length = tf.shape(x)[0]
    positions = tf.linspace(0.0, tf.cast(length - 1, tf.float32), count)
    return tf.gather(x, tf.cast(tf.round(positions), tf.int32))


def strided_clips(x: tf.Tensor, frames: int, stride: int, clips: int) -> tf.Tensor:
    """[clips, frames, ...]: clips of `frames` frames of `x` [T, ...] taken `stride` apart, as a method samples its
    training views, their starts spread evenly from frame 0 to the last start that fits (one clip: the middle one).
    Where the window is shorter than one clip's span, each clip is `uniform_frames(x, frames)`."""
    length = tf.shape(x)[0]
    span = (frames - 1) * stride + 1
    last = tf.cast(tf.maximum(length - span, 0), tf.float32)
    starts = tf.linspace(0.0, last, clips) if clips > 1 else tf.reshape(last / 2.0, [1])
    index = tf.cast(tf.round(starts), tf.int32)[:, None] + stride * tf.range(frames)[None, :]
    uniform = uniform_frames(tf.range(length), frames)
    index = tf.where(length >= span, index, tf.broadcast_to(uniform, [clips, frames]))
    return tf.gather(x, index)


def visual(
    backbone: keras.Model, size: int, frames: int, stride: int | None = None, clips: int = 1
) -> View:
    """`backbone` on the window's RGB resized to `size`: `frames` frames spread uniformly over the window or, with
    `stride`, the L2-normalised mean of the backbone over `clips` clips at that stride (`strided_clips`), the way
    video networks are tested on clips of their training length (the papers' multi-clip testing)."""

    def inputs(window):
        rgb = augment.resize({"rgb": window["rgb"]}, (size, size))["rgb"]
        if stride is None:
            return uniform_frames(rgb, frames)
        return strided_clips(rgb, frames, stride, clips)

    return View(backbone if stride is None else stack_mean(backbone, clips, "visual"), inputs)


def motion_window(window: dict[str, tf.Tensor], size: int) -> dict[str, tf.Tensor]:
    """The window's RGB (and flow, when present) resized to `size`, flow vectors scaled with the image."""
    return augment.resize({k: v for k, v in window.items() if k in ("rgb", "flow")}, (size, size))


def motion_stacks(frames: tf.Tensor, count: int, stacks: int) -> tf.Tensor:
    """[stacks, H, W, count * C]: `stacks` stacks of `count` consecutive motion frames at evenly spaced starts.

    Args:
      frames: [T, H, W, C] motion into each frame (flow or differences); frame 0 has none and is never used.
      count: motion frames per stack, concatenated along channels in time order (as `CrossAndLearn.prepare`).
      stacks: number of stacks; the first starts at frame 1, the last ends at frame T - 1.
    """
    length = tf.shape(frames)[0]
    tf.debugging.assert_greater_equal(
        length - 1, count, message=f"window shorter than a {count}-frame motion stack"
    )
    starts = tf.linspace(1.0, tf.cast(length - count, tf.float32), stacks)
    index = tf.cast(tf.round(starts), tf.int32)[:, None] + tf.range(count)[None, :]
    picked = tf.gather(frames, index)  # [stacks, count, H, W, C]
    picked = tf.transpose(picked, [0, 2, 3, 1, 4])  # [stacks, H, W, count, C]
    shape = tf.shape(picked)
    return tf.reshape(picked, [stacks, shape[1], shape[2], count * frames.shape[-1]])


def stack_mean(encoder: keras.Model, stacks: int, name: str = "motion") -> keras.Model:
    """[B, stacks, ...encoder's input] -> the L2-normalised mean of `encoder`'s features over the stacks."""
    x = keras.Input((stacks,) + tuple(encoder.input_shape[1:]), name=f"{name}_stacks")
    features = keras.layers.TimeDistributed(encoder, name="per_stack")(x)
    mean = layers.MeanOverTime(name="mean_over_stacks")(features)
    return keras.Model(x, layers.L2Normalize(name=f"{name}_embedding")(mean))


def pose_mean(backbone: keras.Model) -> View:
    """A pose method's representation (z_p, L2-normalised per frame) averaged over `POSE_FRAMES` frames of the
    window's normalised 2D keypoints: what a student learns to see in RGB that the teacher saw in the pose.
    """

    def inputs(window):
        return pose_lib.normalize(uniform_frames(window["pose2d"], POSE_FRAMES))

    return View(stack_mean(backbone, POSE_FRAMES, name="pose"), inputs)
