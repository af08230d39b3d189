"""A recognition run: a source through the recognizer into events, a status line, an annotated video and a summary.

`run(RecognizeConfig(...))` is what `python -m edge_ssl.cli.recognize` calls. In order:
1. checks every setting and input before anything is written: the decision settings, the output paths, the
   classifier (`streaming.open_classifier`: a classifier with a `step` signature and labels, not an embedding model)
   and the source (`sources.open_source`: the file exists, the camera opens, the URL scheme is supported), each
   failure a `RecognizeError` whose message says what to do;
2. streams the source through the `Recognizer`: a file's every frame is read and the due ones run (never skipped),
   a live source's newest due frame runs and the ones it replaced are counted as skipped;
3. writes each event as one JSON line as soon as it ends (`--events`; flushed, so a live run's events can be followed
   and a run that ends early keeps them), each model frame's result as one JSON line (`--frames`: its time, the time
   its decision describes (`centre`, where events are timed), whether the model had seen a full window yet, the
   label or null for no action, the confidence, the model's probabilities and the smoothed ones, the window's
   moving fraction and whether the motion gate called it still; what `evaluate` scores), prints a status line once
   a second (current action, FPS, model latency p50), writes the annotated video (`--annotate`: label, confidence
   bar, FPS on every frame) beside its path and renames it into place when the run ends
   (`edge_ssl.files.atomic_path`), also when a live source dropped for good or the user pressed Ctrl-C (what was
   recorded is kept); an error midway removes it;
4. returns the summary: frames read, run, resampled away, skipped and corrupt; FPS end to end and model-only; model
   latency p50/p99; peak memory; why the run ended; the motion gate and where it came from.
"""

import contextlib
import dataclasses
import json
import os
import sys
import time

import cv2
import numpy as np

from edge_ssl import files
from edge_ssl.data import decode
from edge_ssl.data.folder_index import ClipUnreadable
from edge_ssl.recognize import decisions
from edge_ssl.recognize import recognizer as recognizer_lib
from edge_ssl.recognize import sources, streaming
from edge_ssl.recognize.recognizer import FrameResult, Recognizer
from export.runtime import machine

VIDEO_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
NO_ACTION = "no action"


class RecognizeError(ValueError):
    """A setting or input the run cannot use, found before anything is written; the message says what to do."""


@dataclasses.dataclass
class RecognizeConfig:
    """The recognizer's settings (the CLI's flags)."""

    classifier: str
    source: str
    engine: str = "auto"
    precision: str = "auto"
    num_threads: int | None = None
    threshold: float = 0.6
    hysteresis: float = 0.15
    smoothing: float = 0.5
    min_duration: float = 0.5
    motion_gate: str = "auto"
    events: str | None = None
    frames: str | None = None
    annotate: str | None = None
    max_frames: int | None = None
    reconnects: int = sources.DEFAULT_RECONNECTS
    artifact_dir: str | None = None
    status: bool = True


def _check_output(path: str | None, flag: str, extensions: tuple[str, ...] | None = None) -> None:
    if path is None:
        return
    if os.path.isdir(path):
        raise RecognizeError(f"--{flag}={path} is a folder; name a file")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.access(folder, os.W_OK):
        raise RecognizeError(f"--{flag}={path}: {folder} is not writable")
    if extensions and os.path.splitext(path)[1].lower() not in extensions:
        raise RecognizeError(f"--{flag}={path} must end in one of {', '.join(extensions)}")


def _check_settings(config: RecognizeConfig) -> decisions.DecisionConfig:
    rules = decisions.DecisionConfig(
        config.threshold, config.hysteresis, config.smoothing, config.min_duration
    )
    try:
        rules.validate()
    except ValueError as e:
        raise RecognizeError(str(e)) from e
    if config.max_frames is not None and config.max_frames < 1:
        raise RecognizeError(
            f"--max_frames must be >= 1 (or unset: the whole source), got {config.max_frames}"
        )
    if config.reconnects < 0:
        raise RecognizeError(f"--reconnects must be >= 0, got {config.reconnects}")
    try:
        # The setting's form only: "auto" is resolved once the classifier is open.
        recognizer_lib.motion_gate(config.motion_gate, None)
    except recognizer_lib.GateError as e:
        raise RecognizeError(str(e)) from e
    _check_output(config.events, "events")
    _check_output(config.frames, "frames")
    _check_output(config.annotate, "annotate", tuple(VIDEO_FOURCC))
    outputs = [(f, p) for f, p in (("events", config.events), ("frames", config.frames)) if p]
    outputs += [("annotate", config.annotate)] if config.annotate else []
    for i, (flag, path) in enumerate(outputs):
        for other, other_path in outputs[i + 1 :]:
            if os.path.abspath(path) == os.path.abspath(other_path):
                raise RecognizeError(f"--{flag} and --{other} name the same file")
    return rules


