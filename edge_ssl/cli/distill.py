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
    """Classes for the logit term: the data's (`train.data.label_classes`), or 0 with `--nolabels`."""
    from edge_ssl.train import data  # pylint: disable=g-import-not-at-top

    return data.label_classes(FLAGS.data, FLAGS.data_dir) if FLAGS.labels else 0


def main(argv: list[str]) -> int:
    from edge_ssl.configs import loader  # pylint: disable=g-import-not-at-top
    from edge_ssl.distill import distiller  # pylint: disable=g-import-not-at-top
    from edge_ssl.train import data  # pylint: disable=g-import-not-at-top

    def make_config(overrides):
        num_classes = _num_classes()
        config = distiller.DistillConfig(
            teacher=FLAGS.teacher or "",
            student=FLAGS.student,
            num_classes=num_classes,
            label_flip=data.label_flip(FLAGS.data, num_classes),
        )
        return loader.apply_overrides(config, overrides)

    return training.run(argv, make_config, distiller.build)


if __name__ == "__main__":
    flags.mark_flags_as_required(
        ["teacher", "workdir", "steps"]
    )  # here, so tests can import this module
    app.run(main)
