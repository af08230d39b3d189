"""Latency of an artifact directory's forms, per backend and thread count: what a device user asks first.

`python -m export.benchmark --artifact_dir=DIR [--backends=keras,litert,onnxruntime,tensorrt] [--threads=1,2]
[--mode=clip|stream] [--output_json=FILE.json] [--output_png=FILE.png]` times batch-1 invocations of each form (Keras
SavedModel; LiteRT fp32, fp16, int8; ONNX Runtime; a TensorRT engine where one was built on this device) after a
warm-up, and prints a markdown table of latency p50, p90 and p99, throughput, and each form's parity figures from the
model card (so speed is read beside what quantization cost); `--output_json` keeps the figures, and the table goes
beside it as FILE.md.

The PNG plot (`--output_png`, by default beside `--output_json` with the extension .png) puts each form and thread
count at its p50 latency (x) and its accuracy after quantization (y). The accuracy is, in this order of preference,
the few-shot accuracy an artifact's card entry records as `fewshot_accuracy` (a fraction), the parity top-1
agreement with the Keras model (nearest prototype on the held-out data) or the parity mean cosine; the axis says
which. The Keras SavedModel is the parity reference (agreement and cosine 1). It needs matplotlib (Agg backend, no
display); without it the table and JSON are still written.

The CPU's model and its int8-relevant features (AVX2, AVX-512, VNNI; on ARM NEON and its dot product, from
/proc/cpuinfo: `export.runtime.machine`) are printed above the table and written below it in FILE.md, because which
form is fastest depends on them.

In `stream` mode one invocation is one frame through the step signature, in `clip` mode one whole clip (for the
pose encoder, which embeds frame by frame, one pose: `clip` mode only). Peak memory is the process's resident peak
after each form (forms run in order, so it only grows).

Example:
  ./run.sh python -m export.benchmark --artifact_dir=out/artifacts --threads=1,2 --output_json=out/latency.json
"""

import json
import os
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
from absl import app, flags

from edge_ssl import library_logs
from export.runtime import layout, machine

FLAGS = flags.FLAGS
flags.DEFINE_string("artifact_dir", None, "An artifact directory written by `python -m export`.")
BACKENDS = ("keras", "litert", "onnxruntime", "tensorrt")
MODES = ("clip", "stream")
flags.DEFINE_list("backends", list(BACKENDS), "Backends to time.")
flags.DEFINE_list("threads", ["1", "2"], "Thread counts (LiteRT, ONNX Runtime).")
flags.DEFINE_enum("mode", "clip", list(MODES), "Whole clips or streamed frames.")
flags.DEFINE_integer("runs", 50, "Timed invocations per form.")
flags.DEFINE_integer("warmup", 5, "Untimed invocations first.")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")
flags.DEFINE_string(
    "output_png",
    None,
    "Where to write the plot of latency against accuracy after quantization (default: beside --output_json).",
)

# The accuracy figure the plot shows, in order of preference: (row key, axis label).
ACCURACY_METRICS = (
    ("fewshot_accuracy", "few-shot accuracy (model card)"),
    ("agreement", "top-1 agreement with Keras (parity)"),
    ("mean_cosine", "mean cosine to Keras (parity)"),
)


def _time(call, runs: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    ms = 1000 * np.asarray(times)
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "per_second": float(1000 / np.mean(ms)),
        "peak_rss_mib": machine.peak_memory_mib(),
    }


def _litert(path: str, threads: int, mode: str, name: str, clip: np.ndarray):
    from export.runtime import litert  # pylint: disable=g-import-not-at-top

    if mode == "clip":
        model = litert.TFLiteModel(path, num_threads=threads, required=("serving_default",))
        return lambda: model.run("serving_default", {name: clip[None]})
    model = litert.TFLiteModel(path, num_threads=threads)
    state = model.initial_state()
    return lambda: model.run("step", {"frame": clip[None, 0], **state})


def _onnxruntime(directory: str, threads: int, mode: str, name: str, clip: np.ndarray):
    from export.runtime import onnx_runtime  # pylint: disable=g-import-not-at-top

    if mode == "clip":
        model = onnx_runtime.OnnxModel(clip=layout.ArtifactDir(directory).onnx, threads=threads)
        return lambda: model.clip_session.run(None, {name: clip[None]})
    model = onnx_runtime.OnnxModel(step=layout.ArtifactDir(directory).onnx_step, threads=threads)
    feed = {"frame": clip[None, 0], **model.initial_state(1)}
    return lambda: model.step_session.run(None, feed)


def _keras(directory: str, mode: str, name: str, clip: np.ndarray, kind: str):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    path = layout.ArtifactDir(directory).saved_model
    if kind == "pose_encoder":
        serving = tf.saved_model.load(path).signatures["serving_default"]
        inputs = tf.constant(clip[None])
        return lambda: serving(**{name: inputs})

    from edge_ssl import tracing  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top

    student = student_lib.load_student(path)
    if mode == "clip":
        embed = tracing.function(lambda x: student.model(x, training=False))
        return lambda: embed(clip[None])
    state = student.init_state(1)
    return lambda: student.step(clip[None, 0], state)


