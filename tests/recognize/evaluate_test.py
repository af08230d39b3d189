"""Tests for edge_ssl.recognize.evaluate: frame accuracy with "no action" as a class, event matching at IoU 0.5,
boundary errors, and the errors a malformed truth or run gets."""

import os

from absl.testing import absltest

from edge_ssl.recognize import evaluate

# 0-2 s wave, 2-4 s nothing, 4-6 s jump; after 6 s nothing (no segment covers it).
TRUTH = [
    {"start": 0.0, "end": 2.0, "label": "wave"},
    {"start": 2.0, "end": 4.0, "label": None},
    {"start": 4.0, "end": 6.0, "label": "jump"},
]


def _event(start, end, label, confidence=0.9):
    return {"start": start, "end": end, "label": label, "confidence": confidence}


class FrameScoresTest(absltest.TestCase):

    def test_no_action_is_a_class_and_action_frames_are_counted_apart(self):
        frames = [
            (0.5, "wave"),  # right
            (1.5, "jump"),  # wrong
            (2.5, None),  # right: no action
            (3.5, "wave"),  # wrong: an action during no action
            (4.5, "jump"),  # right
            (5.5, None),  # wrong: missed action
            (6.5, None),  # right: outside every segment is no action
        ]
        scores = evaluate.frame_scores(evaluate.read_truth(TRUTH), frames)
        self.assertEqual(scores["frames"], 7)
        self.assertAlmostEqual(scores["frame_accuracy"], 4 / 7)
        self.assertEqual(scores["action_frames"], 4)
        self.assertAlmostEqual(scores["action_frame_accuracy"], 2 / 4)
        self.assertEqual(scores["no_action_frames"], 3)
        self.assertAlmostEqual(scores["no_action_frame_accuracy"], 2 / 3)
        self.assertEqual(
            scores["per_class"],
            {
                "jump": {"frames": 2, "accuracy": 0.5},
                "wave": {"frames": 2, "accuracy": 0.5},
                "no action": {"frames": 3, "accuracy": 2 / 3},
            },
        )

    def test_a_segment_holds_its_start_and_not_its_end(self):
        truth = evaluate.read_truth(TRUTH)
        self.assertEqual(
            evaluate.label_at(truth, [0.0, 1.999, 2.0, 4.0, 6.0, -1.0]),
            ["wave", "wave", None, "jump", None, None],
        )

    def test_no_frames_gives_no_accuracy_instead_of_a_number(self):
        scores = evaluate.frame_scores(evaluate.read_truth(TRUTH), [])
        self.assertIsNone(scores["frame_accuracy"])
        self.assertIsNone(scores["action_frame_accuracy"])
        # Only still frames: the action accuracy is undefined, not 0 or 1.
        scores = evaluate.frame_scores(evaluate.read_truth(TRUTH), [(3.0, None)])
        self.assertEqual(scores["frame_accuracy"], 1.0)
        self.assertIsNone(scores["action_frame_accuracy"])


