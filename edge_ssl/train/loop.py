"""The training loop for any Method: data, model, restore, loop, evaluation, in that order.

The method owns its step (`train_step`, which may use several optimizers); this loop owns distribution (the step runs
per replica under `strategy.run`, batches are split by `distribute_datasets_from_function`), checkpoints
(`tf.train.CheckpointManager`: step and every method item; on resume the input pipeline skips what the finished
steps consumed),
summaries, progress, the NaN guard and clean stops on SIGTERM / SIGINT.

Checkpoints are written by CheckpointManager, which writes a checkpoint's files first and moves the `checkpoint` index
to it last, so a crash while writing leaves the previous checkpoint as the latest one.
"""

import contextlib
import dataclasses
import json
import math
import os
import resource
import shutil
import signal
import time
from collections.abc import Callable

import tensorflow as tf
from absl import logging

from edge_ssl import files, tracing
from edge_ssl.methods import base

RUN_FILE = "run.json"


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; the message names the step and the loss term."""


class WorkdirError(ValueError):
    """The work directory belongs to another run (another method, or another config)."""


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    steps: int
    global_batch_size: int
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 10
    export_backbone: bool = True

    def __post_init__(self):
        for name in (
            "steps",
            "global_batch_size",
            "checkpoint_every",
            "keep_checkpoints",
            "log_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclasses.dataclass
class TrainResult:
    step: int
    losses: dict[str, float]
    interrupted: bool
    seconds: float
    clips_per_second: float
    checkpoint: str | None
    backbone_dir: str | None
    # (step, losses) at every logged step of this process's run: the training curve.
    history: list[tuple[int, dict[str, float]]] = dataclasses.field(default_factory=list)


def check_global_batch(global_batch_size: int, strategy: tf.distribute.Strategy) -> None:
    """Raises ValueError when the global batch does not divide evenly among the strategy's replicas."""
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(
            f"a global batch of {global_batch_size} does not divide among {replicas} replicas; "
            f"use a multiple of {replicas}"
        )


def check_workdir_compatible(workdir: str, config: base.MethodConfig) -> None:
    """Raises WorkdirError when `workdir` holds another method's run (nothing is written)."""
    path = os.path.join(workdir, RUN_FILE)
    if not os.path.exists(path):
        if os.path.isdir(os.path.join(workdir, "checkpoints")):
            raise WorkdirError(
                f"{workdir} holds checkpoints but no {RUN_FILE}; use an empty workdir"
            )
        return
    with open(path, encoding="utf-8") as f:
        previous = json.load(f)
    if previous.get("method") != config.method:
        raise WorkdirError(
            f"{workdir} holds a {previous.get('method')!r} run; {config.method!r} needs another workdir"
        )
    for key, value in config.identity().items():
        recorded = previous.get(key, previous.get("size"))  # `size`: runs recorded before the name
        if recorded != value:
            raise WorkdirError(
                f"{workdir} holds a {config.method} run with {key} {recorded!r}, not {value!r}; use another workdir"
            )
    teacher = getattr(config, "teacher", None)
    previous_teacher = previous.get("config", {}).get("teacher")
    if (
        teacher
        and previous_teacher
        and os.path.abspath(previous_teacher) != os.path.abspath(teacher)
    ):
        raise WorkdirError(
            f"{workdir} holds a student of teacher {previous_teacher!r}, not {teacher!r}; use another workdir"
        )


def _check_optimizer_state(checkpoint: str, method: base.Method) -> None:
    """Raises WorkdirError when `checkpoint` lacks the state of an optimizer `method` trains with.

    The restore is partial (`expect_partial`), and each optimizer's state is saved under its name, so a run resumed
    under another optimizer (Cross and Learn's `small` preset moved from SGD to Adam) would keep its weights and start
    the optimizer anew without a word.
    """
    saved = {name.split("/", 1)[0] for name, _ in tf.train.list_variables(checkpoint)}
    missing = sorted(key for key in map(base.optimizer_key, method.optimizers) if key not in saved)
    if missing:
        found = sorted(name for name in saved if name.startswith(base.optimizer_key("")))
        raise WorkdirError(
            f"{checkpoint} holds the state of {', '.join(found) or 'no optimizer'}, not of {', '.join(missing)} "
            f"that this config trains with (another `optimizer`?); resume with the config it was trained with, or "
            f"use another workdir"
        )


def check_workdir(workdir: str, config: base.MethodConfig) -> bool:
    """Claims `workdir` for this method, or checks an earlier claim; True when a run is being resumed.

    Raises:
      WorkdirError: the folder holds another method's run, or the same method with another preset (a distillation:
        another student variant or teacher).
    """
    check_workdir_compatible(workdir, config)
    path = os.path.join(workdir, RUN_FILE)
    if os.path.exists(path):
        return True
    record = {"method": config.method, **config.identity(), "config": dataclasses.asdict(config)}
    files.write_json_atomic(path, record)
    return False


