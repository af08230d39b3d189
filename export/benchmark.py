"""Latency of an artifact directory's forms, per backend and thread count: what a device user asks first.

`python -m export.benchmark --artifact_dir=DIR [--backends=keras,litert,onnxruntime,tensorrt] [--threads=1,2]
[--mode=clip|stream]` times batch-1 invocations of each form (Keras SavedModel; LiteRT fp32, fp16, int8; ONNX Runtime;
a TensorRT engine where one was built on this device) after a warm-up, and prints a markdown table of latency p50,
p90 and p99, throughput, and each form's parity figures from the model card (so speed is read beside what
quantization cost); `--output_json` keeps the figures. In `stream` mode one invocation is one frame through the step
signature, in `clip` mode one whole clip. Peak memory is the process's resident peak after each form (forms run in
order, so it only grows).
"""

import json
import os
import resource
import sys
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("artifact_dir", None, "An artifact directory written by `python -m export`.")
flags.DEFINE_list("backends", ["keras", "litert", "onnxruntime", "tensorrt"], "Backends to time.")
flags.DEFINE_list("threads", ["1", "2"], "Thread counts (LiteRT, ONNX Runtime).")
flags.DEFINE_enum("mode", "clip", ["clip", "stream"], "Whole clips or streamed frames.")
flags.DEFINE_integer("runs", 50, "Timed invocations per form.")
flags.DEFINE_integer("warmup", 5, "Untimed invocations first.")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")


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
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _litert(path: str, threads: int, mode: str, clip: np.ndarray):
    from export import tflite  # pylint: disable=g-import-not-at-top

    model = tflite.TFLiteModel(path, num_threads=threads)
    if mode == "clip":
        return lambda: model.run("serving_default", {"clip": clip[None]})
    state = model.initial_state()
    return lambda: model.run("step", {"frame": clip[None, 0], **state})


def _onnxruntime(directory: str, threads: int, mode: str, clip: np.ndarray):
    from export import onnx as onnx_export  # pylint: disable=g-import-not-at-top

    if mode == "clip":
        model = onnx_export.OnnxModel(clip=os.path.join(directory, "model.onnx"), threads=threads)
        return lambda: model.clip_session.run(None, {"clip": clip[None]})
    model = onnx_export.OnnxModel(step=os.path.join(directory, "model_step.onnx"), threads=threads)
    feed = {"frame": clip[None, 0], **model.initial_state(1)}
    return lambda: model.step_session.run(None, feed)


def _keras(directory: str, mode: str, clip: np.ndarray):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top

    student = student_lib.load_student(os.path.join(directory, "saved_model"))
    if mode == "clip":
        embed = tf.function(lambda x: student.model(x, training=False))
        return lambda: embed(clip[None])
    state = student.init_state(1)
    return lambda: student.step(clip[None, 0], state)


def rows(directory: str) -> list[dict]:
    from export import artifacts  # pylint: disable=g-import-not-at-top

    card = artifacts.read_card(directory)
    shape = card["input"]["clip"]
    clip = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    out = []

    def add(backend, form, threads, call):
        figures = _time(call, FLAGS.runs, FLAGS.warmup)
        entry = card["artifacts"].get(form, {}).get("parity") or {}
        out.append(
            {
                "backend": backend,
                "form": form,
                "threads": threads,
                "mode": FLAGS.mode,
                **figures,
                "mean_cosine": entry.get("mean_cosine"),
                "agreement": entry.get("agreement"),
            }
        )
        print(_line(out[-1]), flush=True)

    if "keras" in FLAGS.backends:
        add("keras", "saved_model", None, _keras(directory, FLAGS.mode, clip))
    for threads in map(int, FLAGS.threads):
        if "litert" in FLAGS.backends:
            for form in ("fp32", "fp16", "dynamic", "int8"):
                path = os.path.join(directory, f"model_{form}.tflite")
                if os.path.exists(path):
                    add("litert", form, threads, _litert(path, threads, FLAGS.mode, clip))
        if "onnxruntime" in FLAGS.backends and os.path.exists(
            os.path.join(directory, "model.onnx")
        ):
            add("onnxruntime", "onnx", threads, _onnxruntime(directory, threads, FLAGS.mode, clip))
    if "tensorrt" in FLAGS.backends:
        engines = sorted(f for f in os.listdir(directory) if f.endswith(".plan"))
        if not engines:
            print(
                "tensorrt: no engine in the artifact directory (build one on the device)",
                file=sys.stderr,
            )
        for engine in engines:
            from export import tensorrt  # pylint: disable=g-import-not-at-top

            model = tensorrt.TensorRTModel(os.path.join(directory, engine))
            add("tensorrt", engine, None, lambda m=model: m({"clip": clip[None]}))
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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.artifact_dir or not os.path.isdir(FLAGS.artifact_dir):
        raise app.UsageError(f"--artifact_dir={FLAGS.artifact_dir!r} is not a folder")
    print(HEADER)
    results = rows(FLAGS.artifact_dir)
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    app.run(main)
