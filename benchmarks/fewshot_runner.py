"""The few-shot runner on this machine: time and memory of a 5-way 5-shot run, and accuracy of students.

1. Writes the synthetic world's held-out classes as a video folder (mp4, 16x112x112; `--per_class` clips per action).
2. Timing: `python -m edge_ssl.cli.finetune` in a fresh process on the first artifact, int8 LiteRT, `--num_threads`
   threads, no embedding cache (every clip decoded and embedded), `--shots=5`: 5 clips per class train the linear
   head and the 20 left over per class (100 clips) are evaluated. Prints wall time of the whole command, the runner's
   own timings (embedding, head training alone) and its peak memory (max RSS of the process).
3. Accuracy: for every artifact, 5-way 5-shot episodes (`--episodes`, 15 queries per class, seed 0) on the held-out
   folder, mean and 95% CI, with the prototype and the linear head.

Without `--artifacts`, a randomly initialised `small` student is exported (fp32 and int8) and measured, which is the
baseline the distilled student must beat.

Example:
  ./run.sh python benchmarks/fewshot_runner.py --data_dir=/tmp/edge_ssl_tfds --work_dir=/tmp/bench_fewshot_runner \\
      --artifacts=/tmp/artifacts_distilled
"""

import os
import subprocess
import sys
import time

from absl import app, flags

from export.runtime import layout

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "data_dir", None, "TFDS data directory holding (or receiving) synthetic_world/small."
)
flags.DEFINE_string(
    "work_dir", "/tmp/edge_ssl_bench_fewshot_runner", "Folders, artifacts and runner outputs."
)
flags.DEFINE_list(
    "artifacts", [], "Artifact directories to measure (a random small student is always added)."
)
flags.DEFINE_integer("per_class", 80, "Held-out clips written per action.")
flags.DEFINE_integer("threads", 2, "Engine threads.")
flags.DEFINE_integer("episodes", 100, "Episodes per accuracy figure.")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, *args], env=env, check=True, text=True, **kwargs)


def _heldout_folder() -> str:
    root = os.path.join(FLAGS.work_dir, "heldout")
    done = os.path.join(root, ".complete")
    if os.path.exists(done):
        return os.path.join(root, "video")
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    from edge_ssl.data import world_folder  # pylint: disable=g-import-not-at-top
    from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

    ds = synthetic_world.load("small", "heldout", data_dir=FLAGS.data_dir)
    counts = world_folder.write_folders(tfds.as_numpy(ds), root, per_class=FLAGS.per_class)
    print(f"held-out folder: {counts}", flush=True)
    open(done, "w").close()
    return os.path.join(root, "video")


def _random_artifact() -> str:
    out = os.path.join(FLAGS.work_dir, "artifact_random")
    if layout.ArtifactDir(out).has_card():
        return out
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top

    keras.utils.set_random_seed(0)
    saved = os.path.join(FLAGS.work_dir, "student_random")
    student_lib.build_student("small").save(saved)
    _python(
        "-m",
        "export",
        f"--model={saved}",
        f"--output_dir={out}",
        "--formats=tflite_fp32,tflite_int8",
        f"--data_dir={FLAGS.data_dir}",
        # A random network's int8 embeddings are not what parity guards; the trained one is held to the defaults.
        "--int8_min_agreement=0",
        "--int8_min_cosine=0.9",
    )
    return out


def _run(artifact: str, folder: str, name: str, *flags_: str) -> tuple[dict, float]:
    out = os.path.join(FLAGS.work_dir, "runs", name)
    start = time.monotonic()
    _python(
        "-m",
        "edge_ssl.cli.finetune",
        f"--model={artifact}",
        f"--train_dir={folder}",
        f"--output_dir={out}",
        f"--num_threads={FLAGS.threads}",
        "--overwrite",
        *flags_,
        stdout=subprocess.DEVNULL,
    )
    wall = time.monotonic() - start
    return layout.ClassifierDir(out).read_metrics(), wall


def main(argv):
    del argv
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    folder = _heldout_folder()
    timing_folder = os.path.join(FLAGS.work_dir, "heldout25")
    if not os.path.exists(timing_folder):  # 5 shots + 20 queries per class
        os.makedirs(timing_folder)
        for action in sorted(os.listdir(folder)):
            os.makedirs(os.path.join(timing_folder, action))
            for clip in sorted(os.listdir(os.path.join(folder, action)))[:25]:
                os.link(
                    os.path.join(folder, action, clip), os.path.join(timing_folder, action, clip)
                )
    artifacts = [("random small student", _random_artifact())]
    artifacts += [(os.path.basename(a.rstrip("/")), a) for a in FLAGS.artifacts]

    name, artifact = artifacts[-1]
    metrics, wall = _run(
        artifact,
        timing_folder,
        "timing",
        "--engine=litert",
        "--precision=int8",
        "--shots=5",
        "--no_cache",
    )
    timings = metrics["timings"]
    print(
        f"\n## 5-way 5-shot run, {name}, int8 LiteRT, {FLAGS.threads} threads, decoding included\n"
    )
    print("| figure | value |\n| --- | ---: |")
    print(f"| whole command (process start to exit) | {wall:.1f} s |")
    print(
        f"| embedding {metrics['num_train']} + {metrics['num_evaluated']} clips | {timings['embed_seconds']:.1f} s |"
    )
    print(
        f"| head training alone (linear, {metrics['settings']['epochs']} epochs in LiteRT) | {timings['fit_seconds']:.3f} s |"
    )
    print(f"| peak memory (max RSS) | {metrics['peak_memory_mib']:.0f} MiB |")
    print(f"| accuracy on the 100 query clips | {metrics['accuracy']:.1%} |")

    print(f"\n## 5-way 5-shot accuracy, {FLAGS.episodes} episodes, 15 queries per class, seed 0\n")
    print("| model | file | prototype head | linear head |\n| --- | --- | ---: | ---: |")
    for name, artifact in artifacts:
        for precision in ("fp32", "int8"):
            row = []
            for head in ("prototype", "linear"):
                metrics, _ = _run(
                    artifact,
                    folder,
                    f"episodes_{name}_{precision}_{head}".replace(" ", "_"),
                    "--engine=litert",
                    f"--precision={precision}",
                    f"--head={head}",
                    f"--episodes={FLAGS.episodes}",
                    "--ways=5",
                    "--shots=5",
                    "--queries=15",
                    f"--cache_dir={os.path.join(FLAGS.work_dir, 'cache')}",
                )
                row.append(f"{metrics['mean_accuracy']:.1%} ± {metrics['ci95']:.1%}")
            print(f"| {name} | {layout.tflite_name(precision)} | {row[0]} | {row[1]} |", flush=True)


if __name__ == "__main__":
    app.run(main)
