"""A pretrained method, loaded frozen from its pretraining workdir, as a distillation teacher.

A teacher gives, for one RGB window (and its optical flow, or its 2D keypoints, when the teacher needs them), the
inputs of each of its views, and embeds them with `training=False`:
- `visual`: the method's backbone (MoDist's visual pathway, Cross and Learn's RGB stream averaged over frames,
  Muscles' frame encoder averaged over frames, CV-MIM's z_p of the window's keypoints averaged over frames: a pose
  teacher, whose student learns from RGB what the teacher read from the pose).
- `motion`: what the teacher saw in motion, for the student's motion-awareness term: MoDist's motion pathway on flow
  (or frame differences), Cross and Learn's motion stream averaged over `MOTION_STACKS` flow or difference stacks
  spread over the window. Muscles has no motion pathway.
Teachers' inputs have fixed sizes; the window is subsampled uniformly in time and resized to them, and flow vectors
are scaled with the image.
"""

import dataclasses
import json
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from edge_ssl.configs import loader
from edge_ssl.data import augment
from edge_ssl.data import motion as motion_lib
from edge_ssl.data import pose as pose_lib
from edge_ssl.keras import keras
from edge_ssl.methods import base, registry
from edge_ssl.models import layers
from edge_ssl.train import loop, optim

# Every method can teach an RGB student: video methods from the clip, CV-MIM from the clip's 2D keypoints (which the
# distillation data must then carry, as the synthetic world does).
TEACHERS = tuple(registry.METHODS)


class TeacherError(ValueError):
    """The teacher cannot be used: missing, not a pretraining run, an unknown method, or a pose teacher without poses."""


def _uniform(x: tf.Tensor, count: int) -> tf.Tensor:
    """`count` frames of `x` [T, ...] at uniformly spaced positions (the first and the last included)."""
    length = tf.shape(x)[0]
    positions = tf.linspace(0.0, tf.cast(length - 1, tf.float32), count)
    return tf.gather(x, tf.cast(tf.round(positions), tf.int32))


def _resized(example: dict[str, tf.Tensor], size: int) -> dict[str, tf.Tensor]:
    return augment.resize(example, (size, size))


@dataclasses.dataclass
class View:
    """One embedding the teacher gives: a frozen model and how to build its input from a window."""

    model: keras.Model
    inputs: Callable[
        [dict[str, tf.Tensor]], tf.Tensor
    ]  # window {"rgb", optionally "flow"} -> one input


