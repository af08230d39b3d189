"""The recognizer: which action is happening, live, from a camera, a video file or a network stream.

Example (a classifier from the few-shot runner, `python -m edge_ssl.cli.finetune ... --output_dir=out/classifier`):
  python -m edge_ssl.cli.recognize --classifier=out/classifier/classifier.tflite --source=my_video.mp4 \\
      --events=out/events.jsonl --annotate=out/annotated.mp4

Live, from the first camera, on two threads, quitting with Ctrl-C (events and video so far are kept):
  python -m edge_ssl.cli.recognize --classifier=out/classifier/classifier.tflite --source=0 --num_threads=2 \\
      --events=out/events.jsonl

`--source` is a video file, a folder of videos (one after another), a camera index (`0`), an `rtsp://` or
`http(s)://` URL, or a GStreamer pipeline ending in `appsink` (a Jetson CSI camera:
`nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! nvvidconv !
video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1`). Each event is a JSON line
{"start": s, "end": s, "label": ..., "confidence": ...} in the source's seconds. A status line is printed once a
second and a summary at the end. Runs without TensorFlow (LiteRT or ONNX Runtime). Exit status 2 for a bad flag or
input, with the reason and nothing written; 1 when a live source dropped and did not come back (what was written
is kept).
"""

import sys

from absl import app, flags

from edge_ssl.recognize import pipeline, sources, streaming

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "classifier",
    None,
    "classifier.tflite from the few-shot runner (or the runner's output folder).",
)
flags.DEFINE_string(
    "source",
    None,
    "Video file, folder of videos, camera index (0), rtsp:// or http(s):// URL, or GStreamer pipeline.",
)
flags.DEFINE_enum(
    "engine",
    "auto",
    list(streaming.ENGINES),
    "Runtime: auto (LiteRT when installed, else ONNX Runtime), litert, onnxruntime, tensorrt.",
)
flags.DEFINE_enum(
    "precision",
    "auto",
    list(streaming.PRECISIONS),
    "Which form runs; auto: the fastest on this machine, timed once and cached.",
)
flags.DEFINE_integer("num_threads", None, "CPU threads of the engine (its default when unset).")
flags.DEFINE_float(
    "threshold",
    0.6,
    "An action starts at this smoothed probability; below it everywhere is no action.",
)
flags.DEFINE_float(
    "hysteresis", 0.15, "The action ends when its probability falls below --threshold minus this."
)
flags.DEFINE_float(
    "smoothing", 0.5, "Time constant of the probabilities' moving average, seconds (0: none)."
)
flags.DEFINE_float("min_duration", 0.5, "Events shorter than this many seconds are dropped.")
flags.DEFINE_string(
    "motion_gate",
    "auto",
    "No action while too little moves: auto (a share of how much moved in the classifier's training windows, "
    "measured by the runner; off for a classifier without them), off, or the fraction of moving pixels in (0, 1) "
    "below which the model's window is still.",
)
flags.DEFINE_string("events", None, "Write the events here, one JSON object a line.")
flags.DEFINE_string(
    "frames",
    None,
    "Write every model frame's result here, one JSON object a line: time, the time its decision describes "
    "(centre), label (null: no action), confidence, probabilities.",
)
flags.DEFINE_string(
    "annotate", None, "Write the video with the action, confidence bar and FPS drawn (.mp4, .avi)."
)
flags.DEFINE_integer("max_frames", None, "Stop after this many frames of the source.")
flags.DEFINE_integer(
    "reconnects",
    sources.DEFAULT_RECONNECTS,
    "Times a live source is reopened after it stops delivering.",
)
flags.DEFINE_string(
    "artifact_dir",
    None,
    "The artifact directory the classifier was made from (default: the one it records), for other precisions, "
    "ONNX Runtime and TensorRT.",
)
flags.DEFINE_bool("status", True, "Print the status line once a second.")


def _summary(results: dict) -> str:
    def ms(value):
        return "-" if value is None else f"{value:.2f} ms"

    lines = [
        f"{results['engine']} {results['precision']} ({', '.join(results['model_files'])}); model frame rate "
        f"{results['frame_rate']:g} fps {results['frame_rate_note']}",
    ]
    if results["precision_choice"]:
        lines.append(f"precision {results['precision_choice']}")
    gate = results["motion_gate"]
    lines.append(
        "motion gate "
        + (f"{gate:.4f} of the pixels moving: " if gate is not None else "")
        + results["motion_gate_note"]
    )
    lines += [
        f"ended: {results['ended']}",
        f"frames {results['frames']} read, {results['model_frames']} run by the model, "
        f"{results['resampled_away']} resampled away, {results['skipped']} skipped (behind a live source), "
        f"{results['corrupt']} corrupt"
        + (f", {results['reconnects']} reconnects" if results["reconnects"] else "")
        + (f", {len(results['files_skipped'])} files skipped" if results["files_skipped"] else ""),
        f"events {results['events']} ({results['events_dropped_short']} shorter than --min_duration dropped)"
        + (f" -> {results['events_file']}" if results["events_file"] else "")
        + (f"; per-frame results -> {results['frames_file']}" if results["frames_file"] else ""),
        f"speed: {results['fps_end_to_end']:.1f} fps end to end (decode, preprocessing, model, outputs); model only "
        + (f"{results['model_fps']:.1f} fps" if results["model_fps"] else "-")
        + f", latency p50 {ms(results['latency_ms']['p50'])}, p99 {ms(results['latency_ms']['p99'])}; "
        f"peak memory {results['peak_memory_mib']:.0f} MiB",
    ]
    for entry in results["files_skipped"]:
        lines.append(f"  skipped {entry['path']}: {entry['reason']}")
    if results["annotated_video"]:
        lines.append(f"annotated video -> {results['annotated_video']}")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = pipeline.RecognizeConfig(
        classifier=FLAGS.classifier,
        source=FLAGS.source,
        engine=FLAGS.engine,
        precision=FLAGS.precision,
        num_threads=FLAGS.num_threads,
        threshold=FLAGS.threshold,
        hysteresis=FLAGS.hysteresis,
        smoothing=FLAGS.smoothing,
        min_duration=FLAGS.min_duration,
        motion_gate=FLAGS.motion_gate,
        events=FLAGS.events,
        frames=FLAGS.frames,
        annotate=FLAGS.annotate,
        max_frames=FLAGS.max_frames,
        reconnects=FLAGS.reconnects,
        artifact_dir=FLAGS.artifact_dir,
        status=FLAGS.status,
    )
    try:
        results = pipeline.run(config)
    except pipeline.RecognizeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(_summary(results))
    if results["dropped"]:
        print(f"error: {results['ended']}; what was written is kept", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required(["classifier", "source"])
    app.run(main)
