"""The demo's live stage: the recognizer on one long video of held-out actions, scored against what was in it.

1. `write_video` puts held-out clips of known actions (the demo's `heldout/video/<class>/*.mp4`) back to back:
   `segments_per_class` segments per class, each `clips_per_segment` clips of that class, in a seeded shuffled order
   in which no two neighbouring segments share a class, with `stills` still stretches between segments (the last
   frame before them held for `still_seconds` with fresh camera noise on every frame, `still_noise` grey levels:
   a person who stopped moving in front of a real sensor, so "no action" can be seen). The true
   timeline goes to `truth.json`. Clips of the performances the runner's classifier was fitted on (the runner's
   `metrics.json` lists its `train_clips`; a performance is a clip name without its `_view<k>` camera, as the world
   names them) are used only when a class has too few others, and `truth.json` says how many were; when the runner
   did not list its clips, it says that they may be among them.
2. `run` then runs the recognizer on it as a user would (`edge_ssl.recognize.pipeline.run` with the defaults:
   events.jsonl, frames.jsonl, summary.json) and scores it with `edge_ssl.recognize.evaluate` (scores.json): frame
   accuracy over the frames decided after the first full window, at the time each decision describes, and events
   matched at temporal IoU 0.5; beside them the classifier alone, without the decisions: how often each action
   frame's most probable class is the true one.
"""

import dataclasses
import json
import os
import re

import cv2
import numpy as np

from edge_ssl import files
from edge_ssl.data import decode, video_folder
from edge_ssl.data.folder_index import ClipUnreadable, DataFolderError
from export.runtime import layout

VERSION = 2  # bumped when what the stage writes changes, so a finished demo runs it again
VIDEO = "live.mp4"
TRUTH = "truth.json"
EVENTS = "events.jsonl"
FRAMES = "frames.jsonl"
SUMMARY = "summary.json"
SCORES = "scores.json"

_VIEW = re.compile(r"_view\d+$")
# The clips are drawn from a random stream of their own: with the bare seed 0 the draws per class repeat the
# runner's `select_shots(seed=0)` exactly, and a video of only the runner's training clips would look better than
# it is whenever the runner did not list them.
_STREAM = 23


class LiveError(ValueError):
    """The held-out folder, the runner's output or a setting cannot make the live video; the message says why."""


@dataclasses.dataclass(frozen=True)
class LiveSettings:
    """How long the live video is.

    Attributes:
      segments_per_class: stretches of each action in the video.
      clips_per_segment: clips of the action back to back in each stretch (other performances or cameras).
      stills: still stretches, each between two action segments.
      still_seconds: how long each still stretch lasts.
      still_noise: standard deviation of the camera noise on the still frames, grey levels (the world's cameras
        draw 0-5).
      seed: the clips' choice and order.
    """

    segments_per_class: int = 4
    clips_per_segment: int = 3
    stills: int = 3
    still_seconds: float = 3.0
    still_noise: float = 4.0
    seed: int = 0

    def validate(self) -> None:
        """Raises LiveError naming the setting that is out of range."""
        if self.segments_per_class < 1:
            raise LiveError(f"segments_per_class must be >= 1, got {self.segments_per_class}")
        if self.clips_per_segment < 1:
            raise LiveError(f"clips_per_segment must be >= 1, got {self.clips_per_segment}")
        if self.stills < 0:
            raise LiveError(f"stills must be >= 0, got {self.stills}")
        if self.stills and not self.still_seconds > 0:
            raise LiveError(f"still_seconds must be > 0, got {self.still_seconds}")
        if not 0 <= self.still_noise < 64:
            raise LiveError(f"still_noise must be in [0, 64) grey levels, got {self.still_noise}")


def performance(path: str) -> str:
    """The performance a clip shows: its class folder and name without the camera (`jump/p0002_view1.mp4` ->
    `jump/p0002`); a name without `_view<k>` is its own performance."""
    folder, name = os.path.split(os.path.normpath(path))
    stem = _VIEW.sub("", os.path.splitext(name)[0])
    return os.path.join(os.path.basename(folder), stem)


def read_train_clips(runner_dir: str) -> list[str] | None:
    """The clips the runner fitted its classifier on (relative to its --train_dir), or None when it did not say.

    Raises:
      LiveError: the runner's metrics.json is missing or not JSON.
    """
    path = layout.ClassifierDir(runner_dir).metrics
    try:
        metrics = layout.ClassifierDir(runner_dir).read_metrics()
    except (OSError, json.JSONDecodeError) as e:
        raise LiveError(f"cannot read the runner's {path}: {e}") from e
    clips = metrics.get("train_clips")
    return list(clips) if isinstance(clips, list) else None


def _order(classes: list[str], settings: LiveSettings, rng: np.random.Generator) -> list[str]:
    """Each class `segments_per_class` times, shuffled so that no two neighbours share a class where possible."""
    pool = [c for c in classes for _ in range(settings.segments_per_class)]
    order = pool
    for _ in range(1000):
        order = [pool[i] for i in rng.permutation(len(pool))]
        if all(a != b for a, b in zip(order, order[1:])):
            break
    return order


