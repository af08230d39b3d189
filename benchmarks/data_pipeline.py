"""Input-pipeline throughput: decode + resize, and decode + optical flow, of 16 x 112 x 112 clips, against what the
`small` pretraining steps consume. Prints a table; the figures go to benchmarks/README.md.

Example:
  ./run.sh python benchmarks/data_pipeline.py --videos=24 --seconds=20
"""

import os
import tempfile
import time

import cv2
import numpy as np
import tensorflow as tf
from absl import app, flags

from edge_ssl.configs import cross_and_learn_small, modist_small
from edge_ssl.data import augment, motion, synthetic, video_folder
from edge_ssl.methods import cross_and_learn, modist

FLAGS = flags.FLAGS
flags.DEFINE_integer(
    "videos", 24, "Videos written to the benchmark folder (320x240, 48 frames, mp4v)."
)
flags.DEFINE_float("seconds", 15.0, "Seconds each pipeline measurement runs after its warm-up.")
flags.DEFINE_integer("steps", 5, "Training steps timed per method (after one warm-up step).")


def write_videos(root: str, count: int) -> None:
    """Synthetic-world clips, upscaled to 320x240 and played three times, as .mp4 files in class folders."""
    world = synthetic.get_config("small", performances=(count, 1, 1), num_cameras=2)
    for i, example in enumerate(synthetic.generate(world, "pretrain")):
        if i >= count:
            break
        folder = os.path.join(root, synthetic.ACTIONS[int(example["label"])])
        os.makedirs(folder, exist_ok=True)
        writer = cv2.VideoWriter(
            os.path.join(folder, f"{i:03d}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 240)
        )
        for frame in np.concatenate([example["rgb"]] * 3):
            writer.write(cv2.cvtColor(cv2.resize(frame, (320, 240)), cv2.COLOR_RGB2BGR))
        writer.release()


def clips_per_second(dataset: tf.data.Dataset, seconds: float) -> float:
    iterator = iter(dataset.repeat())
    for _ in range(4):  # warm-up: thread pools, first decodes
        next(iterator)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(iterator)
        count += 1
    return count / (time.perf_counter() - start)


def step_clips_per_second(method, batch: dict, global_batch: int, steps: int) -> float:
    step = tf.function(lambda b: method.train_step(b, global_batch))
    step(batch)
    start = time.perf_counter()
    for _ in range(steps):
        step(batch)
    return steps * global_batch / (time.perf_counter() - start)


def main(argv):
    del argv
    root = tempfile.mkdtemp(prefix="edge_ssl_bench_")
    write_videos(root, FLAGS.videos)
    index = video_folder.index_video_folder(root)
    print(f"{len(index.clips)} videos, {len(index.skipped)} skipped; {os.cpu_count()} cores")
    rows = []
    for parallel in (1, 2):
        ds = video_folder.video_dataset(
            index, 16, stride=2, size=(112, 112), seed=0, num_parallel_calls=parallel
        )
        rows.append((f"decode + resize, {parallel} parallel", clips_per_second(ds, FLAGS.seconds)))
    cache = tempfile.mkdtemp(prefix="edge_ssl_bench_cache_")
    for parallel in (1, 2):
        ds = video_folder.video_dataset(
            index,
            16,
            stride=2,
            size=(112, 112),
            seed=0,
            num_parallel_calls=parallel,
            cache_dir=cache,
        )
        rows.append(
            (f"cached frames + crop, {parallel} parallel", clips_per_second(ds, FLAGS.seconds))
        )
    for parallel in (1, 2):
        ds = video_folder.video_dataset(
            index, 16, stride=2, size=(112, 112), seed=0, num_parallel_calls=parallel
        )
        ds = ds.map(motion.add_flow, num_parallel_calls=parallel)
        rows.append(
            (f"decode + DIS flow, {parallel} parallel", clips_per_second(ds, FLAGS.seconds))
        )

    flow_cache = motion.FlowCache(tempfile.mkdtemp(prefix="edge_ssl_bench_flow_"))
    for parallel in (1, 2):
        ds = video_folder.video_dataset(
            index,
            16,
            stride=2,
            size=(112, 112),
            seed=0,
            num_parallel_calls=parallel,
            cache_dir=cache,
            flow_cache=flow_cache,
        )
        list(ds)  # fill the flow cache: the figure is for every epoch after the first
        rows.append(
            (
                f"cached frames + cached flow, {parallel} parallel",
                clips_per_second(ds, FLAGS.seconds),
            )
        )

    rng = np.random.default_rng(0)
    clips = {"rgb": rng.uniform(size=(16, 16, 112, 112, 3)).astype("float32")}
    for name, module, config in (
        ("cross_and_learn small", cross_and_learn, cross_and_learn_small.get_config()),
        ("modist small", modist, modist_small.get_config()),
    ):
        method = module.build(config)
        source = tf.data.Dataset.from_tensor_slices(clips)
        if "flow" in method.input_keys:
            source = source.map(motion.add_flow)
        batch = next(
            iter(augment.with_seeds(source, 0).map(method.prepare).batch(config.global_batch_size))
        )
        rows.append(
            (
                f"train step: {name} (batch {config.global_batch_size})",
                step_clips_per_second(method, batch, config.global_batch_size, FLAGS.steps),
            )
        )

    width = max(len(name) for name, _ in rows)
    print(f"{'pipeline':<{width}}  clips/s")
    for name, rate in rows:
        print(f"{name:<{width}}  {rate:8.1f}")


if __name__ == "__main__":
    app.run(main)
