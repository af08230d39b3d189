"""Start-up and exit of a process that loads TensorFlow: with and without edge_ssl's garbage-collector freeze, and
with and without its tracing as written (no AutoGraph conversion).

Every binary and every test is a process of its own, so what a process pays before its first step and after its
last is paid about a hundred times in the test suite and once per stage in the demo. Two programs, each run
--repeats times for each setting, the settings alternating (the defaults, then `EDGE_SSL_GC_FREEZE=0`, see
edge_ssl/gc_freeze.py, then `EDGE_SSL_AUTOGRAPH=1`, see edge_ssl/tracing.py):
- an empty absl program that imports edge_ssl, TensorFlow and tf-keras: the seconds to import ml_dtypes (which
  TensorFlow and the LiteRT runtime import first), the rest of the imports, and from `main`'s return to the end of
  the process (the interpreter's exit);
- a --steps-step pretraining of --method's tiny config through the pretrain CLI: the whole process, wall and CPU.
The tiny world is built into --data_dir by a first, untimed run. Prints the medians.

Example:
  ./run.sh python benchmarks/startup.py --data_dir=/tmp/edge_ssl_tfds
"""

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from edge_ssl import gc_freeze, tracing

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 5, "Runs of each program for each setting.")
flags.DEFINE_integer("steps", 30, "Steps of the pretraining program (0: only the empty program).")
flags.DEFINE_string("method", "cv_mim", "Method of the pretraining program (its tiny config).")
flags.DEFINE_string(
    "data_dir", None, "TFDS data directory for the tiny synthetic world.", required=True
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Prints the import times and the wall clock at `main`'s return; the parent takes the process's end from there.
_EMPTY_PROGRAM = """
import time
t0 = time.perf_counter()
import ml_dtypes
t1 = time.perf_counter()
import edge_ssl, tensorflow, tf_keras
t2 = time.perf_counter()
from absl import app

def main(argv):
    print(t1 - t0, t2 - t1, time.time(), flush=True)

app.run(main)
"""

SETTINGS = {
    "defaults (frozen, traced as written)": {},
    f"{gc_freeze.ENV}=0": {gc_freeze.ENV: "0"},
    f"{tracing.ENV}=1": {tracing.ENV: "1"},
}


def _environ(extra: dict[str, str]) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in (gc_freeze.ENV, tracing.ENV)}
    environ.update(extra, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return environ


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], extra: dict[str, str], what: str) -> tuple[str, float, float, float]:
    """(stdout, wall seconds, CPU seconds, wall clock at its end) of one child process; raises if it fails."""
    cpu, start = _children_cpu(), time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, text=True, env=_environ(extra), check=False
    )
    end, wall = time.time(), time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"the {what} failed:\n{result.stderr[-3000:]}")
    return result.stdout, wall, _children_cpu() - cpu, end


def empty_program(extra: dict[str, str]) -> tuple[float, float, float]:
    """(ml_dtypes import, the other imports, exit) in seconds, for one run of the empty absl program."""
    out, _, _, end = _run([sys.executable, "-c", _EMPTY_PROGRAM], extra, "empty program")
    ml_dtypes_s, imports_s, returned_at = map(float, out.split()[-3:])
    return ml_dtypes_s, imports_s, end - returned_at


def pretraining(extra: dict[str, str], workdir: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one pretrain CLI process."""
    command = [
        sys.executable,
        "-m",
        "edge_ssl.cli.pretrain",
        f"--method={FLAGS.method}",
        "--config=tiny",
        f"--data_dir={FLAGS.data_dir}",
        f"--workdir={workdir}",
        f"--steps={FLAGS.steps}",
        f"--log_every={FLAGS.steps}",
        f"--checkpoint_every={FLAGS.steps}",
    ]
    _, wall, cpu, _ = _run(command, extra, "pretraining")
    return wall, cpu


def main(argv):
    del argv
    if FLAGS.steps:
        with tempfile.TemporaryDirectory() as workdir:  # builds the world, untimed
            pretraining({}, workdir)
    empty = {name: [] for name in SETTINGS}
    trained = {name: [] for name in SETTINGS}
    for _ in range(FLAGS.repeats):
        for name, extra in SETTINGS.items():
            empty[name].append(empty_program(extra))
            if FLAGS.steps:
                with tempfile.TemporaryDirectory() as workdir:
                    trained[name].append(pretraining(extra, workdir))
    header = ["setting", "import ml_dtypes (and numpy)", "other imports", "exit"]
    if FLAGS.steps:
        header += [f"{FLAGS.steps}-step {FLAGS.method} tiny pretraining: wall", "CPU"]
    print(f"medians of {FLAGS.repeats} runs, seconds")
    print("| " + " | ".join(header) + " |")
    print("| --- |" + " ---: |" * (len(header) - 1))
    for name in SETTINGS:
        cells = [f"{statistics.median(x):.3f}" for x in zip(*empty[name])]
        if FLAGS.steps:
            cells += [f"{statistics.median(x):.1f}" for x in zip(*trained[name])]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    app.run(main)