def _choose(index, train_clips: list[str] | None, settings: LiveSettings, rng) -> tuple[dict, int]:
    """Per class, the clips the video uses: other performances than the runner's first, then the runner's
    performances' other cameras, then its own clips. Returns ({class: [clip]}, clips from the runner's performances).
    """
    need = settings.segments_per_class * settings.clips_per_segment
    train = {os.path.normpath(p) for p in train_clips or []}
    seen = {performance(p) for p in train}
    chosen, from_seen = {}, 0
    for label, name in enumerate(index.classes):
        members = [c for c in index.clips if c.label == label]
        if len(members) < need:
            raise LiveError(
                f"class '{name}' has {len(members)} readable clips in {index.root}; the live video needs {need} "
                f"({settings.segments_per_class} segments of {settings.clips_per_segment} clips)"
            )
        ranks = ([], [], [])
        for clip in members:
            relative = os.path.relpath(clip.path, index.root)
            rank = 2 if relative in train else 1 if performance(relative) in seen else 0
            ranks[rank].append(clip)
        ordered = [rank[i] for rank in ranks for i in rng.permutation(len(rank))]
        chosen[name] = ordered[:need]
        from_seen += sum(
            1 for c in chosen[name] if performance(os.path.relpath(c.path, index.root)) in seen
        )
    return chosen, from_seen


def write_video(
    heldout_dir: str, folder: str, settings: LiveSettings, train_clips: list[str] | None
) -> dict:
    """Writes `folder/live.mp4` and `folder/truth.json` (see the module docstring); returns the truth.

    Args:
      heldout_dir: a video folder, `<class>/<clip>.mp4` (the demo's held-out classes).
      folder: where the video and its truth go.
      settings: the video's size.
      train_clips: the clips the classifier was fitted on, relative to `heldout_dir`; None: unknown.

    Raises:
      LiveError: a bad setting, a folder without enough readable clips per class, or clips of differing frame rates.
    """
    settings.validate()
    try:
        index = video_folder.index_video_folder(heldout_dir)
    except DataFolderError as e:
        raise LiveError(str(e)) from e
    rng = np.random.default_rng([_STREAM, settings.seed])
    chosen, from_seen = _choose(index, train_clips, settings, rng)
    order = _order(index.classes, settings, rng)
    gaps = min(settings.stills, len(order) - 1)
    stills_before = set(rng.choice(np.arange(1, len(order)), gaps, replace=False).tolist())
    noise_rng = np.random.default_rng([_STREAM, settings.seed, 1])
    first = next(iter(chosen.values()))[0]
    fps = first.fps
    if not fps > 0:
        raise LiveError(f"{first.path} does not record its frame rate; the live video needs it")
    for clip in (c for clips in chosen.values() for c in clips):
        if abs(clip.fps - fps) > 1e-3:
            raise LiveError(
                f"{clip.path} runs at {clip.fps:g} fps and {first.path} at {fps:g}; the live video needs clips "
                "of one frame rate"
            )
    size = None
    segments, frame_count, taken = [], 0, {name: 0 for name in chosen}
    video = os.path.join(folder, VIDEO)
    with files.atomic_path(video, suffix=".partial.mp4") as tmp:
        writer, last = None, None
        try:
            for k, name in enumerate(order):
                if k in stills_before:
                    hold = int(round(settings.still_seconds * fps))
                    for _ in range(hold):
                        noise = noise_rng.normal(0.0, settings.still_noise, last.shape)
                        writer.write(np.clip(last + noise, 0, 255).astype(np.uint8))
                    segments.append(_segment(frame_count, frame_count + hold, fps, None, []))
                    frame_count += hold
                clips = chosen[name][taken[name] : taken[name] + settings.clips_per_segment]
                taken[name] += settings.clips_per_segment
                start = frame_count
                for clip in clips:
                    try:
                        frames = decode.read_video(clip.path)
                    except ClipUnreadable as e:
                        raise LiveError(f"{clip.path}: {e}") from e
                    if writer is None:
                        size = (frames.shape[2], frames.shape[1])
                        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                        if not writer.isOpened():
                            raise LiveError(f"OpenCV cannot write mp4v video to {video}")
                    for rgb in frames:
                        if (rgb.shape[1], rgb.shape[0]) != size:
                            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                        last = np.ascontiguousarray(rgb[..., ::-1])
                        writer.write(last)
                    frame_count += len(frames)
                relative = [os.path.relpath(c.path, index.root) for c in clips]
                segments.append(_segment(start, frame_count, fps, name, relative))
        finally:
            if writer is not None:
                writer.release()
    truth = {
        "video": VIDEO,
        "fps": fps,
        "frames": frame_count,
        "seconds": round(frame_count / fps, 3),
        "size": list(size),
        "classes": index.classes,
        "settings": dataclasses.asdict(settings),
        "segments": segments,
        "runner_clips": {
            "listed": train_clips is not None,
            "clips_of_their_performances": from_seen,
            "note": _support_note(train_clips, from_seen),
        },
    }
    files.write_json_atomic(os.path.join(folder, TRUTH), truth)
    return truth


