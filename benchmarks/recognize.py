"""The recognizer on this machine: frames per second end to end and model-only latency, per precision and threads.

1. Writes two test videos of moving texture: 640x480 at 30 fps (H.264 when this OpenCV can encode it, else MPEG-4
   Part 2 `mp4v`; the script says which) and 112x112 at 30 fps, `--seconds` long each.
2. For each precision the classifier has (fp32, int8) and each thread count (`--threads`), runs the recognizer on
   each video exactly as `python -m edge_ssl.cli.recognize` does (`pipeline.run`: decode, preprocessing, resampling
   to the model's frame rate, one step per model frame, decisions; no outputs written), after a warm-up pass, and
   prints: end-to-end frames per second (source frames read, decoded, resampled and, when due, preprocessed and run,
   per second of wall time), model frames per second of wall time, the step's latency p50 and p99, model-only
   frames per second (1 / mean step time), and the step's p50 against a 30 fps camera's frame time (33.3 ms); each
   the median of `--rounds` runs (p99: the largest).
3. Prints the CPU (`export.runtime.machine`) and the OpenCV codec used.

Without `--classifier`, a randomly initialised student of `--variant` (`small`: 16 x 112 x 112, the demo's) is
exported (fp32 and int8 TFLite) and the few-shot runner fits a prototype head on a few coloured clips: the weights do
not change the time, the architecture does (TensorFlow is needed for that step only).

Example:
  ./run.sh python benchmarks/recognize.py --work_dir=/tmp/bench_recognize --threads=1,2
  ./run.sh python benchmarks/recognize.py --classifier=out/classifier/classifier.tflite
"""

import dataclasses
import os

import cv2
import numpy as np
from absl import app, flags

from export.runtime import layout

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "classifier", None, "classifier.tflite to measure (default: a random student's)."
)
flags.DEFINE_string(
    "variant", "small", "Student variant of the random classifier (without --classifier)."
)
flags.DEFINE_string("work_dir", "/tmp/edge_ssl_bench_recognize", "Videos, artifact and classifier.")
flags.DEFINE_list("threads", ["1", "2"], "Engine thread counts.")
flags.DEFINE_list(
    "precisions", ["fp32", "int8"], "Precisions to measure (those the classifier has)."
)
flags.DEFINE_float("seconds", 10.0, "Length of each test video.")
flags.DEFINE_integer(
    "rounds", 3, "Timed runs per row; the row shows their medians (p99: the largest)."
)

VIDEO_FPS = 30.0


def _frames(width: int, height: int, count: int):
    """Moving, textured frames (BGR uint8): a codec has real work to do, unlike on flat colour."""
    rng = np.random.default_rng(0)
    texture = cv2.resize(
        rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8),
        (2 * width, 2 * height),
        interpolation=cv2.INTER_CUBIC,
    )
    for i in range(count):
        x, y = int(4 * i) % width, int(2 * i) % height
        frame = texture[y : y + height, x : x + width].copy()
        centre = (int(width / 2 + width / 4 * np.sin(i / 10)), int(height / 2))
        cv2.circle(frame, centre, max(4, height // 8), (40, 200, 240), -1)
        yield frame


def write_video(path: str, width: int, height: int, seconds: float) -> str:
    """Writes the test video; returns the codec used ("H.264 (avc1)" or "MPEG-4 Part 2 (mp4v)")."""
    for fourcc, name in (("avc1", "H.264 (avc1)"), ("mp4v", "MPEG-4 Part 2 (mp4v)")):
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), VIDEO_FPS, (width, height))
        if writer.isOpened():
            break
    else:
        raise RuntimeError("OpenCV can write neither H.264 nor mp4v here")
    for frame in _frames(width, height, int(seconds * VIDEO_FPS)):
        writer.write(frame)
    writer.release()
    return name


