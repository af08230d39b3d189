"""What the pretrain and distill CLIs share: the engine's flags, and running a method on the engine from them.

Binaries only map flags onto library calls (DESIGN.md): the method is built by the caller's `build` function, the
data comes from `edge_ssl.train.data`, the loop is `edge_ssl.train.loop`.
"""

import sys
from collections.abc import Callable, Sequence

import tensorflow as tf
from absl import app, flags, logging

from edge_ssl import allocator
from edge_ssl.train import strategy as strategy_lib

FLAGS = flags.FLAGS
NAN_EXIT = 3  # exit status of a run stopped by a NaN or Inf loss


def define_flags(data_help: str) -> None:
    """The flags of a training binary (data, workdir, steps, distribution, precision, checkpoints)."""
    flags.DEFINE_string("data", "synthetic", data_help)
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
    flags.DEFINE_integer(
        "global_batch_size", None, "Batch over all replicas (default: the config's)."
    )
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
    flags.DEFINE_float(
        "clip_norm", None, "Clip each optimizer's global-batch gradient to this norm."
    )
    flags.DEFINE_multi_string(
        "config_override", [], "key=value overriding a config field; repeatable."
    )
    flags.DEFINE_integer("checkpoint_every", 100, "Steps between checkpoints.")
    flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.")
    flags.DEFINE_integer("log_every", 10, "Steps between progress lines and TensorBoard scalars.")
    flags.DEFINE_bool(
        "deterministic",
        False,
        "Deterministic ops (tf.config.experimental.enable_op_determinism): a resumed run then ends with the "
        "same weights as an uninterrupted one. Slower.",
    )


def overrides() -> list[str]:
    """The config overrides the flags ask for, `--config_override` first."""
    out = list(FLAGS.config_override) + [f"steps={FLAGS.steps}"]
    if FLAGS.global_batch_size:
        out.append(f"global_batch_size={FLAGS.global_batch_size}")
    if FLAGS.precision:
        out.append(f"precision={FLAGS.precision}")
    if FLAGS.clip_norm is not None:
        out.append(f"clip_norm={FLAGS.clip_norm}")
    return out


def run(argv: Sequence[str], make_config: Callable[[list[str]], object], build: Callable) -> int:
    """Builds the config and the method, checks everything a user can get wrong, then trains; the exit status.

    Args:
      argv: the binary's positional arguments (none are accepted).
      make_config: overrides -> the method's config (raises ValueError on a bad one).
      build: config -> the method (called in the strategy's scope; may raise ValueError).

    Raises:
      app.UsageError: a bad flag, config, data or workdir, before any training.
    """
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # The strategy first: logical CPUs and collectives must be set before TensorFlow runs anything.
    try:
        strategy = strategy_lib.make_strategy(FLAGS.strategy, FLAGS.num_cpu_replicas)
    except ValueError as e:
        # A strategy the flags cannot make here (multi_worker without TF_CONFIG, ...).
        raise app.UsageError(str(e)) from e
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.train import data, loop  # pylint: disable=g-import-not-at-top

    try:
        config = make_config(overrides())
        options = loop.TrainOptions(
            steps=FLAGS.steps,
            global_batch_size=config.global_batch_size,
            checkpoint_every=FLAGS.checkpoint_every,
            keep_checkpoints=FLAGS.keep_checkpoints,
            log_every=FLAGS.log_every,
        )
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    # Library errors speak of their arguments; here they are flags.
    try:
        loop.check_global_batch(options.global_batch_size, strategy)  # before building anything
    except ValueError as e:
        raise app.UsageError(f"--global_batch_size: {e}") from e
    try:
        loop.check_workdir_compatible(FLAGS.workdir, config)
    except loop.WorkdirError as e:
        raise app.UsageError(f"--workdir: {e}") from e
    try:
        if FLAGS.deterministic:
            tf.config.experimental.enable_op_determinism()
        # Initial weights and the shuffle order follow the config's seed (--config_override=seed=N).
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            method = build(config)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    try:
        source = data.source_dataset(
            FLAGS.data, method, FLAGS.data_dir, FLAGS.split, FLAGS.cache_dir
        )
    except ValueError as e:  # data.DataError, and a folder reader's own
        raise app.UsageError(f"--data: {e}") from e
    name = "/".join((config.method, *config.identity().values()))
    print(
        f"{name} on {FLAGS.data}: {strategy.num_replicas_in_sync} replica(s), "
        f"global batch {options.global_batch_size}, {options.steps} steps -> {FLAGS.workdir}"
    )
    if allocator.in_use() == "system":
        print(f"memory allocator: {allocator.describe()}")
    try:
        loop.train(method, data.make_dataset_fn(source, method), FLAGS.workdir, options, strategy)
    except loop.NonFiniteLossError as e:
        logging.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return NAN_EXIT
    except loop.WorkdirError as e:
        # Found when the checkpoint is restored: it was written by networks of another shape.
        raise app.UsageError(f"--workdir: {e} (a --config_override the run did not have?)") from e
    return 0
