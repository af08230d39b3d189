"""From per-frame class probabilities to the current action and action events.

Three rules, applied to each frame's probabilities in order:
1. **Smoothing**: an exponential moving average with time constant `smoothing` seconds, p <- p + a (x - p) with
   a = 1 - exp(-dt / smoothing) for the dt since the last frame, so the same setting means the same thing at any frame
   rate (0 turns it off).
2. **Hysteresis**: no action is active until one class's smoothed probability reaches `threshold`; the active one
   stays until it falls below `threshold - hysteresis`, or another class reaches `threshold` with a higher
   probability (a direct switch). Below `threshold` everywhere is "no action": a person standing still, whose
   probabilities spread over the classes, is not labelled with the nearest class.
3. **Minimum duration**: an event shorter than `min_duration` seconds is dropped when it ends (a flicker is not an
   action).
4. **Stillness**: a frame the caller marks `still` (the recognizer's motion gate: too little of the model's window
   moved, see `edge_ssl.recognize.recognizer`) is no action whatever the probabilities: the active action ends there
   and none starts. Probabilities over known actions cannot say "nothing happens" (a still person's often peak on
   one class), so stillness is decided from the pixels instead.

An event is {"start": s, "end": s, "label": name, "confidence": mean smoothed probability of its label over its
frames}, in the times given to `update` (the source's seconds). Its start is the frame its class reached the
threshold, its end the frame the class was left, so both lag the true boundary by about half the model's window plus
the smoothing.
"""

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class DecisionConfig:
    """How frames become actions.

    Attributes:
      threshold: an action starts when its smoothed probability reaches this; below it everywhere is no action.
      hysteresis: the active action ends when its smoothed probability falls below `threshold - hysteresis`.
      smoothing: time constant of the exponential moving average, seconds (0: none).
      min_duration: events shorter than this many seconds are dropped.
    """

    threshold: float = 0.6
    hysteresis: float = 0.15
    smoothing: float = 0.5
    min_duration: float = 0.5

    def validate(self) -> None:
        """Raises ValueError naming the setting (as its command-line flag) that is out of range."""
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"--threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.hysteresis < self.threshold:
            raise ValueError(
                f"--hysteresis must be in [0, --threshold={self.threshold}), got {self.hysteresis}"
            )
        if self.smoothing < 0 or not math.isfinite(self.smoothing):
            raise ValueError(f"--smoothing must be >= 0 seconds, got {self.smoothing}")
        if self.min_duration < 0 or not math.isfinite(self.min_duration):
            raise ValueError(f"--min_duration must be >= 0 seconds, got {self.min_duration}")


@dataclasses.dataclass
class Decision:
    """One frame's outcome.

    Attributes:
      smoothed: float32 [C], the smoothed probabilities.
      label: the active action, or None for no action.
      confidence: the active action's smoothed probability (the largest one when there is none).
      ended: events that ended at this frame and lasted long enough.
    """

    smoothed: np.ndarray
    label: str | None
    confidence: float
    ended: list[dict]


class EventDetector:
    """Applies `DecisionConfig`'s rules to a stream of probabilities; `reset` starts a new stream."""

    def __init__(self, labels: list[str], config: DecisionConfig = DecisionConfig()):
        config.validate()
        self.labels = list(labels)
        self.config = config
        self.dropped = 0  # events shorter than min_duration
        self.reset()

    def reset(self) -> None:
        self._smoothed = None
        self._last_time = None
        self._active = None  # (class index, start time, sum of its smoothed probability, frames)

    def _end(self, time: float) -> list[dict]:
        """Ends the active event at `time`: [the event] when it lasted long enough, else []."""
        if self._active is None:
            return []
        index, start, total, count = self._active
        self._active = None
        if time - start < self.config.min_duration:
            self.dropped += 1
            return []
        return [
            {
                "start": round(float(start), 3),
                "end": round(float(time), 3),
                "label": self.labels[index],
                "confidence": round(total / count, 4),
            }
        ]

    def update(self, probabilities: np.ndarray, time: float, still: bool = False) -> Decision:
        """The decision after one frame's probabilities [C] at `time` seconds; `still`: nothing moves (rule 4)."""
        x = np.asarray(probabilities, np.float32).reshape(-1)
        if self._smoothed is None or self.config.smoothing == 0:
            self._smoothed = x.copy()
        else:
            dt = max(0.0, time - self._last_time)
            a = 1.0 - math.exp(-dt / self.config.smoothing)
            self._smoothed += a * (x - self._smoothed)
        self._last_time = time
        p = self._smoothed
        best = int(np.argmax(p))
        ended = []
        threshold, release = self.config.threshold, self.config.threshold - self.config.hysteresis
        if self._active is not None:
            index = self._active[0]
            if still:
                ended = self._end(time)
            elif best != index and p[best] >= threshold and p[best] > p[index]:
                ended = self._end(time)  # a direct switch
            elif p[index] < release:
                ended = self._end(time)
        if self._active is None and not still and p[best] >= threshold:
            self._active = (best, time, 0.0, 0)
        if self._active is not None:
            index, start, total, count = self._active
            self._active = (index, start, total + float(p[index]), count + 1)
            return Decision(p.copy(), self.labels[index], float(p[index]), ended)
        return Decision(p.copy(), None, float(p[best]), ended)

    def close(self, time: float | None = None) -> list[dict]:
        """Ends the stream: the active event, ended at `time` (default: the last frame's), when long enough."""
        end = (
            self._last_time
            if time is None or self._last_time is None
            else max(time, self._last_time)
        )
        ended = self._end(end) if end is not None else []
        self.reset()
        return ended
