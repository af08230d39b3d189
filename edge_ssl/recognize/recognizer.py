"""The recognizer an application embeds: RGB frames in, smoothed per-frame scores and action events out.

    classifier = streaming.open_classifier("out/classifier/classifier.tflite")
    recognizer = Recognizer(classifier, DecisionConfig(threshold=0.6))   # motion gate "auto", as the CLI
    for frame, seconds in my_frames():            # RGB uint8 [H, W, 3], any size; the source's time in seconds
        result = recognizer.process(frame, seconds)
        if result is not None:                    # None: the frame was resampled away
            show(result.label, result.confidence)
            for event in result.events: log(event)   # {"start", "end", "label", "confidence"}
    for event in recognizer.finish(): log(event)

Each frame the model needs goes through, in order:
1. **resampling** to the model's frame rate (`classifier.frame_rate`): a 30 fps camera feeds an 8 fps model every
   3.75th frame on average, chosen by the frames' times, so the model's window spans the time its training clips did;
   a source slower than the model feeds every frame;
2. **preprocessing** exactly as the runner read its training clips (`edge_ssl.data.decode.model_input`: scale to
   cover, centre crop, RGB float32 in [0, 1]);
3. **one `step`** of the classifier with the carried state (never a whole window per frame);
4. **the motion gate** (when set): the fraction of the frame's pixels that moved since the previous model frame
   (`edge_ssl.data.motion.moving_fractions`), averaged over the middle half of the model's window (where its
   decision is timed: `motion.window_movement`); a window whose average is below the gate is still, and a still
   frame is no action (`motion_gate` below says where the gate comes from);
5. **decisions** (`decisions.EventDetector`): smoothing, hysteresis, minimum duration, no action below the threshold
   or when still.
   They start once the model has seen a full window (T frames) since the stream began: before that its state still
   holds the zero frames it started from. The probabilities after frame t describe the window of frames t-T+1..t, so
   events are timed at the window's centre, (T-1)/2 model frames before the frame that decided them (`delay`); the
   smoothing adds about its time constant x ln 2 on top, which is left in.

`reset()` starts a new stream (the next video of a folder, a camera reopened after a drop): the open event ends and
the state is zeroed.
"""

import collections
import dataclasses
import time

import numpy as np

from edge_ssl.data import decode, motion
from edge_ssl.recognize import decisions, streaming

DecisionConfig = decisions.DecisionConfig
# `motion_gate("auto")`: a window is still when its `motion.window_movement` is below this share of the 5th percentile
# of the classifier's training windows (the runner measures them; see benchmarks/README.md for how it was chosen).
GATE_SHARE = 0.25
GATE_SETTINGS = "auto, off, or a fraction of moving pixels in (0, 1)"


class GateError(ValueError):
    """A motion gate setting that is not one of `GATE_SETTINGS`; the message says what was given."""


def motion_gate(setting: str, movement: dict | None) -> tuple[float | None, str]:
    """The motion gate a setting asks for: (the moving fraction below which a window is still, or None for no gate;
    where it comes from).

    Args:
      setting: "auto" (from the classifier's training windows when it has their `movement`, else no gate), "off",
        or a number in (0, 1).
      movement: the classifier's `movement` (`edge_ssl.data.motion.movement_statistics` of its training windows),
        or None.

    Raises:
      GateError: a setting that is none of these.
    """
    text = str(setting).strip().lower()
    if text == "off":
        return None, "off (--motion_gate=off)"
    if text == "auto":
        if not movement or movement.get("p5") is None:
            return None, (
                "off: the classifier carries no movement of its training windows (a pose classifier, or one "
                "written before the runner measured them); give --motion_gate=FRACTION to set one"
            )
        if not movement["p5"] > 0:
            return None, (
                "off: at least 5% of the classifier's training windows do not move (a class of still scenes?), "
                "so stillness is left to the classifier; give --motion_gate=FRACTION to set one"
            )
        gate = GATE_SHARE * float(movement["p5"])
        return gate, (
            f"{GATE_SHARE:g} x the 5th percentile ({movement['p5']:.4f}) of the moving fraction of the "
            f"classifier's {movement.get('windows', '?')} training windows"
        )
    try:
        gate = float(text)
    except ValueError:
        raise GateError(f"--motion_gate must be {GATE_SETTINGS}, got {setting!r}") from None
    if not 0.0 < gate < 1.0:
        raise GateError(f"--motion_gate must be {GATE_SETTINGS}, got {setting!r}")
    return gate, "given (--motion_gate)"


@dataclasses.dataclass
class FrameResult:
    """The recognizer's output for one frame the model saw.

    Attributes:
      time: the frame's time in the source, seconds.
      probabilities: float32 [C], the model's probabilities for the window ending at this frame.
      smoothed: float32 [C], after smoothing (equal to `probabilities` during warm-up).
      label: the current action, or None (no action, or still warming up).
      confidence: the current action's smoothed probability (the largest one when there is none).
      warm: whether the model has seen a full window since the stream started.
      events: events that ended at this frame.
      model_seconds: the step's time (the model only).
      moving: the moving fraction of the model's window around its centre (`motion.window_movement`; None for
        the stream's first frame).
      still: whether the motion gate called the window still (False without a gate).
    """

    time: float
    probabilities: np.ndarray
    smoothed: np.ndarray
    label: str | None
    confidence: float
    warm: bool
    events: list[dict]
    model_seconds: float
    moving: float | None = None
    still: bool = False


