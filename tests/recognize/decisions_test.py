"""Tests for edge_ssl.recognize.decisions: smoothing, hysteresis, minimum duration, no action below the threshold and
when still."""

import math

import numpy as np
from absl.testing import absltest

from edge_ssl.recognize import decisions

LABELS = ["wave", "walk", "jump"]
RATE = 10.0  # frames per second of the synthetic probability streams


def _run(detector, rows, start=0.0):
    """Feeds probability rows at RATE; returns (labels per frame, events)."""
    labels, events = [], []
    for i, row in enumerate(rows):
        decision = detector.update(np.asarray(row, np.float32), start + i / RATE)
        labels.append(decision.label)
        events += decision.ended
    events += detector.close()
    return labels, events


def _segment(index, seconds, p=0.9):
    row = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1))
    row[index] = p
    return [row] * int(round(seconds * RATE))


UNIFORM = [np.full(len(LABELS), 1 / len(LABELS))]


class DecisionsTest(absltest.TestCase):

    def _detector(self, **kwargs):
        config = dict(threshold=0.6, hysteresis=0.15, smoothing=0.0, min_duration=0.5)
        config.update(kwargs)
        return decisions.EventDetector(LABELS, decisions.DecisionConfig(**config))

    def test_actions_in_order_with_no_action_between(self):
        rows = _segment(0, 2.0) + UNIFORM * 15 + _segment(2, 1.0)
        labels, events = _run(self._detector(), rows)
        self.assertEqual([e["label"] for e in events], ["wave", "jump"])
        self.assertEqual((events[0]["start"], events[0]["end"]), (0.0, 2.0))
        self.assertEqual(events[1]["start"], 3.5)
        self.assertEqual(events[1]["end"], 4.4)  # the last frame's time: the stream ends there
        self.assertAlmostEqual(events[0]["confidence"], 0.9, places=4)
        self.assertEqual(set(labels[20:35]), {None})

    def test_spread_probabilities_are_no_action_not_the_nearest_class(self):
        # Standing still: the largest class is "walk", but at 0.45 it stays below the threshold.
        rows = [[0.3, 0.45, 0.25]] * 40
        labels, events = _run(self._detector(), rows)
        self.assertEqual(events, [])
        self.assertEqual(set(labels), {None})

    def test_a_still_frame_ends_the_action_and_starts_none_whatever_the_probabilities(self):
        detector = self._detector()
        rows = _segment(0, 2.0) + _segment(0, 1.5) + _segment(1, 1.0)
        stills = [False] * 20 + [True] * 15 + [False] * 10
        labels, events = [], []
        for i, (row, still) in enumerate(zip(rows, stills)):
            decision = detector.update(np.asarray(row, np.float32), i / RATE, still)
            labels.append(decision.label)
            events += decision.ended
        events += detector.close()
        self.assertEqual(set(labels[20:35]), {None})
        self.assertEqual([e["label"] for e in events], ["wave", "walk"])
        self.assertEqual((events[0]["start"], events[0]["end"]), (0.0, 2.0))
        self.assertEqual(events[1]["start"], 3.5)

    def test_hysteresis_keeps_one_event_through_a_dip(self):
        dip = [[0.5, 0.3, 0.2]] * 3  # below the threshold, above threshold - hysteresis
        rows = _segment(0, 1.0, 0.7) + dip + _segment(0, 1.0, 0.7)
        _, events = _run(self._detector(), rows)
        self.assertLen(events, 1)
        _, without = _run(self._detector(hysteresis=0.0), rows)
        self.assertLen(without, 2)

    def test_a_flicker_shorter_than_min_duration_is_dropped_and_counted(self):
        detector = self._detector()
        rows = UNIFORM * 10 + _segment(1, 0.3) + UNIFORM * 10
        _, events = _run(detector, rows)
        self.assertEqual(events, [])
        self.assertEqual(detector.dropped, 1)

    def test_a_stronger_class_switches_directly(self):
        rows = _segment(0, 1.0) + _segment(1, 1.0)
        _, events = _run(self._detector(), rows)
        self.assertEqual(
            [(e["label"], e["start"], e["end"]) for e in events],
            [("wave", 0.0, 1.0), ("walk", 1.0, 1.9)],
        )

    def test_smoothing_is_an_exponential_average_with_a_time_constant_in_seconds(self):
        detector = self._detector(smoothing=0.5)
        detector.update(np.array([0.0, 1.0, 0.0]), 0.0)
        decision = detector.update(np.array([1.0, 0.0, 0.0]), 0.5)
        self.assertAlmostEqual(float(decision.smoothed[0]), 1 - math.exp(-1), places=5)
        # The same time constant at another frame rate reaches the same value after the same time.
        detector = self._detector(smoothing=0.5)
        detector.update(np.array([0.0, 1.0, 0.0]), 0.0)
        for i in range(1, 11):
            decision = detector.update(np.array([1.0, 0.0, 0.0]), i * 0.05)
        self.assertAlmostEqual(float(decision.smoothed[0]), 1 - math.exp(-1), places=5)

    def test_smoothing_ignores_a_one_frame_spike(self):
        rows = UNIFORM * 10 + _segment(2, 0.1, 1.0) + UNIFORM * 10
        labels, events = _run(self._detector(smoothing=0.5, min_duration=0.0), rows)
        self.assertEqual(events, [])
        self.assertEqual(set(labels), {None})

    def test_settings_out_of_range_name_their_flag(self):
        for kwargs, message in (
            (dict(threshold=0.0), "--threshold"),
            (dict(threshold=1.5), "--threshold"),
            (dict(hysteresis=0.7), "--hysteresis"),
            (dict(smoothing=-1.0), "--smoothing"),
            (dict(min_duration=-0.1), "--min_duration"),
        ):
            with self.assertRaisesRegex(ValueError, message):
                self._detector(**kwargs)


if __name__ == "__main__":
    absltest.main()
