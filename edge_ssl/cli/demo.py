"""The main job: runs every pipeline stage that edge_ssl has so far, on this machine, and reports each one.

Stages land with the roadmap (data, methods, pretraining, distillation, export, runner). Today the demo checks the
installed stack and builds the synthetic world as a TFDS dataset (skipped when it is already built), then writes what
it found to `--output_dir/demo.json`.

Example:
  ./run.sh demo --output_dir=/tmp/edge_ssl_demo
  python -m edge_ssl.cli.demo --output_dir=/tmp/edge_ssl_demo --world=tiny
"""

import os
import time

from absl import app, flags, logging

from edge_ssl import environment, files
from edge_ssl.data import synthetic
from edge_ssl.data.datasets import synthetic_world

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "out/demo", "Folder for the demo's outputs (made when missing).")
flags.DEFINE_enum("world", "small", ["tiny", "small"], "Size of the synthetic world to build.")
flags.DEFINE_string(
    "data_dir",
    None,
    "TFDS data directory for the synthetic world (default: OUTPUT_DIR/tensorflow_datasets).",
)


def _stage(number: int, total: int, title: str) -> float:
    print(f"[{number}/{total}] {title}", flush=True)
    return time.monotonic()


def build_world(size: str, data_dir: str) -> dict:
    """Builds (or finds) `synthetic_world/<size>` in `data_dir`; returns its splits' sizes and classes."""

    builder = synthetic_world.SyntheticWorld(config=size, data_dir=data_dir)
    already = os.path.isdir(builder.data_dir)
    builder.download_and_prepare()
    info = builder.info
    return {
        "name": f"synthetic_world/{size}",
        "data_dir": data_dir,
        "reused": bool(already),
        "splits": {name: split.num_examples for name, split in info.splits.items()},
        "seen_classes": list(synthetic.SEEN_ACTIONS),
        "heldout_classes": list(synthetic.HELDOUT_ACTIONS),
    }


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    report = {}
    total = 2
    start = _stage(1, total, "stack: versions, Keras 2, TensorRT and accelerators")
    report["environment"] = environment.describe()
    for key, value in report["environment"].items():
        print(f"      {key:<24} {value}")
    start = _stage(2, total, f"data: the synthetic world ({FLAGS.world}) as a TFDS dataset")
    data_dir = FLAGS.data_dir or os.path.join(FLAGS.output_dir, "tensorflow_datasets")
    world = build_world(FLAGS.world, data_dir)
    world["seconds"] = round(time.monotonic() - start, 1)
    report["world"] = world
    splits = ", ".join(f"{name} {count}" for name, count in sorted(world["splits"].items()))
    print(
        f"      {'reused' if world['reused'] else 'built'} {world['name']} in {world['seconds']} s: {splits} clips"
    )
    print(f"      held out of pretraining: {', '.join(world['heldout_classes'])}")
    path = os.path.join(FLAGS.output_dir, "demo.json")
    files.write_json_atomic(path, report)
    logging.info("wrote %s", path)
    print(f"report: {path}")


if __name__ == "__main__":
    app.run(main)
