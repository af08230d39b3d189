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

import sys

import tensorflow as tf
from absl import app, flags, logging

from edge_ssl.configs import loader
from edge_ssl.train import strategy as strategy_lib

FLAGS = flags.FLAGS
flags.DEFINE_enum("method", None, list(loader.CONFIGS_METHODS), "Self-supervised method.")
flags.DEFINE_enum(
    "config", "tiny", list(loader.SIZES), "Config size: tiny (tests), small (CPU demo), paper."
)
flags.DEFINE_string(
    "data", "synthetic", "'synthetic', a folder of videos (poses for cv_mim), or a TFDS name."
)
flags.DEFINE_string(
    "data_dir", None, "TFDS data directory (the synthetic world is built there on first use)."
)
flags.DEFINE_string("split", "pretrain", "TFDS split to train on.")
flags.DEFINE_string(
    "cache_dir", None, "For folders: where decoded frames and optical flow are cached."
)
flags.DEFINE_string(
    "workdir", None, "Checkpoints, TensorBoard logs, run.json and the exported backbone."
)
flags.DEFINE_integer(
    "steps", None, "Total training steps (a resumed run continues up to this many)."
)
flags.DEFINE_integer("global_batch_size", None, "Batch over all replicas (default: the config's).")
flags.DEFINE_enum("strategy", "auto", list(strategy_lib.STRATEGIES), "tf.distribute strategy.")
flags.DEFINE_integer(
    "num_cpu_replicas", 0, "Split the CPU into this many logical replicas (mirrored)."
)
flags.DEFINE_enum(
    "precision",
    None,
    ["float32", "mixed_float16", "mixed_bfloat16"],
    "Mixed precision (default: the config's, float32). mixed_float16 adds dynamic loss scaling.",
)
flags.DEFINE_float("clip_norm", None, "Clip each optimizer's global-batch gradient to this norm.")
flags.DEFINE_multi_string("config_override", [], "key=value overriding a config field; repeatable.")
flags.DEFINE_integer("checkpoint_every", 100, "Steps between checkpoints.")
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.")
flags.DEFINE_integer("log_every", 10, "Steps between progress lines and TensorBoard scalars.")
flags.DEFINE_bool(
    "deterministic",
    False,
    "Deterministic ops (tf.config.experimental.enable_op_determinism): a resumed run then ends with the same "
    "weights as an uninterrupted one. Slower.",
)

NAN_EXIT = 3


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # The strategy first: logical CPUs and collectives must be set before TensorFlow runs anything.
    strategy = strategy_lib.make_strategy(FLAGS.strategy, FLAGS.num_cpu_replicas)
    # Imported after the strategy exists, as they may create TensorFlow state.
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.methods import registry  # pylint: disable=g-import-not-at-top
    from edge_ssl.train import data, loop  # pylint: disable=g-import-not-at-top

    try:
        overrides = list(FLAGS.config_override) + [f"steps={FLAGS.steps}"]
        if FLAGS.global_batch_size:
            overrides.append(f"global_batch_size={FLAGS.global_batch_size}")
        if FLAGS.precision:
            overrides.append(f"precision={FLAGS.precision}")
        if FLAGS.clip_norm is not None:
            overrides.append(f"clip_norm={FLAGS.clip_norm}")
        config = loader.load(FLAGS.method, FLAGS.config, overrides)
        options = loop.TrainOptions(
            steps=FLAGS.steps,
            global_batch_size=config.global_batch_size,
            checkpoint_every=FLAGS.checkpoint_every,
            keep_checkpoints=FLAGS.keep_checkpoints,
            log_every=FLAGS.log_every,
        )
        if options.global_batch_size % strategy.num_replicas_in_sync:
            raise ValueError(
                f"--global_batch_size={options.global_batch_size} does not divide among "
                f"{strategy.num_replicas_in_sync} replicas"
            )
        loop.check_workdir_compatible(FLAGS.workdir, config)
        if FLAGS.deterministic:
            tf.config.experimental.enable_op_determinism()
        # Initial weights and the shuffle order follow the config's seed (--config_override=seed=N).
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            method = registry.get(FLAGS.method).build(config)
        source = data.source_dataset(
            FLAGS.data, method, FLAGS.data_dir, FLAGS.split, FLAGS.cache_dir
        )
    except (ValueError, data.DataError, loop.WorkdirError) as e:
        raise app.UsageError(str(e)) from e
    print(
        f"{FLAGS.method}/{FLAGS.config} on {FLAGS.data}: {strategy.num_replicas_in_sync} replica(s), "
        f"global batch {options.global_batch_size}, {options.steps} steps -> {FLAGS.workdir}"
    )
    try:
        loop.train(method, data.make_dataset_fn(source, method), FLAGS.workdir, options, strategy)
    except loop.NonFiniteLossError as e:
        logging.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return NAN_EXIT
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required(
        ["method", "workdir", "steps"]
    )  # here, so tests can import this module
    app.run(main)