def make_step_fn(
    method: base.Method, strategy: tf.distribute.Strategy, global_batch_size: int
) -> Callable:
    """One distributed step: the method's `train_step` on every replica, each loss summed over replicas.

    Each replica returns its share of the global mean, so the sum is the loss of the global batch.
    """

    @tracing.function
    def step(batch):
        per_replica = strategy.run(method.train_step, args=(batch, global_batch_size))
        return {
            name: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for name, v in per_replica.items()
        }

    return step


@contextlib.contextmanager
def _stop_on_signals():
    """Yields a function telling whether SIGTERM or SIGINT arrived; handlers are restored afterwards."""
    received = []

    def handler(signum, frame):  # pylint: disable=unused-argument
        received.append(signum)
        logging.warning(
            "received signal %d: saving a checkpoint and stopping after this step", signum
        )

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: signals stay with their owner
            pass
    try:
        yield lambda: bool(received)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _learning_rate(method: base.Method, step: int) -> float | None:
    """The first optimizer's learning rate at `step` (a schedule is evaluated there)."""
    for optimizer in method.optimizers.values():
        lr = optimizer.learning_rate
        return float(lr(step)) if callable(lr) else float(lr.numpy())
    return None


def _worker(strategy: tf.distribute.Strategy) -> tuple[bool, str]:
    """(whether this process is the chief, a name for it). Single-process strategies are always the chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None) or 0
    if not task_type:
        return True, "chief"
    chief_is_worker_0 = "chief" not in resolver.cluster_spec().as_dict()
    is_chief = task_type == "chief" or (
        task_type == "worker" and task_id == 0 and chief_is_worker_0
    )
    return is_chief, f"{task_type}_{task_id}"


def export_backbone(method: base.Method, directory: str) -> str:
    """Writes the backbone as a SavedModel at `directory`, replacing an older one only once the new one is whole."""
    tmp = directory + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    method.save_backbone(tmp)
    files.replace_directory(tmp, directory)
    return directory


def train(
    method: base.Method,
    dataset_fn: Callable[[tf.distribute.InputContext, int], tf.data.Dataset],
    workdir: str,
    options: TrainOptions,
    strategy: tf.distribute.Strategy,
    printer: Callable[[str], None] = print,
) -> TrainResult:
    """Trains `method` (built under `strategy.scope()`) until `options.steps`, resuming from `workdir` if it can.

    Args:
      method: the method, its variables created in the strategy's scope.
      dataset_fn: (input context, examples to skip) -> an infinite, deterministic dataset of prepared, unbatched
        examples for that input pipeline (already sharded for it), starting after the skipped ones; the loop batches
        it by the per-replica batch size. On resume the loop skips what the finished steps consumed, so a resumed
        run sees the same examples as an uninterrupted one.
      workdir: where `run.json`, `checkpoints/`, `tensorboard/` and `backbone/` go.
      options: steps, global batch, checkpoint and logging intervals.
      strategy: the strategy the method was built under.
      printer: where progress lines go (the terminal by default).

    Returns:
      What happened, with the last losses.

    Raises:
      NonFiniteLossError: a loss became NaN or Inf; the last good checkpoint is kept.
      WorkdirError: the workdir holds another method's run, or checkpoints of networks of another shape or of
        another optimizer.
      ValueError: the global batch does not divide among the replicas.
    """
    check_global_batch(options.global_batch_size, strategy)
    os.makedirs(workdir, exist_ok=True)
    # In a multi-worker run every worker saves (saving is collective), but only the chief's files are kept: the
    # others write to a scratch folder removed at the end, and every worker restores from the chief's checkpoints.
    is_chief, worker_name = _worker(strategy)
    if is_chief:
        check_workdir(workdir, method.config)
        own_dir = workdir
    else:
        check_workdir_compatible(workdir, method.config)
        own_dir = os.path.join(workdir, "workers", worker_name)
    shared_checkpoints = os.path.join(workdir, "checkpoints")

    # Restore: the step, and every item of the method (models, optimizers, momentum encoders, queues).
    with strategy.scope():
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        method.build_optimizers()
    checkpoint = tf.train.Checkpoint(step=step_var, **method.checkpoint_items())
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(own_dir, "checkpoints"), max_to_keep=options.keep_checkpoints
    )
    latest = tf.train.latest_checkpoint(shared_checkpoints)
    if latest:
        try:
            checkpoint.restore(latest).expect_partial()
        except ValueError as e:
            # TensorFlow's "Received incompatible tensor with shape ..." names the variable but not the cause.
            raise WorkdirError(
                f"{latest} was written by {method.config.method} networks of another shape than this config "
                f"builds (a changed config field?); resume with the config it was trained with, or use another "
                f"workdir: {e}"
            ) from e
        _check_optimizer_state(latest, method)
        printer(f"resumed from {latest} at step {int(step_var.numpy())}")
    start_step = int(step_var.numpy())

    # Data, positioned after what the finished steps consumed.
    def input_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        batch = ctx.get_per_replica_batch_size(options.global_batch_size)
        batches_per_step = ctx.num_replicas_in_sync // ctx.num_input_pipelines
        skip = start_step * batch * batches_per_step
        return dataset_fn(ctx, skip).batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    iterator = iter(strategy.distribute_datasets_from_function(input_fn))

    def save() -> str:
        return manager.save(checkpoint_number=int(step_var.numpy()))

    # Loop.
    step_fn = make_step_fn(method, strategy, options.global_batch_size)
    writer = (
        tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
        if is_chief
        else tf.summary.create_noop_writer()
    )
    start = time.monotonic()
    last_time, last_step = start, start_step
    losses: dict[str, float] = {}
    interrupted = False
    history: list[tuple[int, dict[str, float]]] = []
    path = latest
    with _stop_on_signals() as stop_requested, writer.as_default():
        while int(step_var.numpy()) < options.steps:
            step_start = time.monotonic()
            values = step_fn(next(iterator))
            losses = {name: float(v) for name, v in values.items()}
            step = int(step_var.assign_add(1).numpy())
            bad = [name for name, v in losses.items() if not math.isfinite(v)]
            if bad:
                raise NonFiniteLossError(
                    f"step {step}: loss {bad[0]!r} is {losses[bad[0]]} ({', '.join(bad)} not finite); stopped "
                    f"without saving; the last good checkpoint is {path or 'none'}"
                )
            step_time = time.monotonic() - step_start
            if step % options.log_every == 0 or step == options.steps:
                now = time.monotonic()
                rate = (step - last_step) * options.global_batch_size / max(now - last_time, 1e-9)
                last_time, last_step = now, step
                history.append((step, losses))
                for name, value in losses.items():
                    tf.summary.scalar(f"loss/{name}", value, step=step)
                lr = _learning_rate(method, step)
                if lr is not None:
                    tf.summary.scalar("learning_rate", lr, step=step)
                tf.summary.scalar("clips_per_second", rate, step=step)
                tf.summary.scalar("step_time", step_time, step=step)
                eta = (options.steps - step) * options.global_batch_size / max(rate, 1e-9)
                shown = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
                printer(
                    f"step {step}/{options.steps} {shown} | {rate:.1f} clips/s | eta {eta:.0f}s"
                )
            if step % options.checkpoint_every == 0:
                path = save()
            if stop_requested():
                interrupted = True
                break
        if int(step_var.numpy()) != start_step and (
            path is None or not path.endswith(f"-{int(step_var.numpy())}")
        ):
            path = save()
    seconds = time.monotonic() - start
    done = int(step_var.numpy())
    backbone_dir = None
    if options.export_backbone and not interrupted:
        backbone_dir = export_backbone(method, os.path.join(own_dir, "backbone"))
    clips = (done - start_step) * options.global_batch_size / max(seconds, 1e-9)
    if not is_chief:
        shutil.rmtree(own_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(own_dir))  # "workers/", once the last scratch folder is gone
        path = path and path.replace(own_dir, workdir)
        backbone_dir = backbone_dir and os.path.join(workdir, "backbone")
    result = TrainResult(done, losses, interrupted, seconds, clips, path, backbone_dir, history)
    printer(summary(result, options, worker_name if not is_chief else None))
    return result


def _peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summary(result: TrainResult, options: TrainOptions, worker: str | None = None) -> str:
    """The end-of-run summary: a few lines that fit on one screen."""
    state = "stopped by a signal" if result.interrupted else "finished"
    lines = [
        f"{state}{f' ({worker})' if worker else ''} at step {result.step}/{options.steps} "
        f"in {result.seconds:.1f}s, {result.clips_per_second:.1f} clips/s, peak memory {_peak_rss_mib():.0f} MiB",
        "  losses     " + " ".join(f"{k}={v:.5g}" for k, v in result.losses.items()),
        f"  checkpoint {result.checkpoint or '-'}",
        f"  backbone   {result.backbone_dir or '-'}",
    ]
    if result.interrupted:
        lines.append("  run the same command again to resume")
    return "\n".join(lines)
