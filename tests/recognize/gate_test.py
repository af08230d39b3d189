"""Tests for the recognizer's motion gate (edge_ssl.recognize.recognizer): the setting, and that a still scene is no
action whatever the classifier says, on a fake classifier (no model needed)."""

import numpy as np
from absl.testing import absltest

from edge_ssl.recognize import decisions, recognizer, streaming

SIZE, FRAMES, RATE = 32, 4, 8.0
LABELS = ["wave", "walk"]
MOVEMENT = {"level": 0.1, "windows": 40, "p5": 0.08, "median": 0.2}


class _ConfidentStep:
    """A classifier that is always sure of "wave": what a real one may say of a person standing still."""

    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def __call__(self, frame):
        return np.array([0.95, 0.05], np.float32)


def _classifier(movement=MOVEMENT) -> streaming.StreamingClassifier:
    return streaming.StreamingClassifier(
        path="fake.tflite",
        labels=LABELS,
        frames=FRAMES,
        size=(SIZE, SIZE),
        frame_rate=RATE,
        frame_rate_note="given",
        engine="litert",
        precision="fp32",
        files=["fake.tflite"],
        choice=None,
        movement=movement,
        _step=_ConfidentStep(),
    )


def _frames(seconds: float, moving: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """RGB uint8 frames at RATE: a bar crossing the frame, or a still one under camera noise."""
    frames = []
    for i in range(int(seconds * RATE)):
        image = np.full((SIZE, SIZE, 3), 60.0)
        x = (3 * i) % (SIZE - 6) if moving else 10
        image[8:24, x : x + 6] = 200.0
        frames.append(np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8))
    return frames


class MotionGateSettingTest(absltest.TestCase):

    def test_auto_is_a_share_of_the_training_windows_5th_percentile(self):
        gate, note = recognizer.motion_gate("auto", MOVEMENT)
        self.assertAlmostEqual(gate, recognizer.GATE_SHARE * 0.08)
        self.assertIn("40 training windows", note)

    def test_auto_without_movement_is_off_and_says_why(self):
        for movement in (None, {"windows": 0, "p5": None}):
            gate, note = recognizer.motion_gate("auto", movement)
            self.assertIsNone(gate)
            self.assertIn("--motion_gate=FRACTION", note)

    def test_auto_is_off_when_training_windows_do_not_move(self):
        # A "no action" class of still clips among the training windows: the classifier knows stillness itself.
        gate, note = recognizer.motion_gate("auto", {**MOVEMENT, "p5": 0.0})
        self.assertIsNone(gate)
        self.assertIn("do not move", note)

    def test_off_and_a_number(self):
        self.assertIsNone(recognizer.motion_gate("off", MOVEMENT)[0])
        self.assertEqual(recognizer.motion_gate(" 0.02 ", None)[0], 0.02)

    def test_bad_settings_say_what_is_allowed(self):
        for bad in ("sometimes", "0", "1", "-0.1", "nan"):
            with self.assertRaisesRegex(recognizer.GateError, "auto, off, or a fraction"):
                recognizer.motion_gate(bad, MOVEMENT)


class MotionGateTest(absltest.TestCase):

    def test_an_embedded_recognizer_gates_as_the_command_line_does(self):
        self.assertAlmostEqual(
            recognizer.Recognizer(_classifier()).gate, recognizer.GATE_SHARE * MOVEMENT["p5"]
        )
        self.assertIn("training windows", recognizer.Recognizer(_classifier()).gate_note)
        self.assertIsNone(recognizer.Recognizer(_classifier(movement=None)).gate)
        self.assertIsNone(recognizer.Recognizer(_classifier(), gate="off").gate)
        self.assertEqual(recognizer.Recognizer(_classifier(), gate="0.03").gate, 0.03)
        with self.assertRaisesRegex(recognizer.GateError, "--motion_gate must be"):
            recognizer.Recognizer(_classifier(), gate="always")

    def _labels(self, gate, segments):
        stream = recognizer.Recognizer(
            _classifier(), decisions.DecisionConfig(smoothing=0.0, min_duration=0.0), gate=gate
        )
        rng = np.random.default_rng(0)
        results, t = [], 0
        for seconds, moving in segments:
            for frame in _frames(seconds, moving, rng):
                results.append(stream.infer(frame, t / RATE))
                t += 1
        events = stream.finish()
        return results, stream.events, events

    def test_a_still_scene_is_no_action_and_movement_is_the_classifiers_action(self):
        gate = recognizer.motion_gate("auto", MOVEMENT)[0]
        results, events, _ = self._labels(gate, [(2.0, True), (3.0, False), (2.0, True)])
        labels = [r.label for r in results]
        self.assertEqual(set(labels[FRAMES:16]), {"wave"})
        # The window is still once most of it is: within a window of the stop, and until a window after the start.
        self.assertEqual(set(labels[16 + FRAMES : 40]), {None})
        self.assertTrue(all(r.still for r in results[16 + FRAMES : 40]))
        self.assertEqual(set(labels[40 + FRAMES :]), {"wave"})
        self.assertEqual([e["label"] for e in events], ["wave", "wave"])
        self.assertGreater(min(r.moving for r in results[FRAMES:16]), gate)
        self.assertLess(max(r.moving for r in results[16 + FRAMES : 40]), gate)

    def test_without_a_gate_the_still_scene_takes_the_classifiers_label(self):
        results, events, _ = self._labels(None, [(2.0, True), (3.0, False), (2.0, True)])
        self.assertEqual({r.label for r in results[FRAMES:]}, {"wave"})
        self.assertFalse(any(r.still for r in results))
        self.assertLen(events, 1)

    def test_a_new_stream_forgets_the_last_frame(self):
        stream = recognizer.Recognizer(_classifier(), gate=0.01)
        rng = np.random.default_rng(1)
        moving = _frames(1.0, True, rng)
        for i, frame in enumerate(moving):
            stream.infer(frame, i / RATE)
        stream.reset()
        first = stream.infer(_frames(0.125, False, rng)[0], 0.0)
        self.assertIsNone(first.moving)
        self.assertFalse(first.still)


if __name__ == "__main__":
    absltest.main()
