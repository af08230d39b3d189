"""The main job: runs every pipeline stage that edge_ssl has so far, on this machine, and reports each one.

Stages land with the roadmap (data, methods, pretraining, distillation, export, runner); today the demo checks the
installed stack, the part every later stage stands on, and writes what it found to `--output_dir`.

Example:
  ./run.sh demo --output_dir=/tmp/edge_ssl_demo
  python -m edge_ssl.cli.demo --output_dir=/tmp/edge_ssl_demo
"""

import json
import os
import time

from absl import app, flags, logging

from edge_ssl import environment, files

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "out/demo", "Folder for the demo's outputs (made when missing).")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    start = time.monotonic()
    print("[1/1] stack: versions, Keras 2, TensorRT and accelerators", flush=True)
    report = environment.describe()
    for key, value in report.items():
        print(f"      {key:<24} {value}")
    path = os.path.join(FLAGS.output_dir, "environment.json")
    files.write_json_atomic(path, report)
    logging.info("wrote %s", path)
    print(f"done in {time.monotonic() - start:.1f}s; report: {path}")


if __name__ == "__main__":
    app.run(main)