def random_classifier(work_dir: str, variant: str) -> str:
    """A random `variant` student's artifact (fp32, int8) and the runner's prototype classifier on it."""
    output = os.path.join(work_dir, f"classifier_random_{variant}")
    path = layout.ClassifierDir(output).classifier
    if os.path.exists(path):
        return path
    from edge_ssl.fewshot import runner  # pylint: disable=g-import-not-at-top
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top
    from export import artifacts  # pylint: disable=g-import-not-at-top
    from export.runtime import parity  # pylint: disable=g-import-not-at-top

    keras.utils.set_random_seed(0)
    student = student_lib.build_student(variant)
    rng = np.random.default_rng(0)
    shape = (student.frames, student.input_size, student.input_size, 3)
    clips = rng.uniform(size=(6, *shape)).astype(np.float32)
    artifact = os.path.join(work_dir, f"artifact_random_{variant}")
    # A random network's int8 embeddings are not what parity guards (as in benchmarks/fewshot_runner.py).
    thresholds = dict(parity.DEFAULT_THRESHOLDS, int8=parity.Thresholds(min_cosine=0.9))
    options = artifacts.ExportOptions(quantizations=("fp32", "int8"), thresholds=thresholds)
    artifacts.export_student(
        student, artifact, list(clips[:4]), clips, None, options, frame_rate=8.0
    )
    train = os.path.join(work_dir, "train")
    for k, colour in enumerate(((200, 40, 40), (40, 200, 40), (40, 40, 200))):
        for i in range(2):
            folder = os.path.join(train, f"class{k}")
            os.makedirs(folder, exist_ok=True)
            writer = cv2.VideoWriter(
                os.path.join(folder, f"clip{i}.mp4"),
                cv2.VideoWriter_fourcc(*"mp4v"),
                8.0,
                (128, 112),
            )
            for _ in range(student.frames + 2):
                noise = rng.integers(-30, 30, (112, 128, 3))
                writer.write(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8))
            writer.release()
    runner.run(
        runner.RunConfig(
            model=artifact, train_dir=train, output_dir=output, head="prototype", precision="fp32"
        )
    )
    return path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from edge_ssl.recognize import pipeline, streaming  # pylint: disable=g-import-not-at-top
    from export.runtime import machine  # pylint: disable=g-import-not-at-top

    os.makedirs(FLAGS.work_dir, exist_ok=True)
    classifier = FLAGS.classifier or random_classifier(FLAGS.work_dir, FLAGS.variant)
    videos = {}
    for name, (width, height) in (("640x480", (640, 480)), ("112x112", (112, 112))):
        path = os.path.join(FLAGS.work_dir, f"video_{name}.mp4")
        videos[name] = (path, write_video(path, width, height, FLAGS.seconds))
    print(machine.describe_cpu())
    print(f"OpenCV {cv2.__version__}; classifier {classifier}")
    for name, (path, codec) in videos.items():
        print(f"video {name}: {path}, {FLAGS.seconds:g} s at {VIDEO_FPS:g} fps, {codec}")
    print(
        "\n| video | precision | threads | end-to-end fps | model frames/s | step p50 ms | step p99 ms | "
        "model-only fps | p50 / 33.3 ms |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for precision in FLAGS.precisions:
        for threads in [int(t) for t in FLAGS.threads]:
            try:
                loaded = streaming.open_classifier(
                    classifier, precision=precision, num_threads=threads
                )
            except streaming.ClassifierError as e:
                print(f"| - | {precision} | {threads} | not available: {e} |")
                continue
            del loaded
            for name, (path, _) in videos.items():
                config = pipeline.RecognizeConfig(
                    classifier=classifier,
                    source=path,
                    precision=precision,
                    num_threads=threads,
                    status=False,
                )
                pipeline.run(dataclasses.replace(config, max_frames=int(VIDEO_FPS)))  # warm-up
                runs = [pipeline.run(config) for _ in range(FLAGS.rounds)]
                summary = runs[-1]

                def median(key, runs=runs):
                    return float(np.median([key(r) for r in runs]))

                p50 = median(lambda r: r["latency_ms"]["p50"])
                p99 = max(r["latency_ms"]["p99"] for r in runs)
                print(
                    f"| {name} | {summary['precision']} | {threads} | "
                    f"{median(lambda r: r['fps_end_to_end']):.1f} | "
                    f"{median(lambda r: r['model_frames'] / r['seconds']):.1f} | {p50:.2f} | {p99:.2f} | "
                    f"{median(lambda r: r['model_fps']):.0f} | {p50 / (1000 / VIDEO_FPS):.1%} |",
                    flush=True,
                )
    print(
        f"\nmodel frame rate {summary['frame_rate']:g} fps ({summary['frame_rate_note']}): of each video's "
        f"{summary['frames']} frames the model ran {summary['model_frames']}"
    )
    return 0


if __name__ == "__main__":
    app.run(main)