class BenchmarkError(ValueError):
    """The artifact directory cannot be timed as asked; the message says why."""


def _thread_counts() -> list[int]:
    """--threads as positive ints, or a usage error."""
    try:
        counts = [int(t) for t in FLAGS.threads]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise app.UsageError(f"--threads takes positive integers, got {FLAGS.threads}")
    return counts


def rows(
    directory: str,
    backends: Sequence[str] = BACKENDS,
    threads: Sequence[int] = (1, 2),
    mode: str = "clip",
    runs: int = 50,
    warmup: int = 5,
    report: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Times every form of the artifact directory; one row each.

    Args:
      directory: an artifact directory written by `python -m export`.
      backends: which of `BACKENDS` to time; one with nothing of its kind in the directory says so on stderr.
      threads: thread counts for LiteRT and ONNX Runtime.
      mode: "clip" (one whole clip per invocation) or "stream" (one frame through the step signature).
      runs: timed invocations per form.
      warmup: untimed invocations first.
      report: called with each row as soon as it is measured (the binary prints it).

    Returns:
      Dicts with backend, form, threads, mode, the latency figures and the card's parity figures.

    Raises:
      BenchmarkError: no model card, a stream asked of a per-frame model, or bad arguments.
    """
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not backends:
        raise BenchmarkError(
            f"unknown backends {unknown or 'none given'}; choose from {', '.join(BACKENDS)}"
        )
    if not threads or min(threads) < 1 or runs < 1 or warmup < 0 or mode not in MODES:
        raise BenchmarkError(
            f"threads must be >= 1, runs >= 1, warmup >= 0 and mode one of {MODES}; got {list(threads)}, "
            f"{runs}, {warmup} and {mode!r}"
        )
    artifact = layout.ArtifactDir(directory)
    try:
        card = artifact.read_card()
    except layout.ArtifactError as e:
        raise BenchmarkError(str(e)) from e
    kind = card.get("kind", "student")
    # The model's one input (a student's `clip`, the pose encoder's `keypoints`) is the card's first input entry.
    name = next(iter(card["input"]))
    if mode == "stream" and card.get("per_frame"):
        raise BenchmarkError(
            f"{directory} holds a {kind} that embeds one item at a time (per_frame); it has no stream to time, "
            "time it in clip mode"
        )
    shape = card["input"][name]
    clip = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    out = []

    def add(backend, form, count, call):
        figures = _time(call, runs, warmup)
        entry = card["artifacts"].get(form, {})
        parity_figures = entry.get("parity") or {}
        out.append(
            {
                "backend": backend,
                "form": form,
                "threads": count,
                "mode": mode,
                **figures,
                "mean_cosine": parity_figures.get("mean_cosine"),
                "agreement": parity_figures.get("agreement"),
                "fewshot_accuracy": entry.get("fewshot_accuracy"),
            }
        )
        if report is not None:
            report(out[-1])

    if "keras" in backends:
        add("keras", layout.SAVED_MODEL, None, _keras(directory, mode, name, clip, kind))
    tflite_forms = artifact.tflite_files(("fp32", "fp16", "dynamic", "int8"))
    has_onnx = os.path.exists(artifact.onnx)
    # A backend asked for with nothing of its kind in the directory says so, as tensorrt does below.
    if "litert" in backends and not tflite_forms:
        print(f"litert: no {layout.tflite_name('*')} in the artifact directory", file=sys.stderr)
    if "onnxruntime" in backends and not has_onnx:
        print(f"onnxruntime: no {layout.ONNX} in the artifact directory", file=sys.stderr)
    for count in threads:
        if "litert" in backends:
            for form, path in tflite_forms.items():
                add("litert", form, count, _litert(path, count, mode, name, clip))
        if "onnxruntime" in backends and has_onnx:
            add("onnxruntime", "onnx", count, _onnxruntime(directory, count, mode, name, clip))
    if "tensorrt" in backends:
        engines = sorted(f for f in os.listdir(directory) if f.endswith(layout.ENGINE_SUFFIX))
        if not engines:
            print(
                "tensorrt: no engine in the artifact directory (build one on the device)",
                file=sys.stderr,
            )
        for engine in engines:
            from export.runtime import tensorrt  # pylint: disable=g-import-not-at-top

            model = tensorrt.TensorRTModel(os.path.join(directory, engine))
            add("tensorrt", engine, None, lambda m=model: m({name: clip[None]}))
    return out


HEADER = (
    "| backend | form | threads | mode | p50 ms | p90 ms | p99 ms | per second | peak RSS MiB | mean cosine | "
    "top-1 agreement |\n| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _line(row: dict) -> str:
    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    return (
        f"| {row['backend']} | {row['form']} | {fmt(row['threads'], 'd')} | {row['mode']} | {row['p50_ms']:.2f} | "
        f"{row['p90_ms']:.2f} | {row['p99_ms']:.2f} | {row['per_second']:.1f} | {row['peak_rss_mib']:.0f} | "
        f"{fmt(row['mean_cosine'], '.5f')} | {fmt(row['agreement'], '.1%')} |"
    )


def accuracy_metric(results: list[dict]) -> tuple[str, str] | None:
    """(row key, axis label) of the accuracy the plot shows: the first of ACCURACY_METRICS that every timed
    artifact with a card entry has (the Keras reference and engines without figures aside); None when none.
    """
    rated = [
        r
        for r in results
        if r["backend"] != "keras" and any(r.get(key) is not None for key, _ in ACCURACY_METRICS)
    ]
    for key, label in ACCURACY_METRICS:
        if rated and all(r.get(key) is not None for r in rated):
            return key, label
    return None


def plot(results: list[dict], path: str, title: str) -> str | None:
    """Writes the PNG of p50 latency against accuracy after quantization, one point per form and thread count.

    Returns:
      The accuracy axis's label, or None when no row has an accuracy figure (nothing is written then).

    Raises:
      ImportError: matplotlib is not installed.
    """
    metric = accuracy_metric(results)
    if metric is None:
        return None
    key, label = metric
    import matplotlib  # pylint: disable=g-import-not-at-top

    matplotlib.use("Agg")  # files only: a device or a CI machine has no display
    from matplotlib import pyplot  # pylint: disable=g-import-not-at-top

    figure, axes = pyplot.subplots(figsize=(7, 4.5), dpi=120)
    markers = {"keras": "s", "litert": "o", "onnxruntime": "^", "tensorrt": "D"}
    for backend, marker in markers.items():
        points = []
        for r in results:
            if r["backend"] != backend:
                continue
            # The Keras SavedModel is what parity compares with: agreement and cosine 1 by definition.
            value = 1.0 if backend == "keras" and key != "fewshot_accuracy" else r.get(key)
            if value is not None:
                threads = "" if r["threads"] is None else f" x{r['threads']}"
                points.append((r["p50_ms"], value, f"{r['form']}{threads}"))
        if not points:
            continue
        axes.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, label=backend)
        for x, y, text in points:
            axes.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    axes.set_xlabel("latency p50, ms (batch 1)")
    axes.set_ylabel(label)
    axes.set_title(title, fontsize=9)
    axes.margins(x=0.2, y=0.15)  # room for the labels of the outermost points
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return label


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.artifact_dir or not os.path.isdir(FLAGS.artifact_dir):
        raise app.UsageError(f"--artifact_dir={FLAGS.artifact_dir!r} is not a folder")
    unknown = sorted(set(FLAGS.backends) - set(BACKENDS))
    if unknown or not FLAGS.backends:
        raise app.UsageError(
            f"--backends: unknown {unknown or 'none given'}; choose from {', '.join(BACKENDS)}"
        )
    _thread_counts()
    if FLAGS.runs < 1 or FLAGS.warmup < 0:
        raise app.UsageError(
            f"--runs must be >= 1 and --warmup >= 0, got {FLAGS.runs} and {FLAGS.warmup}"
        )
    png = FLAGS.output_png
    if png is None and FLAGS.output_json:
        png = os.path.splitext(FLAGS.output_json)[0] + ".png"
    if png and not png.lower().endswith(".png"):
        raise app.UsageError(f"--output_png={png!r} must name a .png file")
    cpu = machine.describe_cpu()
    print(cpu)
    print(HEADER)
    try:
        results = rows(
            FLAGS.artifact_dir,
            FLAGS.backends,
            _thread_counts(),
            FLAGS.mode,
            FLAGS.runs,
            FLAGS.warmup,
            report=lambda row: print(_line(row), flush=True),
        )
    except BenchmarkError as e:
        raise app.UsageError(str(e)) from e
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        # The table as printed, kept beside the JSON for a report or an issue.
        with open(os.path.splitext(FLAGS.output_json)[0] + ".md", "w", encoding="utf-8") as f:
            f.write("\n".join([HEADER] + [_line(row) for row in results] + ["", cpu]) + "\n")
    if png:
        title = f"{os.path.basename(os.path.normpath(FLAGS.artifact_dir))} ({FLAGS.mode} mode)"
        try:
            label = plot(results, png, title)
        except ImportError:
            print(
                f"no plot: matplotlib is not installed (pip install matplotlib); {png} not written",
                file=sys.stderr,
            )
        else:
            if label is None:
                print(
                    f"no plot: no form has an accuracy figure in the model card; {png} not written"
                )
            else:
                print(f"plot: {png} (y: {label})")
    return 0


if __name__ == "__main__":
    library_logs.hide_unless_asked()  # before TensorFlow loads, which only timing Keras does
    app.run(main)
