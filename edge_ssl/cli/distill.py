"""Distills a pretrained teacher into a compact RGB-only streaming student, on the pretraining engine.

Example:
  ./run.sh python -m edge_ssl.cli.distill --teacher=/tmp/modist_tiny --student=tiny --data=synthetic \\
      --workdir=/tmp/student_tiny --steps=200

`--teacher` is a pretraining workdir of any method (CV-MIM's teaches from the clips' 2D keypoints, which the data
must carry, as the synthetic world does). The run has the engine's checkpoints,
resume, progress, TensorBoard and NaN guard, and writes the student as a SavedModel in WORKDIR/backbone, ready for
export. Labels in the data (the synthetic world's, or a TFDS dataset's `label`) add the logit term; `--nolabels`
turns it off.
"""

import os

from absl import app, flags

from edge_ssl.cli import training

FLAGS = flags.FLAGS
flags.DEFINE_string("teacher", None, "The teacher's pretraining workdir.")
flags.DEFINE_enum("student", "small", ["tiny", "small", "base"], "Student variant.")
flags.DEFINE_bool(
    "labels", True, "Use the data's action labels for the logit term when it has them."
)
training.define_flags("'synthetic', a folder of videos, or a TFDS name (RGB clips).")


def _num_classes() -> int:
    """Classes for the logit term: the synthetic world's actions, a TFDS dataset's `label` classes (the world read
    by its TFDS name included), or 0 (none: `--nolabels`, a video folder, or a dataset without a ClassLabel `label`).
    """
    if not FLAGS.labels or os.path.isdir(FLAGS.data):
        return 0
    if FLAGS.data == "synthetic":
        from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top

        return synthetic.NUM_ACTIONS
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

    del synthetic_world  # imported to register the world's builder: its name resolves before it is built
    try:
        features = tfds.builder(FLAGS.data, data_dir=FLAGS.data_dir).info.features
    except Exception:  # pylint: disable=broad-except
        return 0  # an unknown name: the data stage says so, in one line
    label = features["label"] if "label" in features else None
    return int(getattr(label, "num_classes", 0) or 0)


def _label_flip(num_classes: int) -> tuple[int, ...]:
    """The synthetic world's ACTION_FLIP when the labels are its actions (flipped clips mirror their labels)."""
    if num_classes and (FLAGS.data == "synthetic" or FLAGS.data.startswith("synthetic_world")):
        from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top

        if num_classes == synthetic.NUM_ACTIONS:
            return tuple(int(i) for i in synthetic.ACTION_FLIP)
    return ()


def main(argv: list[str]) -> int:
    from edge_ssl.configs import loader  # pylint: disable=g-import-not-at-top
    from edge_ssl.distill import distiller  # pylint: disable=g-import-not-at-top

    def make_config(overrides):
        num_classes = _num_classes()
        config = distiller.DistillConfig(
            teacher=FLAGS.teacher or "",
            size=FLAGS.student,
            num_classes=num_classes,
            label_flip=_label_flip(num_classes),
        )
        return loader.apply_overrides(config, overrides)

    return training.run(argv, make_config, distiller.build)


if __name__ == "__main__":
    flags.mark_flags_as_required(
        ["teacher", "workdir", "steps"]
    )  # here, so tests can import this module
    app.run(main)
