"""Scores a recognition run against the truth: frame accuracy, event precision and recall, boundary errors.

    truth = evaluate.read_truth(json.load(open("truth.json"))["segments"])   # [{"start", "end", "label"}]
    frames = [(f["centre"], f["label"]) for f in evaluate.read_jsonl("frames.jsonl") if f["warm"]]
    scores = evaluate.evaluate(truth, frames, evaluate.read_jsonl("events.jsonl"))

The inputs:
- **the truth**: segments {"start": s, "end": s, "label": name, or None for "no action"} that do not overlap; a time
  no segment covers is "no action" too. Adjacent segments of the same label are one action and are merged.
- **frames**: (time, label or None) for each frame the model decided, at the time the decision describes (the
  recognizer's `centre`, where events are timed too).
- **events**: {"start": s, "end": s, "label": name, "confidence": p}, as the recognizer writes them.

The rules:
- **Frame accuracy**: each frame's label against the true label at its time, "no action" counted as a class; also
  over the frames whose truth is an action (`action_frame_accuracy`) and those whose truth is no action.
- **Event matching**: events are taken in order of decreasing confidence (then start time); each is matched to the
  not yet matched true action segment of the same label with the largest temporal IoU (overlap over union of the two
  intervals), when that IoU is at least `iou_threshold` (0.5). Precision is matched events over events, recall
  matched segments over true action segments; each is None when its denominator is zero. A true "no action" segment
  is never a target: an event is an action.
- **Boundary errors** of matched pairs, in seconds, signed: the event's start minus the segment's start (positive:
  late), likewise for the ends; summarised by the median of their absolute values.

No TensorFlow, like the rest of `edge_ssl.recognize`.
"""

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence

import numpy as np

IOU_THRESHOLD = 0.5


class EvaluationError(ValueError):
    """A truth, frame or event the scoring cannot use; the message names it and says what is wrong."""


@dataclasses.dataclass(frozen=True)
class Segment:
    """A stretch of the true timeline: [start, end) seconds, `label` the action or None for no action."""

    start: float
    end: float
    label: str | None

    @property
    def seconds(self) -> float:
        return self.end - self.start


