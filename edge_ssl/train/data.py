"""Where pretraining data comes from: the synthetic world, a user's folder, or a TFDS dataset, as the per-pipeline
datasets the loop distributes (sharded, repeated, shuffled, augmented by the method's `prepare`)."""

import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from edge_ssl import tracing
from edge_ssl.data import augment, motion, pose_folder, synthetic, video_folder
from edge_ssl.data.datasets import synthetic_world
from edge_ssl.losses import contrastive
from edge_ssl.methods import base

# A pose method's synthetic world: the same performances with its cameras all around the person (CV-MIM learns what
# stays the same across views, and the rendered world's frontal arc gives it little to learn from), generated on the
# fly without pixels.
POSE_WORLD_ARC_DEG = 360.0


def pose_world(size: str, split: str) -> tf.data.Dataset:
    """The synthetic world of a pose method (`POSE_WORLD_ARC_DEG`), generated on the fly without rendering."""
    config = synthetic.get_config(size, camera_arc_deg=POSE_WORLD_ARC_DEG)
    return synthetic.as_dataset(config, split, render=False)


class DataError(ValueError):
    """The data cannot feed the method: missing, unreadable, or lacking keys the method needs."""


def source_dataset(
    data: str, method: base.Method, data_dir: str | None, split: str, cache_dir: str | None
) -> tf.data.Dataset:
    """The finite, unprepared dataset named by `data`, checked against what the method needs.

    Args:
      data: "synthetic" (the world sized for the config, built on first use; for a pose method, `pose_world`),
        "synthetic_world/<size>" (that rendered world, built on first use), an existing folder (videos; a pose
        folder for a pose method needing only its keypoints), or the name of a prepared TFDS dataset.
      method: the method to feed; its `input_keys` must all be available (flow is computed when missing).
      data_dir: TFDS data directory (the synthetic world is built there on first use).
      split: the TFDS split ("pretrain" for the synthetic world).
      cache_dir: for folders: decoded frames and optical flow are cached here.

    Raises:
      DataError: before any training, with what is wrong.
    """
    needs = set(method.input_keys)
    if data == "synthetic":
        size = method.config.world
        if method.modality == "pose":
            return pose_world(size, split)
        return synthetic_world.load(size, split, data_dir=data_dir)
    if os.path.isdir(data):
        if method.modality == "pose":
            available = {"pose2d", "confidence"}
            if not needs <= available:
                raise DataError(
                    f"{method.name} needs {sorted(needs - available)}, which a pose folder does not have "
                    "(only the synthetic world provides them)"
                )
            return pose_folder.pose_dataset(
                data, clip_len=16, mode="random", seed=method.config.seed
            )
        available = {"rgb", "flow"}
        if not needs <= available:
            raise DataError(
                f"{method.name} needs {sorted(needs - available)}, which a video folder does not have "
                "(body signals, 2D and 3D poses come only with the synthetic world)"
            )
        flow_cache = (
            motion.FlowCache(os.path.join(cache_dir, "flow"))
            if "flow" in needs and cache_dir
            else None
        )
        if "flow" in needs and flow_cache is None:
            raise DataError(
                f"{method.name} needs optical flow: give a cache folder (cache_dir) so it is computed once "
                "per video"
            )
        return video_folder.video_dataset(
            data,
            clip_len=16,
            mode="random",
            seed=method.config.seed,
            cache_dir=os.path.join(cache_dir, "frames") if cache_dir else None,
            flow_cache=flow_cache,
        )
    world, _, size = data.partition("/")
    if world == "synthetic_world":
        if size not in synthetic.SIZES:
            raise DataError(
                f"{data!r}: the synthetic world's sizes are {', '.join(synthetic.SIZES)}"
            )
        # The world named by size (a student distilled on its teacher's world): built on first use like "synthetic".
        return synthetic_world.load(size, split, data_dir=data_dir)
    if data.startswith(("/", ".", "~")) or data.count("/") > 1:
        raise DataError(f"data folder {data!r} does not exist")
    return _tfds_dataset(data, method, data_dir, split)


def _tfds_dataset(
    data: str, method: base.Method, data_dir: str | None, split: str
) -> tf.data.Dataset:
    """A prepared TFDS dataset by name, checked against the method's keys, in the contract (float32 rgb)."""
    try:
        ds = tfds.load(data, split=split, data_dir=data_dir, download=False)
    except Exception as e:  # TFDS raises several types for an unknown or unprepared dataset
        # Only TFDS's first line: the rest lists every dataset TFDS knows, hundreds of lines that bury the point.
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(
            f"{data!r} is not an existing folder, and TFDS cannot load it from "
            f"{data_dir or 'its default data directory'} ({reason}); give 'synthetic', a folder of videos (poses "
            "for cv_mim), or the name of a TFDS dataset prepared in that data directory"
        ) from e
    missing = (set(method.input_keys) - {"flow"}) - set(ds.element_spec)
    if missing:
        raise DataError(f"{data} lacks {sorted(missing)}, which {method.name} needs")
    if "rgb" in ds.element_spec:
        # TFDS stores video as uint8 (the synthetic world read by name too); the contract is float32 in [0, 1].
        ds = synthetic.map_to_contract(ds)
    return ds