class _Status:
    """The status line, redrawn in place on a terminal, a new line each second otherwise."""

    def __init__(self, stream):
        self.stream = stream
        self._tty = hasattr(stream, "isatty") and stream.isatty()
        self._next = time.monotonic() + 1.0

    def update(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.stream is None or (now < self._next and not force):
            return
        self._next = now + 1.0
        if self._tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.stream is not None and self._tty:
            self.stream.write("\n")
            self.stream.flush()


def _draw(image: np.ndarray, result: FrameResult | None, fps: float) -> np.ndarray:
    """A copy of BGR `image` with the current action, its confidence as a bar, and the FPS."""
    out = decode.to_rgb8(image)[..., ::-1].copy()  # any OpenCV image -> BGR uint8
    h, w = out.shape[:2]
    scale = max(0.3, h / 720.0)
    thickness = max(1, int(round(2 * scale)))
    band = int(36 * scale) + 4
    cv2.rectangle(out, (0, 0), (w, band), (0, 0, 0), -1)
    if result is None or not result.warm:
        text, confidence, colour = "warming up", 0.0, (160, 160, 160)
    elif result.label is None:
        text, confidence, colour = NO_ACTION, result.confidence, (160, 160, 160)
    else:
        text, confidence, colour = result.label, result.confidence, (80, 220, 80)
    cv2.putText(
        out,
        f"{text} {confidence:.2f}",
        (4, int(24 * scale) + 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.8 * scale,
        colour,
        thickness,
        cv2.LINE_AA,
    )
    bar = int((w - 8) * float(np.clip(confidence, 0, 1)))
    cv2.rectangle(out, (4, band - 4), (4 + bar, band - 1), colour, -1)
    cv2.putText(
        out,
        f"{fps:.0f} fps",
        (max(4, w - int(110 * scale)), int(24 * scale) + 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.6 * scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return out


class _Annotator:
    """Writes annotated frames to a temporary path; the caller renames it into place."""

    def __init__(self, path: str, fourcc: str):
        self.path, self.fourcc = path, fourcc
        self.writer, self.size, self.frames = None, None, 0

    def write(self, image: np.ndarray, fps: float) -> None:
        """Adds a frame; the first one sets the video's size and frame rate."""
        if self.writer is None:
            self.fps = fps
            self.size = (image.shape[1], image.shape[0])
            self.writer = cv2.VideoWriter(
                self.path, cv2.VideoWriter_fourcc(*self.fourcc), self.fps, self.size
            )
            if not self.writer.isOpened():
                raise OSError(f"OpenCV cannot write {self.fourcc} video to {self.path}")
        if (image.shape[1], image.shape[0]) != self.size:  # a folder's videos of other sizes
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def _frame_line(result: FrameResult, delay: float, folder: bool, stream: str | None) -> dict:
    """One line of `--frames`: a model frame's result, times in the source's seconds."""
    line = {
        "time": round(float(result.time), 4),
        "centre": round(float(result.time) - delay, 4),
        "warm": bool(result.warm),
        "label": result.label,
        "confidence": round(float(result.confidence), 4),
        "probabilities": [round(float(p), 4) for p in result.probabilities],
        "smoothed": [round(float(p), 4) for p in result.smoothed],
        "moving": None if result.moving is None else round(float(result.moving), 5),
        "still": bool(result.still),
    }
    if folder:
        line["source"] = stream
    return line


def _percentile_ms(seconds: list[float], q: float) -> float | None:
    return float(np.percentile(seconds, q) * 1000.0) if seconds else None


def recognize(
    source,
    recognizer: Recognizer,
    events_path: str | None = None,
    annotate_path: str | None = None,
    max_frames: int | None = None,
    status_stream=None,
    frames_path: str | None = None,
) -> dict:
    """Streams `source` through `recognizer` into the outputs; returns the summary (see the module docstring).

    Args:
      source: from `sources.open_source` (or any object with `frames()`, `counters`, `ended`, `live`, `fps`,
        `name`, and `close()` when live).
      recognizer: the recognizer (its classifier loaded).
      events_path: JSON-lines file of events, written as they end; None: not written.
      annotate_path: annotated video; None: not written.
      max_frames: stop after this many frames taken from the source (a file's first frames; a live source's
        frames that were not skipped).
      status_stream: where the status line goes (None: nowhere).
      frames_path: JSON-lines file of every model frame's result (see the module docstring); None: not written.
    """
    folder = getattr(source, "folder", False)
    status = _Status(status_stream)
    started = time.perf_counter()
    last, ended = None, None
    events_file = frames_file = None
    interrupted = False
    with contextlib.ExitStack() as stack:
        if events_path:
            os.makedirs(os.path.dirname(os.path.abspath(events_path)), exist_ok=True)
            events_file = stack.enter_context(open(events_path, "w", encoding="utf-8"))
        if frames_path:
            os.makedirs(os.path.dirname(os.path.abspath(frames_path)), exist_ok=True)
            frames_file = stack.enter_context(open(frames_path, "w", encoding="utf-8"))
        annotator = None
        if annotate_path:
            extension = os.path.splitext(annotate_path)[1].lower()
            temporary = stack.enter_context(
                files.atomic_path(annotate_path, suffix=".partial" + extension)
            )
            annotator = _Annotator(temporary, VIDEO_FOURCC[extension])
            stack.callback(annotator.close)

        def emit(events, stream):
            for event in events:
                if folder:
                    event["source"] = stream
                if events_file:
                    events_file.write(json.dumps(event) + "\n")
                    events_file.flush()

        stream, taken = None, 0
        try:
            for frame in source.frames():
                taken += 1
                if frame.new_stream:
                    emit(recognizer.reset(), stream)
                    last = None
                stream = frame.stream
                result = None
                if frame.due or annotator is not None:
                    try:
                        rgb = decode.to_rgb8(frame.image)
                    except ClipUnreadable:
                        source.counters.corrupt += 1
                        continue
                    if frame.due:
                        result = last = recognizer.infer(rgb, frame.seconds)
                        emit(result.events, stream)
                        if frames_file:
                            frames_file.write(
                                json.dumps(_frame_line(result, recognizer.delay, folder, stream))
                                + "\n"
                            )
                elapsed = time.perf_counter() - started
                fps_now = source.counters.read / elapsed if elapsed > 0 else 0.0
                if annotator is not None and (not source.live or frame.due):
                    # A file keeps its every frame and rate; a live source's video has the frames the model ran.
                    rate = (
                        frame.fps
                        if not source.live and frame.fps
                        else recognizer.classifier.frame_rate
                    )
                    annotator.write(_draw(frame.image, last, fps_now), rate)
                if last is not None:
                    action = (last.label or NO_ACTION) if last.warm else "warming up"
                    p50 = _percentile_ms(recognizer.model_seconds[-200:], 50)
                    status.update(
                        f"[{frame.seconds:7.1f} s] {action} {last.confidence:.2f} | {fps_now:.1f} fps | "
                        f"model p50 {p50:.2f} ms | skipped {source.counters.skipped}"
                    )
                if max_frames and taken >= max_frames:
                    ended = f"--max_frames={max_frames} reached"
                    break
        except KeyboardInterrupt:
            interrupted = True
            ended = "interrupted (Ctrl-C)"
        finally:
            if source.live:
                source.close(ended)
        emit(recognizer.finish(), stream)
        status.done()
    seconds = time.perf_counter() - started
    model_seconds = recognizer.model_seconds
    counters = source.counters
    return {
        "source": source.name,
        "live": source.live,
        "ended": ended or source.ended or "end of the source",
        "interrupted": interrupted,
        "dropped": bool(source.live and source.ended and "did not come back" in source.ended),
        "frames": counters.read,
        "model_frames": len(model_seconds),
        "resampled_away": counters.resampled_away,
        "skipped": counters.skipped,
        "corrupt": counters.corrupt,
        "reconnects": counters.reconnects,
        "files": counters.files,
        "files_skipped": [{"path": p, "reason": r} for p, r in counters.files_skipped],
        "events": len(recognizer.events),
        "events_dropped_short": recognizer.detector.dropped,
        "seconds": seconds,
        "fps_end_to_end": counters.read / seconds if seconds > 0 else 0.0,
        "model_fps": 1.0 / float(np.mean(model_seconds)) if model_seconds else None,
        "latency_ms": {
            "p50": _percentile_ms(model_seconds, 50),
            "p99": _percentile_ms(model_seconds, 99),
        },
        "peak_memory_mib": machine.peak_memory_mib(),
        "source_fps": source.fps,
        "events_file": events_path,
        "frames_file": frames_path,
        "annotated_video": annotate_path,
    }


def run(config: RecognizeConfig, status_stream=sys.stderr) -> dict:
    """Runs the recognizer as configured; returns the summary, with the classifier's facts added.

    Raises:
      RecognizeError: a bad setting or input (see the module docstring); nothing is written then.
    """
    rules = _check_settings(config)
    try:
        classifier = streaming.open_classifier(
            config.classifier,
            config.engine,
            config.precision,
            config.num_threads,
            config.artifact_dir,
        )
    except streaming.ClassifierError as e:
        raise RecognizeError(str(e)) from e
    try:
        source = sources.open_source(config.source, classifier.frame_rate, config.reconnects)
    except sources.SourceError as e:
        raise RecognizeError(str(e)) from e
    recognizer = Recognizer(classifier, rules, source.fps, config.motion_gate)
    summary = recognize(
        source,
        recognizer,
        config.events,
        config.annotate,
        config.max_frames,
        status_stream if config.status else None,
        config.frames,
    )
    summary.update(
        classifier=classifier.path,
        labels=classifier.labels,
        engine=classifier.engine,
        precision=classifier.precision,
        precision_choice=classifier.choice,
        model_files=classifier.files,
        frame_rate=classifier.frame_rate,
        frame_rate_note=classifier.frame_rate_note,
        motion_gate=recognizer.gate,
        motion_gate_note=recognizer.gate_note,
        settings=dataclasses.asdict(config),
    )
    return summary
