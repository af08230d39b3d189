"""Pretraining engine throughput: steps and clips per second of each method's `small` config through the pretrain
CLI (data pipeline, distribution, checkpoints and summaries included), on one device and on two logical CPU replicas,
with each run's peak memory.

Each run is a separate `python -m edge_ssl.cli.pretrain` process (logical CPUs are fixed when TensorFlow starts);
the rate is that of the last logging interval, so start-up and tracing are left out. The synthetic world is built
into --data_dir on first use.

Example:
  ./run.sh python benchmarks/pretrain.py --data_dir=/tmp/edge_ssl_tfds --steps=20
"""

import os
import re
import subprocess
import sys
import tempfile

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("methods", ["cross_and_learn", "modist", "cv_mim", "muscles"], "Methods to time.")
flags.DEFINE_string("config", "small", "Config size.")
flags.DEFINE_integer("steps", 20, "Steps per run; the rate is measured over the second half.")
flags.DEFINE_list(
    "replicas",
    ["1", "2"],
    "Replica counts to compare (1: one_device; N: mirrored on N logical CPUs).",
)
flags.DEFINE_string("data_dir", None, "TFDS data directory for the synthetic world.", required=True)

PROGRESS = re.compile(r"^step (\d+)/\d+ .*\| ([\d.]+) clips/s")


def run(method: str, replicas: int, workdir: str) -> tuple[float, float, float, int]:
    """(clips/s, steps/s, peak RSS in MiB, global batch) of one CLI run."""
    half = max(FLAGS.steps // 2, 1)
    command = [
        sys.executable,
        "-m",
        "edge_ssl.cli.pretrain",
        f"--method={method}",
        f"--config={FLAGS.config}",
        f"--data_dir={FLAGS.data_dir}",
        f"--workdir={workdir}",
        f"--steps={FLAGS.steps}",
        f"--log_every={half}",
        f"--checkpoint_every={FLAGS.steps}",
    ]
    if replicas > 1:
        command += ["--strategy=mirrored", f"--num_cpu_replicas={replicas}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{method} x{replicas} failed:\n{err[-3000:]}")
    rates = [float(m.group(2)) for line in out.splitlines() if (m := PROGRESS.match(line))]
    batch = int(re.search(r"global batch (\d+)", out).group(1))
    peak = float(re.search(r"peak memory (\d+) MiB", out).group(1))
    return rates[-1], rates[-1] / batch, peak, batch


def main(argv):
    del argv
    print(
        f"| method (`{FLAGS.config}`) | replicas | global batch | clips/s | steps/s | peak RSS (MiB) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for method in FLAGS.methods:
        for replicas in map(int, FLAGS.replicas):
            with tempfile.TemporaryDirectory() as workdir:
                clips, steps, peak, batch = run(method, replicas, workdir)
            print(
                f"| {method} | {replicas} | {batch} | {clips:.1f} | {steps:.2f} | {peak:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    app.run(main)
