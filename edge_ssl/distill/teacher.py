"""A pretrained method, loaded frozen from its pretraining workdir, as a distillation teacher.

A teacher gives, for one RGB window (and its optical flow, or its 2D keypoints, when the teacher needs them), the
inputs of each of its views, and embeds them with `training=False`:
- `visual`: the method's backbone (MoDist's visual pathway, Cross and Learn's RGB stream averaged over frames,
  Muscles' frame encoder averaged over frames, CV-MIM's z_p of the window's keypoints averaged over frames: a pose
  teacher, whose student learns from RGB what the teacher read from the pose).
- `motion`: what the teacher saw in motion, for the student's motion-awareness term: MoDist's motion pathway on flow
  (or frame differences), Cross and Learn's motion stream averaged over flow or difference stacks spread over the
  window. Muscles has no motion pathway.
MoDist's pathways see clips at their training strides, averaged over `eval_clips` clips spread over the window.
Each method declares its views (`Method.teacher_views`, built from `edge_ssl.methods.views`); teachers' inputs have
fixed sizes, the window subsampled in time and resized to them, flow vectors scaled with the image.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from edge_ssl.configs import loader
from edge_ssl.data import motion as motion_lib
from edge_ssl.methods import base, registry
from edge_ssl.methods import views as views_lib
from edge_ssl.train import loop, optim

# Every method can teach an RGB student: video methods from the clip, CV-MIM from the clip's 2D keypoints (which the
# distillation data must then carry, as the synthetic world does).
TEACHERS = tuple(registry.METHODS)


class TeacherError(ValueError):
    """The teacher cannot be used: missing, not a pretraining run, an unknown method, or a pose teacher without poses."""


@dataclasses.dataclass
class Teacher:
    method: base.Method
    views: dict[str, views_lib.View]
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
        raise TeacherError(
            f"{latest} does not match the {name}/{config.preset} networks: {e}"
        ) from e
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
    try:
        views = method.teacher_views()
    except NotImplementedError as e:
        raise TeacherError(f"a {method.name!r} method cannot teach: {e}") from e
    for view in views.values():
        view.model.trainable = False
    return Teacher(method, views, workdir, checkpoint)