class Resampler:
    """Says which frames, by their times, a model running at `rate` frames per second takes."""

    def __init__(self, rate: float, source_rate: float | None = None):
        self.rate = float(rate)
        # Half a source frame of slack keeps a 30 -> 10 fps stream at exactly every third frame despite rounding.
        self._slack = 0.5 / source_rate if source_rate and source_rate > 0 else 1e-3 / self.rate
        self._next = None

    def reset(self) -> None:
        self._next = None

    def due(self, seconds: float) -> bool:
        """Whether the frame at `seconds` goes to the model (call once per frame, in time order)."""
        if self._next is None or seconds + self._slack >= self._next:
            period = 1.0 / self.rate
            # A gap (a dropped stretch of a live source) restarts the ticks instead of bursting through them.
            self._next = (
                seconds + period
                if self._next is None or seconds - self._next > period
                else self._next + period
            )
            return True
        return False


class Recognizer:
    """Frames in, scores and events out (see the module docstring).

    Attributes:
      classifier: the streaming classifier.
      events: every event emitted so far, in order.
      model_seconds: every step's model time, seconds.
    """

    def __init__(
        self,
        classifier: streaming.StreamingClassifier,
        config: DecisionConfig = DecisionConfig(),
        source_rate: float | None = None,
        gate: float | str | None = "auto",
    ):
        """Args:
        classifier: from `streaming.open_classifier`.
        config: the decision rules.
        source_rate: the source's frames per second when known (files), for exact resampling.
        gate: the motion gate: a setting of `motion_gate` ("auto": from the classifier's training windows, as the
          command line does; "off"), a moving fraction, or None for no gate.

        Raises:
          GateError: a gate setting `motion_gate` does not take.
        """
        self.classifier = classifier
        self.detector = decisions.EventDetector(classifier.labels, config)
        self.resampler = Resampler(classifier.frame_rate, source_rate)
        self.warmup = classifier.frames or 1
        # Seconds from a window's centre to its last frame: events are timed at the centre.
        self.delay = (self.warmup - 1) / 2.0 / classifier.frame_rate
        if isinstance(gate, str):
            self.gate, self.gate_note = motion_gate(gate, classifier.movement)
        else:
            self.gate, self.gate_note = gate, ("given" if gate is not None else "off")
        self.events: list[dict] = []
        self.model_seconds: list[float] = []
        self._seen = 0
        self._last_seconds = None
        self._previous = None  # the last model frame's grey levels, for the moving fraction
        self._moving = collections.deque(maxlen=max(1, self.warmup - 1))

    @property
    def labels(self) -> list[str]:
        return self.classifier.labels

    def due(self, seconds: float) -> bool:
        """Whether the frame at `seconds` is one the model takes (resampling); see `Resampler.due`."""
        return self.resampler.due(seconds)

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """RGB uint8 [H, W, 3] -> the model's frame, float32 [S, S, 3] (as the runner read its clips)."""
        return decode.model_input(frame[None], self.classifier.size)[0]

    def infer(self, frame: np.ndarray, seconds: float) -> FrameResult:
        """Runs one frame through the model and the decisions, without resampling.

        Args:
          frame: RGB uint8 [H, W, 3].
          seconds: its time in the source.
        """
        model_frame = self.preprocess(frame)
        start = time.perf_counter()
        probabilities = self.classifier.step(model_frame)
        model_seconds = time.perf_counter() - start
        self.model_seconds.append(model_seconds)
        self._seen += 1
        self._last_seconds = seconds
        grey = motion.grey(model_frame)
        if self._previous is not None:
            self._moving.append(float(motion.moving_fractions(np.stack([self._previous, grey]))[0]))
        self._previous = grey
        moving = motion.window_movement(self._moving) if self._moving else None
        warm = self._seen >= self.warmup
        if not warm:
            return FrameResult(
                seconds,
                probabilities,
                probabilities,
                None,
                float(probabilities.max()),
                False,
                [],
                model_seconds,
                moving,
            )
        still = self.gate is not None and moving is not None and moving < self.gate
        decision = self.detector.update(probabilities, seconds - self.delay, still)
        self.events += decision.ended
        return FrameResult(
            seconds,
            probabilities,
            decision.smoothed,
            decision.label,
            decision.confidence,
            True,
            decision.ended,
            model_seconds,
            moving,
            still,
        )

    def process(self, frame: np.ndarray, seconds: float) -> FrameResult | None:
        """Resamples, then `infer`: None for a frame the model does not take."""
        if not self.due(seconds):
            return None
        return self.infer(frame, seconds)

    def reset(self) -> list[dict]:
        """Ends the current stream (its open event is returned, when long enough) and starts a new one.

        An event still open ends at the stream's last frame: the action lasted at least that long.
        """
        ended = self.detector.close(self._last_seconds)
        self._last_seconds = None
        self.events += ended
        self.classifier.reset()
        self.resampler.reset()
        self._seen = 0
        self._previous = None
        self._moving.clear()
        return ended

    def finish(self) -> list[dict]:
        """Ends the stream; returns the event still open then, when long enough."""
        return self.reset()