@dataclasses.dataclass
class Teacher:
    method: base.Method
    views: dict[str, View]
    workdir: str
    checkpoint: str

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def needs_flow(self) -> bool:
        return "flow" in self.method.input_keys

    @property
    def needs_pose(self) -> bool:
        """A pose teacher (CV-MIM) embeds a window from its 2D keypoints, which the distillation data must carry."""
        return self.method.modality == "pose"

    @property
    def dims(self) -> dict[str, int]:
        return {name: int(view.model.output.shape[-1]) for name, view in self.views.items()}

    def window(
        self, rgb: tf.Tensor | None, pose2d: tf.Tensor | None = None
    ) -> dict[str, tf.Tensor]:
        """An RGB clip [T, H, W, 3] in [0, 1] as the views take it: with its optical flow when the teacher needs it,
        computed as the training data pipeline computes it (`motion.add_flow`), and with the clip's 2D keypoints
        [T, 17, 2] for a pose teacher (which needs no pixels: `rgb` may be None). For embedding clips outside
        training.

        Raises:
          TeacherError: a pose teacher and no `pose2d`, or a video teacher and no `rgb`.
        """
        window = {} if rgb is None else {"rgb": rgb}
        if self.needs_pose:
            if pose2d is None:
                raise TeacherError(
                    f"{self.name} is a pose teacher: it embeds a clip from its 2D keypoints, give pose2d"
                )
            window["pose2d"] = tf.convert_to_tensor(pose2d, tf.float32)
            return window
        if rgb is None:
            raise TeacherError(f"{self.name} embeds RGB clips: give the clip's frames")
        return motion_lib.add_flow(window) if self.needs_flow else window

    def embed_clips(
        self,
        view_name: str,
        clips: np.ndarray | None = None,
        poses: np.ndarray | None = None,
    ) -> np.ndarray:
        """View `view_name`'s embedding [N, D] of RGB clips [N, T, H, W, 3] in [0, 1] (for a pose teacher, of their
        keypoints [N, T, 17, 2] alone), in inference mode, each clip made into the view's input as in distillation
        (`window`, then the view's `inputs`)."""
        view = self.views[view_name]
        if clips is None and poses is None:
            raise TeacherError("give the clips to embed (or, for a pose teacher, their keypoints)")
        count = len(clips) if clips is not None else len(poses)
        inputs = tf.stack(
            [
                view.inputs(
                    self.window(
                        None if clips is None else tf.constant(clips[i], tf.float32),
                        None if poses is None else poses[i],
                    )
                )
                for i in range(count)
            ]
        )
        return view.model(inputs, training=False).numpy()

    def inputs(self, window: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Per example (inside `Dataset.map`): each view's input from an RGB window [T, H, W, 3] (and `flow`)."""
        return {f"teacher_{name}": view.inputs(window) for name, view in self.views.items()}

    def embed(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Each view's float32 embedding of a batch of `inputs`, in inference mode and without gradient."""
        return {
            name: tf.stop_gradient(optim.f32(view.model(batch[f"teacher_{name}"], training=False)))
            for name, view in self.views.items()
        }

    @property
    def variables(self) -> list[tf.Variable]:
        return [v for view in self.views.values() for v in view.model.variables]


def _visual_view(method, size: int, frames: int) -> View:
    """The method's backbone on the window, resized to `size` and subsampled to `frames` frames."""

    def inputs(window):
        return _uniform(_resized({"rgb": window["rgb"]}, size)["rgb"], frames)

    return View(method.backbone, inputs)


def _normalized(encoder: keras.Model) -> keras.Model:
    """`encoder` with its output L2-normalised: an embedding like the backbone's."""
    return keras.Model(encoder.input, layers.L2Normalize(name="motion_embedding")(encoder.output))


def _motion_window(window: dict[str, tf.Tensor], size: int) -> dict[str, tf.Tensor]:
    """The window's RGB (and flow, when present) resized to `size`, flow vectors scaled with the image."""
    return _resized({k: v for k, v in window.items() if k in ("rgb", "flow")}, size)


def _modist_views(method) -> dict[str, View]:
    c = method.config

    def motion(window):
        ex = _motion_window(window, c.input_size)
        if c.motion == "diff":
            ex["diff"] = motion_lib.frame_differences(ex["rgb"])
        return _uniform(ex[c.motion], c.flow_frames)

    return {
        "visual": _visual_view(method, c.input_size, c.frames),
        "motion": View(_normalized(method.motion), motion),
    }


# Cross and Learn's motion stream sees one stack of a few motion frames; a whole window is described, as two-stream
# networks are at test time, by the mean of its features over stacks spread over the window. On the small world's
# held-out clips a `small` motion stream finds the action (k-NN, k = 1) far more often than from the centre stack
# alone: 54% from 4 stacks (one pretraining step; benchmarks/README.md), 57% from 6 at initialisation, against 37%
# from the centre stack at initialisation (a one-off measurement).
MOTION_STACKS = 4


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


def _stack_mean(encoder: keras.Model, stacks: int, name: str = "motion") -> keras.Model:
    """[B, stacks, ...encoder's input] -> the L2-normalised mean of `encoder`'s features over the stacks."""
    x = keras.Input((stacks,) + tuple(encoder.input_shape[1:]), name=f"{name}_stacks")
    features = keras.layers.TimeDistributed(encoder, name="per_stack")(x)
    mean = layers.MeanOverTime(name="mean_over_stacks")(features)
    return keras.Model(x, layers.L2Normalize(name=f"{name}_embedding")(mean))


def _cross_and_learn_views(method) -> dict[str, View]:
    c = method.config

    def motion(window):
        ex = _motion_window(window, c.input_size)
        if c.motion == "flow":
            return motion_stacks(ex["flow"], c.flow_frames, MOTION_STACKS)
        differences = motion_lib.frame_differences(ex["rgb"], grey=c.differences == "grey")
        return motion_stacks(differences, c.num_differences, MOTION_STACKS)

    return {
        "visual": _visual_view(method, c.input_size, c.eval_frames),
        "motion": View(_stack_mean(method.motion_net, MOTION_STACKS), motion),
    }


def _muscles_views(method) -> dict[str, View]:
    c = method.config
    return {"visual": _visual_view(method, c.input_size, c.clip_frames)}


# A pose teacher describes a window by the mean of its z_p over this many frames spread over it.
POSE_FRAMES = 8


def _cv_mim_views(method) -> dict[str, View]:
    """CV-MIM's representation (z_p, L2-normalised per frame) averaged over `POSE_FRAMES` frames of the window's
    normalised 2D keypoints: what a student learns to see in RGB that the teacher saw in the pose.
    """

    def inputs(window):
        return pose_lib.normalize(_uniform(window["pose2d"], POSE_FRAMES))

    return {"visual": View(_stack_mean(method.backbone, POSE_FRAMES, name="pose"), inputs)}


VIEWS = {
    "modist": _modist_views,
    "cross_and_learn": _cross_and_learn_views,
    "muscles": _muscles_views,
    "cv_mim": _cv_mim_views,
}


def read_run(workdir: str) -> dict:
    """The `run.json` of a pretraining workdir, with a clear error when there is none."""
    path = os.path.join(workdir, loop.RUN_FILE)
    if not os.path.isdir(workdir):
        raise TeacherError(f"teacher workdir {workdir!r} does not exist")
    if not os.path.exists(path):
        raise TeacherError(f"{workdir!r} is not a pretraining workdir: it has no {loop.RUN_FILE}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_teacher(workdir: str) -> Teacher:
    """The teacher pretrained in `workdir`, its latest checkpoint restored, every variable frozen.

    Raises:
      TeacherError: no such workdir, no run or checkpoint in it, or a method that cannot teach.
    """
    run = read_run(workdir)
    name = run.get("method")
    if name not in TEACHERS:
        raise TeacherError(
            f"{workdir!r} holds a {name!r} run; an RGB student learns from {', '.join(TEACHERS)}"
        )
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    if latest is None:
        raise TeacherError(f"{workdir!r} has no checkpoint yet; pretrain first")
    try:
        config = loader.from_run(run)
    except ValueError as e:
        raise TeacherError(f"{workdir!r}: {e}") from e
    method = registry.get(name).build(config)
    checkpoint = tf.train.Checkpoint(**method.checkpoint_items())
    try:
        status = checkpoint.restore(latest)
        status.assert_existing_objects_matched()  # every network weight came from the checkpoint
    except (AssertionError, ValueError) as e:
        raise TeacherError(f"{latest} does not match the {name}/{run['size']} networks: {e}") from e
    status.expect_partial()  # optimizer slots are not needed to teach
    return from_method(method, workdir, latest)


def from_method(method: base.Method, workdir: str = "", checkpoint: str = "") -> Teacher:
    """`method`'s views as a frozen teacher, with the weights it has now (at initialisation when just built: the
    baseline a pretrained teacher is compared with).

    Raises:
      TeacherError: a method that cannot teach.
    """
    if method.name not in TEACHERS:
        raise TeacherError(
            f"a {method.name!r} method cannot teach; an RGB student learns from {', '.join(TEACHERS)}"
        )
    views = VIEWS[method.name](method)
    for view in views.values():
        view.model.trainable = False
    return Teacher(method, views, workdir, checkpoint)
