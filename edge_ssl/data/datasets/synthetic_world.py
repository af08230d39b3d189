"""TFDS builder of the synthetic world (`edge_ssl.data.synthetic`): `synthetic_world/tiny`, `/small`, `/base`.

Builds and loads offline, since nothing is downloaded: frames are passed to `tfds.features.Video` as uint8 arrays
(stored as PNG frames, no ffmpeg). Example:

    from edge_ssl.data.datasets import synthetic_world
    ds = synthetic_world.load("tiny", "pretrain", data_dir="/tmp/tfds")   # builds on first use
    # later, in any process, without this module:
    tfds.builder_from_directory("/tmp/tfds/synthetic_world/tiny/2.0.0").as_dataset(split="heldout")
"""

import collections
import functools
import multiprocessing
import os
from concurrent import futures

import cv2
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from edge_ssl.data import synthetic

# Splits with at least this many pixels to draw are rendered in worker processes, one per available CPU: rendering
# and PNG encoding are single-threaded numpy and OpenCV (about 40 and 20 ms a `small` clip), so one process leaves
# the other cores idle. Smaller splits (the `tiny` world of tests) render in-process, where starting workers would
# cost more than it saves.
PARALLEL_MIN_PIXELS = 50_000_000
# zlib level of the stored PNG frames: OpenCV at level 3 encodes a `small` frame in ~1.3 ms (TensorFlow's encoder,
# TFDS's default, ~4.5 ms) into ~12% more bytes. PNG is lossless, so the frames read back are the same either way.
PNG_COMPRESSION = 3
# Performances rendered ahead of the writer, per worker: bounds the memory of finished but unwritten examples.
_AHEAD_PER_WORKER = 8


