"""Pretrains a self-supervised method on the synthetic world, a folder of videos (or poses), or a TFDS dataset.

Example:
  ./run.sh python -m edge_ssl.cli.pretrain --method=modist --config=tiny --data=synthetic \\
      --workdir=/tmp/modist_tiny --steps=50 --global_batch_size=16
  # two logical CPU replicas on one machine:
  ./run.sh python -m edge_ssl.cli.pretrain --method=cross_and_learn --config=tiny --data=synthetic \\
      --workdir=/tmp/cl --steps=50 --global_batch_size=16 --strategy=mirrored --num_cpu_replicas=2

Running it again with the same --workdir resumes from the latest checkpoint. SIGTERM or Ctrl-C saves a checkpoint and
exits cleanly; a NaN or Inf loss stops the run (exit status 3) naming the step and the loss term.
"""

from absl import app, flags

from edge_ssl.cli import training
from edge_ssl.configs import loader

FLAGS = flags.FLAGS
flags.DEFINE_enum("method", None, list(loader.CONFIGS_METHODS), "Self-supervised method.")
flags.DEFINE_enum(
    "config", "tiny", list(loader.PRESETS), "Config preset: tiny (tests), small (CPU demo), paper."
)
training.define_flags(
    "'synthetic' (cv_mim: its pose world, cameras all around), a folder of videos (video methods; cv_mim needs the "
    "cross-view pairs, 3D poses and cameras only the synthetic world has), or a TFDS name."
)

NAN_EXIT = training.NAN_EXIT


def main(argv: list[str]) -> int:
    from edge_ssl.methods import registry  # pylint: disable=g-import-not-at-top

    return training.run(
        argv,
        lambda overrides: loader.load(FLAGS.method, FLAGS.config, overrides),
        lambda config: registry.get(FLAGS.method).build(config),
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(
        ["method", "workdir", "steps"]
    )  # here, so tests can import this module
    app.run(main)