SHUFFLE_MEMORY = 256 * 2**20  # bytes the shuffle buffer may hold per input pipeline


def label_classes(data: str, data_dir: str | None) -> int:
    """How many action classes `data` (as `source_dataset` takes it) labels its clips with: the synthetic world's
    actions, a TFDS dataset's ClassLabel `label` (the world read by its TFDS name included), or 0 (a folder of
    videos, an unknown name, or a dataset without such a label)."""
    if os.path.isdir(data):
        return 0
    if data == "synthetic":
        return synthetic.NUM_ACTIONS
    try:
        features = tfds.builder(data, data_dir=data_dir).info.features
    except Exception:  # pylint: disable=broad-except
        return 0  # an unknown name: `source_dataset` says so, in one line
    label = features["label"] if "label" in features else None
    return int(getattr(label, "num_classes", 0) or 0)


def label_flip(data: str, num_classes: int) -> tuple[int, ...]:
    """The synthetic world's ACTION_FLIP when `data` is the world labelled with its actions (a flipped clip mirrors
    its label), else () (flips keep labels)."""
    world = data == "synthetic" or data.startswith("synthetic_world")
    if world and num_classes == synthetic.NUM_ACTIONS:
        return tuple(int(i) for i in synthetic.ACTION_FLIP)
    return ()


def shuffle_buffer_size(
    element_spec: dict[str, tf.TensorSpec],
    keys: set[str],
    memory: int = SHUFFLE_MEMORY,
    most: int = 1024,
) -> int:
    """How many examples to shuffle over: `most`, or fewer when they would take more than `memory` bytes.

    Video clips are large (a 16 x 112 x 112 float clip is 2.4 MB), poses small; an unknown length counts as 64 frames.
    """
    size = 0
    for key in keys & set(element_spec):
        spec = element_spec[key]
        shape = [64 if d is None else d for d in spec.shape.as_list()]
        size += int(np.prod(shape, dtype=np.int64)) * spec.dtype.size
    return int(max(16, min(most, memory // max(size, 1))))


def check_queues(method: base.Method, num_examples: int) -> list[str]:
    """Warns (absl logging) about each key queue of `method` that is not smaller than a dataset of `num_examples`.

    A MoCo-style queue (MoDist, Muscles) with as many keys as there are examples holds about an epoch of keys, often
    one of the query's own clip among them: the positive then also sits in the queue as a negative. The queues are
    those among the method's `checkpoint_items()`.

    Returns:
      The warnings logged, one per such queue.
    """
    warnings = []
    for name, item in sorted(method.checkpoint_items().items()):
        if isinstance(item, contrastive.KeyQueue) and item.size >= num_examples:
            warnings.append(
                f"{method.name}'s {name} holds {item.size} keys, not fewer than the {num_examples} examples it "
                f"trains on: a query's own clip from the last epoch is often a negative in it; use a smaller "
                f"queue (config field queue_size=N with N < {num_examples}) or more data"
            )
            logging.warning("%s", warnings[-1])
    return warnings


def make_dataset_fn(
    source: tf.data.Dataset, method: base.Method, shuffle_buffer: int | None = None
) -> Callable[[tf.distribute.InputContext, int], tf.data.Dataset]:
    """Per input pipeline: its shard of `source`, repeated, shuffled, given seeds, prepared by the method.

    Deterministic for a given seed, and `skip` examples are dropped before the (costly) preparation, so a resumed run
    continues the stream where the interrupted one stopped. The shuffle buffer is sized to the examples' memory
    unless given. When `source`'s size is known, a key queue of the method that is not smaller is warned about
    (`check_queues`).
    """
    num_examples = int(source.cardinality())
    if num_examples >= 0:  # not INFINITE (-1) or UNKNOWN (-2), as a filtered folder's is
        check_queues(method, num_examples)
    needs_flow = "flow" in method.input_keys and "flow" not in source.element_spec
    seed = method.config.seed
    if shuffle_buffer is None:
        shuffle_buffer = shuffle_buffer_size(source.element_spec, set(method.input_keys))

    def dataset_fn(ctx: tf.distribute.InputContext, skip: int = 0) -> tf.data.Dataset:
        ds = source.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
        keys = set(method.input_keys)
        ds = ds.map(tracing.as_written(lambda ex: {k: v for k, v in ex.items() if k in keys}))
        ds = ds.repeat().shuffle(shuffle_buffer, seed=seed + ctx.input_pipeline_id)
        ds = augment.with_seeds(ds, seed + 1000 * (ctx.input_pipeline_id + 1)).skip(skip)
        if needs_flow:
            ds = ds.map(
                tracing.as_written(lambda ex, s: (motion.add_flow(ex), s)),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        return ds.map(method.prepare, num_parallel_calls=tf.data.AUTOTUNE)

    return dataset_fn