class SyntheticWorldConfig(tfds.core.BuilderConfig):
    """A size of the world and its seed."""

    def __init__(self, *, world: synthetic.WorldConfig, seed: int = 0, **kwargs):
        """Validates and stores the world config.

        Args:
          world: the world's sizes, e.g. `synthetic.get_config("tiny")`.
          seed: the world's seed.
          **kwargs: BuilderConfig arguments; `name` defaults to `world.name`.
        """
        if not isinstance(world, synthetic.WorldConfig):
            raise ValueError(f"world must be a synthetic.WorldConfig, got {type(world).__name__}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        kwargs.setdefault("name", world.name)
        kwargs.setdefault(
            "description",
            f"{world.num_frames} frames of {world.height}x{world.width}, {world.num_cameras} cameras per "
            f"performance, performances (pretrain, test, heldout) = {world.performances}, seed {seed}.",
        )
        super().__init__(**kwargs)
        self.world = world
        self.seed = seed


class SyntheticWorld(tfds.core.GeneratorBasedBuilder):
    """Clothed people acting in rooms before several cameras: RGB, 2D/3D keypoints, views, body signals, labels."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "2.0.0": "A learnable world: filled, clothed people with a facing cue in a shared pool of rooms, frontal "
        "cameras, time-reversed action pairs; `room_id`.",
    }
    BUILDER_CONFIGS = [
        SyntheticWorldConfig(world=synthetic.get_config(name)) for name in ("tiny", "small", "base")
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        shapes = synthetic.feature_shapes(self.builder_config.world)
        features = {}
        for key, (shape, dtype) in shapes.items():
            if key == "rgb":
                features[key] = tfds.features.Video(shape=shape, dtype=np.uint8)
            elif key == "label":
                features[key] = tfds.features.ClassLabel(names=synthetic.ACTIONS)
            else:
                features[key] = tfds.features.Tensor(shape=shape, dtype=dtype)
        info = self.dataset_info_from_configs(
            description=synthetic.__doc__.split("\n\n")[0],
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("rgb", "label"),
        )
        # The world is generated, never on TFDS's GCS bucket; TFDS's look there for a folder not yet built would only
        # leave an empty `tempfile.mkdtemp("tfds")` folder behind in the system's temporary folder, once per build.
        info.initialize_from_bucket = lambda: None
        return info

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # nothing to download
        world = self.builder_config.world
        # TFDS cannot write an empty split, so a config with no performances in a split simply lacks it.
        return {
            split: self._generate_examples(split)
            for split in synthetic.SPLITS
            if world.num_performances(split) > 0
        }

    def _generate_examples(self, split: str):
        cfg = self.builder_config
        render = functools.partial(_encoded_performance, cfg.world, split, seed=cfg.seed)
        for examples in _in_order(
            render, cfg.world.num_performances(split), _workers(cfg.world, split)
        ):
            for example in examples:
                yield f"{int(example['performance_id'])}_{int(example['camera_id'])}", example


def _workers(world: synthetic.WorldConfig, split: str) -> int:
    """Processes that render a split: one per available CPU for a big split, else 1 (in-process)."""
    t, h, w = world.num_frames, world.height, world.width
    pixels = world.num_performances(split) * world.num_cameras * t * h * w
    if pixels < PARALLEL_MIN_PIXELS:
        return 1
    if hasattr(os, "sched_getaffinity"):
        # The CPUs this process may use (a container's or taskset's share).
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, world.num_performances(split)))


def _in_order(render, count: int, workers: int):
    """render(i) for i in range(count), in order; with workers > 1 in spawned processes (never forked: this process
    runs TensorFlow's threads), a bounded number ahead of the consumer."""
    if workers <= 1:
        yield from map(render, range(count))
        return
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = collections.deque()
        try:
            for index in range(count):
                pending.append(pool.submit(render, index))
                if len(pending) >= workers * _AHEAD_PER_WORKER:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # a failed or abandoned build does not wait for the renders queued ahead
            for future in pending:
                future.cancel()


def _encoded_performance(
    world: synthetic.WorldConfig, split: str, index: int, seed: int
) -> list[dict]:
    """One performance's examples with `rgb` as a list of PNG-encoded frames, which `tfds.features.Video` stores as
    they are (so the encoding runs where the rendering does)."""
    examples = synthetic.performance(world, split, index, seed)
    params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    for example in examples:
        example["rgb"] = [
            cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)[1].tobytes()
            for frame in example["rgb"]
        ]
    return examples


def make_config(
    size: str, seed: int = 0, config_name: str | None = None, **overrides
) -> SyntheticWorldConfig:
    """A builder config for a size with WorldConfig overrides, e.g. fewer performances for a test or a new seed.

    Args:
      size: "tiny", "small" or "base".
      seed: the world's seed.
      config_name: the config's name (its folder under `synthetic_world/`); defaults to `size`, so give another name
        when overriding anything to keep a prepared standard size from being shadowed.
      **overrides: WorldConfig fields, see `synthetic.get_config`.

    Returns:
      A SyntheticWorldConfig (pass it as `SyntheticWorld(config=..., data_dir=...)`).
    """
    world = synthetic.get_config(size, **overrides)
    return SyntheticWorldConfig(world=world, seed=seed, name=config_name or size)


def load(name: str, split: str, data_dir: str, download: bool = True) -> tf.data.Dataset:
    """A split of `synthetic_world/<name>` in DESIGN.md's contract (rgb float32 in [0, 1], int32 labels).

    Args:
      name: "tiny", "small" or "base".
      split: "pretrain", "test" or "heldout".
      data_dir: TFDS data directory; the dataset is built there on first use when `download` is True.
      download: build the dataset if it is not prepared yet.

    Returns:
      A tf.data.Dataset of example dicts, in a deterministic order.
    """
    ds = tfds.load(
        f"synthetic_world/{name}",
        split=split,
        data_dir=data_dir,
        download=download,
        shuffle_files=False,
    )
    return synthetic.map_to_contract(ds)


def load_arrays(
    name: str, split: str, data_dir: str, keys: tuple[str, ...], download: bool = True
) -> dict[str, np.ndarray]:
    """A split of `synthetic_world/<name>` held in memory: each of `keys` stacked over the split's examples in `load`'s
    order and contract (rgb float32 in [0, 1])."""
    return synthetic.stack_examples(
        tfds.as_numpy(load(name, split, data_dir=data_dir, download=download)), keys
    )