def _time(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EvaluationError(f"{what} must be a finite number of seconds, got {value!r}")
    return float(value)


def _label(value, what: str, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        expected = "a class name or null (no action)" if optional else "a class name"
        raise EvaluationError(f"{what} must be {expected}, got {value!r}")
    return value


def read_truth(segments: Iterable[dict]) -> list[Segment]:
    """Checks the true timeline and returns it as Segments in time order, adjacent runs of one label merged.

    Args:
      segments: dicts with "start" and "end" (seconds) and "label" (a class name, or None for no action).

    Raises:
      EvaluationError: a segment without those keys, ending before it starts, or overlapping another; or none.
    """
    out = []
    for k, segment in enumerate(segments):
        if not isinstance(segment, dict) or not {"start", "end", "label"} <= set(segment):
            raise EvaluationError(
                f"true segment {k} must be a dict with 'start', 'end' and 'label', got {segment!r}"
            )
        start = _time(segment["start"], f"true segment {k}'s start")
        end = _time(segment["end"], f"true segment {k}'s end")
        if end <= start:
            raise EvaluationError(f"true segment {k} ends ({end} s) before it starts ({start} s)")
        out.append(Segment(start, end, _label(segment["label"], f"true segment {k}'s label", True)))
    if not out:
        raise EvaluationError("the true timeline has no segments")
    out.sort(key=lambda s: s.start)
    merged = [out[0]]
    for segment in out[1:]:
        last = merged[-1]
        if segment.start < last.end - 1e-9:
            raise EvaluationError(
                f"true segments overlap: [{last.start}, {last.end}) and [{segment.start}, {segment.end}) s"
            )
        if segment.label == last.label and abs(segment.start - last.end) <= 1e-9:
            merged[-1] = Segment(last.start, segment.end, last.label)
        else:
            merged.append(segment)
    return merged


def label_at(truth: Sequence[Segment], times: Sequence[float]) -> list[str | None]:
    """The true label at each time: the segment with start <= t < end, or None (no action) where none covers t."""
    starts = np.array([s.start for s in truth])
    out = []
    for t in times:
        k = int(np.searchsorted(starts, t, side="right")) - 1
        out.append(truth[k].label if k >= 0 and t < truth[k].end else None)
    return out


def _fraction(hits: int, total: int) -> float | None:
    return hits / total if total else None


def frame_scores(truth: Sequence[Segment], frames: Iterable[tuple[float, str | None]]) -> dict:
    """Frame-level accuracy (see the module docstring).

    Args:
      truth: from `read_truth`.
      frames: (time in seconds, recognised label or None) per decided frame.

    Returns:
      {"frames", "frame_accuracy", "action_frames", "action_frame_accuracy", "no_action_frames",
      "no_action_frame_accuracy", "per_class": {label or "no action": {"frames", "accuracy"}}}; accuracies None
      where there are no frames to count.

    Raises:
      EvaluationError: a frame that is not (time, label or None).
    """
    times, labels = [], []
    for k, frame in enumerate(frames):
        if not isinstance(frame, (tuple, list)) or len(frame) != 2:
            raise EvaluationError(f"frame {k} must be (time, label or None), got {frame!r}")
        times.append(_time(frame[0], f"frame {k}'s time"))
        labels.append(_label(frame[1], f"frame {k}'s label", True))
    expected = label_at(truth, times)
    right = [a == b for a, b in zip(labels, expected)]
    action = [r for r, e in zip(right, expected) if e is not None]
    still = [r for r, e in zip(right, expected) if e is None]
    per_class = {}
    for name in sorted({e for e in expected if e is not None}) + [None]:
        hits = [r for r, e in zip(right, expected) if e == name]
        if hits:
            per_class[name or "no action"] = {
                "frames": len(hits),
                "accuracy": sum(hits) / len(hits),
            }
    return {
        "frames": len(right),
        "frame_accuracy": _fraction(sum(right), len(right)),
        "action_frames": len(action),
        "action_frame_accuracy": _fraction(sum(action), len(action)),
        "no_action_frames": len(still),
        "no_action_frame_accuracy": _fraction(sum(still), len(still)),
        "per_class": per_class,
    }


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Temporal intersection over union of the intervals a = (start, end) and b; 0 when the union is empty."""
    intersection = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return intersection / union if union > 0 else 0.0


def _check_events(events: Iterable[dict]) -> list[dict]:
    out = []
    for k, event in enumerate(events):
        if not isinstance(event, dict) or not {"start", "end", "label"} <= set(event):
            raise EvaluationError(
                f"event {k} must be a dict with 'start', 'end', 'label' (and 'confidence'), got {event!r}"
            )
        start = _time(event["start"], f"event {k}'s start")
        end = _time(event["end"], f"event {k}'s end")
        if end < start:
            raise EvaluationError(f"event {k} ends ({end} s) before it starts ({start} s)")
        confidence = _time(event.get("confidence", 0.0), f"event {k}'s confidence")
        out.append(
            {
                "start": start,
                "end": end,
                "label": _label(event["label"], f"event {k}'s label", False),
                "confidence": confidence,
            }
        )
    return out


def match_events(
    truth: Sequence[Segment], events: Sequence[dict], iou_threshold: float = IOU_THRESHOLD
) -> list[tuple[int, int, float]]:
    """Pairs events with true action segments by the rule of the module docstring.

    Args:
      truth: from `read_truth`.
      events: dicts with "start", "end", "label" and "confidence".
      iou_threshold: the least IoU of a match, in (0, 1].

    Returns:
      (event index, segment index in `truth`, IoU) per match, in the order they were made.

    Raises:
      EvaluationError: a malformed event, or an `iou_threshold` outside (0, 1].
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise EvaluationError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    checked = _check_events(events)
    order = sorted(
        range(len(checked)), key=lambda k: (-checked[k]["confidence"], checked[k]["start"])
    )
    taken, matches = set(), []
    for k in order:
        event = checked[k]
        best, best_iou = None, 0.0
        for j, segment in enumerate(truth):
            if j in taken or segment.label != event["label"]:
                continue
            overlap = iou((event["start"], event["end"]), (segment.start, segment.end))
            if overlap > best_iou:
                best, best_iou = j, overlap
        if best is not None and best_iou >= iou_threshold:
            taken.add(best)
            matches.append((k, best, best_iou))
    return matches


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None


def event_scores(
    truth: Sequence[Segment], events: Sequence[dict], iou_threshold: float = IOU_THRESHOLD
) -> dict:
    """Event precision and recall and the matched events' boundary errors (see the module docstring).

    Returns:
      {"events", "true_segments" (actions only), "matched", "precision", "recall", "iou_threshold",
      "matches": [{"event", "segment", "label", "iou", "start_error", "end_error"}], "median_abs_start_error",
      "median_abs_end_error", "median_abs_boundary_error" (over starts and ends together), "median_start_error",
      "median_end_error" (signed)}; medians None without matches.
    """
    checked = _check_events(events)
    matches = match_events(truth, checked, iou_threshold)
    actions = sum(1 for s in truth if s.label is not None)
    pairs = []
    for k, j, overlap in sorted(matches):
        event, segment = checked[k], truth[j]
        pairs.append(
            {
                "event": k,
                "segment": j,
                "label": segment.label,
                "iou": round(overlap, 4),
                "start_error": round(event["start"] - segment.start, 4),
                "end_error": round(event["end"] - segment.end, 4),
            }
        )
    starts = [p["start_error"] for p in pairs]
    ends = [p["end_error"] for p in pairs]
    return {
        "events": len(checked),
        "true_segments": actions,
        "matched": len(matches),
        "precision": _fraction(len(matches), len(checked)),
        "recall": _fraction(len(matches), actions),
        "iou_threshold": iou_threshold,
        "matches": pairs,
        "median_abs_start_error": _median(np.abs(starts)),
        "median_abs_end_error": _median(np.abs(ends)),
        "median_abs_boundary_error": _median(np.abs(starts + ends)),
        "median_start_error": _median(starts),
        "median_end_error": _median(ends),
    }


def evaluate(
    truth: Sequence[Segment] | Iterable[dict],
    frames: Iterable[tuple[float, str | None]],
    events: Iterable[dict],
    iou_threshold: float = IOU_THRESHOLD,
) -> dict:
    """Every score of a run: `frame_scores` and `event_scores` in one dict.

    Args:
      truth: Segments, or the dicts `read_truth` takes.
      frames: (time, label or None) per decided frame.
      events: the recognizer's events.
      iou_threshold: the least IoU of an event match.
    """
    truth = list(truth)
    if not truth or not all(isinstance(s, Segment) for s in truth):
        truth = read_truth(truth)
    return {**frame_scores(truth, frames), **event_scores(truth, list(events), iou_threshold)}


def read_jsonl(path: str) -> list[dict]:
    """The objects of a JSON-lines file (the recognizer's events or frames), blank lines ignored.

    Raises:
      EvaluationError: the file is missing, or a line is not a JSON object (the line is named).
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise EvaluationError(f"cannot read {path}: {e.strerror or e}") from e
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvaluationError(f"{path}:{number} is not JSON ({e.msg})") from e
        if not isinstance(value, dict):
            raise EvaluationError(f"{path}:{number} is not a JSON object")
        out.append(value)
    return out
