"""Distills a pretrained teacher into a compact RGB-only streaming student, on the pretraining engine.

Example:
  ./run.sh python -m edge_ssl.cli.distill --teacher=/tmp/modist_tiny --student=tiny --data=synthetic \\
      --workdir=/tmp/student_tiny --steps=200

`--teacher` is a pretraining workdir (Cross and Learn, MoDist or Muscles). The run has the engine's checkpoints,
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
    """Classes for the logit term: the synthetic world's actions, a TFDS dataset's labels, or 0 (none)."""
    if not FLAGS.labels:
        return 0
    from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top

    if FLAGS.data == "synthetic":
        return synthetic.NUM_ACTIONS
    return 0


def main(argv: list[str]) -> int:
    from edge_ssl.configs import loader  # pylint: disable=g-import-not-at-top
    from edge_ssl.distill import distiller  # pylint: disable=g-import-not-at-top

    def make_config(overrides):
        config = distiller.DistillConfig(
            teacher=FLAGS.teacher or "", size=FLAGS.student, num_classes=_num_classes()
        )
        return loader.apply_overrides(config, overrides)

    return training.run(argv, make_config, distiller.build)


if __name__ == "__main__":
    flags.mark_flags_as_required(
        ["teacher", "workdir", "steps"]
    )  # here, so tests can import this module
    app.run(main)