def _segment(start: int, end: int, fps: float, label: str | None, clips: list[str]) -> dict:
    return {
        "start": round(start / fps, 4),
        "end": round(end / fps, 4),
        "label": label,
        "clips": clips,
    }


def _support_note(train_clips: list[str] | None, from_seen: int) -> str:
    if train_clips is None:
        return (
            "the runner's metrics.json does not list the clips its classifier was fitted on, so they may be "
            "among the video's clips"
        )
    if from_seen:
        return f"{from_seen} of the video's clips show performances the classifier was fitted on (too few others)"
    return "no clip of the video shows a performance the classifier was fitted on"


def run(folder: str, runner_dir: str, heldout_dir: str, settings: LiveSettings, log=None) -> dict:
    """Writes the video, runs the recognizer on it and scores it; returns the stage's result.

    Args:
      folder: the stage's folder.
      runner_dir: the runner's output folder (classifier.tflite, metrics.json).
      heldout_dir: the held-out video folder the runner was fitted on.
      settings: the video's size.
      log: a text stream for the recognizer's status lines (None: none).

    Returns:
      Paths of what was written and the headline figures (`figures`).

    Raises:
      LiveError: see `write_video`, `read_train_clips`; or the recognizer refused the classifier or the video.
    """
    from edge_ssl.recognize import (  # pylint: disable=g-import-not-at-top
        evaluate,
        pipeline,
    )

    truth = write_video(heldout_dir, folder, settings, read_train_clips(runner_dir))
    config = pipeline.RecognizeConfig(
        classifier=runner_dir,
        source=os.path.join(folder, VIDEO),
        events=os.path.join(folder, EVENTS),
        frames=os.path.join(folder, FRAMES),
        status=log is not None,
    )
    try:
        summary = pipeline.run(config, status_stream=log)
    except pipeline.RecognizeError as e:
        raise LiveError(f"the recognizer refused its inputs: {e}") from e
    files.write_json_atomic(os.path.join(folder, SUMMARY), summary)
    decided = [f for f in evaluate.read_jsonl(config.frames) if f["warm"]]
    true_segments = evaluate.read_truth(truth["segments"])
    frames = [(f["centre"], f["label"]) for f in decided]
    scores = evaluate.evaluate(true_segments, frames, evaluate.read_jsonl(config.events))
    # The classifier alone, without the decisions: each frame's most probable class against the truth.
    argmax = [(f["centre"], summary["labels"][int(np.argmax(f["probabilities"]))]) for f in decided]
    scores["action_frame_argmax_accuracy"] = evaluate.frame_scores(true_segments, argmax)[
        "action_frame_accuracy"
    ]
    # How the recognizer ran; "precision" is already the events' precision.
    scores.update(
        fps_end_to_end=summary["fps_end_to_end"],
        model_fps=summary["model_fps"],
        latency_ms=summary["latency_ms"],
        engine=summary["engine"],
        model_precision=summary["precision"],
        decisions={
            k: summary["settings"][k]
            for k in ("threshold", "hysteresis", "smoothing", "min_duration", "motion_gate")
        },
        motion_gate=summary["motion_gate"],
        motion_gate_note=summary["motion_gate_note"],
    )
    files.write_json_atomic(os.path.join(folder, SCORES), scores)
    figures = {
        key: scores[key]
        for key in (
            "frame_accuracy",
            "action_frame_accuracy",
            "no_action_frame_accuracy",
            "action_frame_argmax_accuracy",
            "precision",
            "recall",
            "events",
            "true_segments",
            "matched",
            "median_abs_start_error",
            "median_abs_end_error",
            "median_abs_boundary_error",
            "fps_end_to_end",
            "model_fps",
        )
    }
    return {
        "folder": folder,
        "video": os.path.join(folder, VIDEO),
        "truth": os.path.join(folder, TRUTH),
        "events": config.events,
        "frames": config.frames,
        "summary": os.path.join(folder, SUMMARY),
        "scores": os.path.join(folder, SCORES),
        "seconds_of_video": truth["seconds"],
        "stills": sum(1 for segment in truth["segments"] if segment["label"] is None),
        "model_frames": summary["model_frames"],
        "engine": summary["engine"],
        "precision": summary["precision"],
        "runner_clips": truth["runner_clips"],
        "motion_gate": summary["motion_gate"],
        "motion_gate_note": summary["motion_gate_note"],
        "figures": figures,
    }


def percent(value: float | None) -> str:
    """A fraction as a percentage, "-" for None (a figure with nothing to count)."""
    return "-" if value is None else f"{value:.1%}"


def headline(result: dict) -> str:
    """One line of the stage's figures, for the terminal."""
    f = result["figures"]
    boundary = f["median_abs_boundary_error"]
    return (
        f"frame accuracy {percent(f['frame_accuracy'])} (action frames {percent(f['action_frame_accuracy'])}, "
        f"still {percent(f['no_action_frame_accuracy'])}); events: precision {percent(f['precision'])}, recall "
        f"{percent(f['recall'])}; median boundary error "
        + ("-" if boundary is None else f"{boundary:.2f} s")
        + f"; {f['fps_end_to_end']:.0f} fps end to end"
    )