class EventScoresTest(absltest.TestCase):

    def test_iou_of_one_half_matches_and_less_does_not(self):
        truth = evaluate.read_truth([{"start": 0.0, "end": 4.0, "label": "wave"}])
        self.assertEqual(evaluate.iou((0.0, 2.0), (0.0, 4.0)), 0.5)
        half = evaluate.event_scores(truth, [_event(0.0, 2.0, "wave")])
        self.assertEqual((half["matched"], half["precision"], half["recall"]), (1, 1.0, 1.0))
        less = evaluate.event_scores(truth, [_event(0.0, 1.9, "wave")])
        self.assertEqual((less["matched"], less["precision"], less["recall"]), (0, 0.0, 0.0))
        # Shifted by a second: overlap 3 s of a 5 s union.
        self.assertAlmostEqual(evaluate.iou((1.0, 5.0), (0.0, 4.0)), 0.6)

    def test_a_wrong_label_never_matches(self):
        scores = evaluate.event_scores(evaluate.read_truth(TRUTH), [_event(0.0, 2.0, "jump")])
        self.assertEqual((scores["matched"], scores["precision"], scores["recall"]), (0, 0.0, 0.0))

    def test_a_segment_matches_one_event_the_most_confident(self):
        truth = evaluate.read_truth(TRUTH)
        events = [_event(0.0, 1.5, "wave", 0.7), _event(0.2, 2.2, "wave", 0.95)]
        scores = evaluate.event_scores(truth, events)
        self.assertEqual(scores["matched"], 1)
        self.assertEqual(scores["precision"], 0.5)
        self.assertEqual(scores["recall"], 0.5)  # of wave and jump, only wave was found
        (match,) = scores["matches"]
        self.assertEqual((match["event"], match["segment"], match["label"]), (1, 0, "wave"))
        self.assertAlmostEqual(match["iou"], 1.8 / 2.2, places=4)

    def test_boundary_errors_are_signed_event_minus_truth(self):
        truth = evaluate.read_truth(TRUTH)
        # wave found 0.5 s late and ending 0.25 s late; jump starting and ending 0.5 s early.
        events = [_event(0.5, 2.25, "wave"), _event(3.5, 5.5, "jump")]
        scores = evaluate.event_scores(truth, events)
        self.assertEqual(scores["matched"], 2)
        self.assertEqual(
            [(m["start_error"], m["end_error"]) for m in scores["matches"]],
            [(0.5, 0.25), (-0.5, -0.5)],
        )
        self.assertEqual(scores["median_abs_start_error"], 0.5)
        self.assertEqual(scores["median_abs_end_error"], 0.375)
        self.assertEqual(scores["median_abs_boundary_error"], 0.5)  # of 0.5, 0.5, 0.25, 0.5
        self.assertEqual(scores["median_start_error"], 0.0)
        self.assertEqual(scores["median_end_error"], -0.125)

    def test_no_events_has_no_precision_and_zero_recall(self):
        scores = evaluate.event_scores(evaluate.read_truth(TRUTH), [])
        self.assertIsNone(scores["precision"])
        self.assertEqual(scores["recall"], 0.0)
        self.assertIsNone(scores["median_abs_boundary_error"])

    def test_no_action_is_never_a_target(self):
        truth = evaluate.read_truth([{"start": 0.0, "end": 3.0, "label": None}])
        scores = evaluate.event_scores(truth, [_event(0.0, 3.0, "wave")])
        self.assertEqual(scores["true_segments"], 0)
        self.assertEqual(scores["precision"], 0.0)
        self.assertIsNone(scores["recall"])

    def test_adjacent_segments_of_one_action_are_one(self):
        truth = evaluate.read_truth(
            [
                {"start": 2.0, "end": 4.0, "label": "wave"},  # out of order on purpose
                {"start": 0.0, "end": 2.0, "label": "wave"},
            ]
        )
        self.assertEqual(truth, [evaluate.Segment(0.0, 4.0, "wave")])
        scores = evaluate.event_scores(truth, [_event(0.0, 4.0, "wave")])
        self.assertEqual((scores["precision"], scores["recall"]), (1.0, 1.0))

    def test_evaluate_takes_dicts_and_returns_frame_and_event_scores(self):
        scores = evaluate.evaluate(TRUTH, [(1.0, "wave")], [_event(4.0, 6.0, "jump")])
        self.assertEqual(scores["frame_accuracy"], 1.0)
        self.assertEqual((scores["precision"], scores["recall"]), (1.0, 0.5))


class BadInputTest(absltest.TestCase):

    def test_each_malformed_input_is_named(self):
        cases = [
            ([{"start": 0, "end": 2}], None, "must be a dict with 'start', 'end' and 'label'"),
            ([{"start": 2, "end": 1, "label": "a"}], None, r"ends \(1.0 s\) before it starts"),
            (
                [{"start": 0, "end": 2, "label": "a"}, {"start": 1, "end": 3, "label": "b"}],
                None,
                "true segments overlap",
            ),
            ([{"start": 0, "end": 2, "label": 3}], None, "label must be a class name or null"),
            ([{"start": "0", "end": 2, "label": "a"}], None, "start must be a finite number"),
            ([], None, "has no segments"),
            (TRUTH, [_event(3, 2, "wave")], r"event 0 ends \(2.0 s\) before"),
            (TRUTH, [_event(0, 2, None)], "event 0's label must be a class name"),
            (TRUTH, [{"start": 0, "end": 2}], "event 0 must be a dict"),
            (TRUTH, [_event(0, float("nan"), "wave")], "event 0's end must be a finite number"),
        ]
        for truth, events, message in cases:
            with self.subTest(message=message):
                with self.assertRaisesRegex(evaluate.EvaluationError, message):
                    evaluate.evaluate(truth, [], events or [])
        with self.assertRaisesRegex(evaluate.EvaluationError, "frame 0 must be"):
            evaluate.evaluate(TRUTH, [1.0], [])
        with self.assertRaisesRegex(evaluate.EvaluationError, r"iou_threshold must be in \(0, 1\]"):
            evaluate.evaluate(TRUTH, [], [], iou_threshold=0.0)

    def test_read_jsonl_names_the_bad_line(self):
        path = os.path.join(self.create_tempdir().full_path, "events.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write('{"start": 0, "end": 1, "label": "a"}\n\n[1, 2]\n')
        with self.assertRaisesRegex(
            evaluate.EvaluationError, r"events.jsonl:3 is not a JSON object"
        ):
            evaluate.read_jsonl(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write('{"start": 0, "end": 1, "label": "a"}\n\n')
        self.assertEqual(evaluate.read_jsonl(path), [{"start": 0, "end": 1, "label": "a"}])
        with self.assertRaisesRegex(evaluate.EvaluationError, "cannot read .*missing.jsonl"):
            evaluate.read_jsonl(os.path.join(os.path.dirname(path), "missing.jsonl"))


if __name__ == "__main__":
    absltest.main()
