"""The main job: the whole pipeline on this machine, from the synthetic world to a few-shot classifier and a report.

Builds the synthetic world, pretrains a teacher (Cross and Learn by default), distills the student, exports it (TFLite
fp32 and int8, ONNX; a TensorRT engine where TensorRT is installed), runs the few-shot runner on the held-out classes
and writes DIR/report/report.md with the results table and plots. Each stage is skipped when its output exists and its
inputs did not change, so an interrupted demo resumes (training stages from their last checkpoint).

Example:
  ./run.sh demo --output_dir=out/demo            # the results table: about 20 minutes on 2 CPU cores
  ./run.sh demo --output_dir=out/demo_quick --quick   # tiny everything: a few minutes, to see it work
"""

import os
import sys
import time

from absl import app, flags

from edge_ssl import environment
from edge_ssl.demo import pipeline
from edge_ssl.methods import registry

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "output_dir", "out/demo", "Folder for every stage's output and the report (made when missing)."
)
flags.DEFINE_bool(
    "quick", False, "Tiny world, models and step counts: minutes instead of tens of minutes."
)
flags.DEFINE_enum(
    "method",
    pipeline.DEFAULT_METHOD,
    list(registry.METHODS),
    "Teacher's self-supervised method. The student sees video; a pose teacher (cv_mim) pretrains on the world's "
    "2D keypoints and teaches through the keypoints the world gives beside each clip.",
)
flags.DEFINE_string(
    "data_dir",
    None,
    "TFDS data directory for the synthetic world (default: OUTPUT_DIR/tensorflow_datasets).",
)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        pipeline.check_output_dir(FLAGS.output_dir)
    except pipeline.DemoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    print("stack:")
    for key, value in environment.describe().items():
        print(f"      {key:<24} {value}")
    settings = pipeline.QUICK if FLAGS.quick else pipeline.DEFAULT
    demo = pipeline.Demo(FLAGS.output_dir, settings, FLAGS.method, FLAGS.data_dir)
    start = time.monotonic()
    try:
        result = demo.run()
    except pipeline.DemoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"done in {time.monotonic() - start:.0f} s; report: {result['report']}")
    return 0


if __name__ == "__main__":
    app.run(main)
