"""Tests for edge_ssl.demo.live: the live video is what its truth says, the runner's clips are left out, bad inputs
are named; and the report's timeline and live section."""

import json
import os

import cv2
import numpy as np
from absl.testing import absltest

from edge_ssl.demo import live, report

FPS = 8.0
FRAMES = 8  # 1 s clips
COLOURS = {
    "a": (220, 30, 30),
    "b": (30, 220, 30),
    "c": (30, 30, 220),
}  # RGB: the class is the colour


def write_heldout(root: str, performances: int = 3, views: int = 2) -> str:
    """`root/<class>/p000k_view<v>.mp4`: flat frames of the class's colour, FRAMES at FPS, 16 x 24."""
    for name, colour in COLOURS.items():
        os.makedirs(os.path.join(root, name))
        for p in range(performances):
            for v in range(views):
                path = os.path.join(root, name, f"p{p:04d}_view{v}.mp4")
                writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (24, 16))
                for _ in range(FRAMES):
                    writer.write(np.full((16, 24, 3), colour[::-1], np.uint8))
                writer.release()
    return root


class LiveVideoTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path
        self.heldout = write_heldout(os.path.join(self.dir, "heldout"))
        self.settings = live.LiveSettings(
            segments_per_class=2, clips_per_segment=2, stills=1, still_seconds=1.0
        )

    def test_the_video_is_what_its_truth_says(self):
        out = os.path.join(self.dir, "live")
        truth = live.write_video(self.heldout, out, self.settings, [])
        segments = truth["segments"]
        labels = [s["label"] for s in segments]
        self.assertEqual(sorted(l for l in labels if l), ["a", "a", "b", "b", "c", "c"])
        self.assertEqual(labels.count(None), 1)
        self.assertIsNotNone(labels[0])  # a still stretch comes between segments
        actions = [l for l in labels if l]
        self.assertTrue(all(x != y for x, y in zip(actions, actions[1:])), actions)
        # Contiguous, 2 s per action segment (two 1 s clips), 1 s still; 13 s in all.
        self.assertEqual(segments[0]["start"], 0.0)
        for before, after in zip(segments, segments[1:]):
            self.assertEqual(before["end"], after["start"])
        for s in segments:
            self.assertEqual(s["end"] - s["start"], 2.0 if s["label"] else 1.0, s)
            self.assertLen(s["clips"], 2 if s["label"] else 0)
        self.assertEqual((truth["frames"], truth["seconds"], truth["fps"]), (104, 13.0, FPS))
        # Each segment's frames have its class's colour; the still one holds the last frame before it.
        capture = cv2.VideoCapture(os.path.join(out, live.VIDEO))
        self.assertEqual(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 104)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame[..., ::-1].reshape(-1, 3).mean(axis=0))
        self.assertLen(frames, 104)
        for k, s in enumerate(segments):
            middle = frames[int((s["start"] + s["end"]) / 2 * FPS)]
            label = s["label"] or segments[k - 1]["label"]
            np.testing.assert_allclose(middle, COLOURS[label], atol=25, err_msg=str(s))
        with open(os.path.join(out, live.TRUTH), encoding="utf-8") as f:
            self.assertEqual(json.load(f), truth)

    def test_same_seed_same_video_and_another_seed_another_order(self):
        first = live.write_video(self.heldout, os.path.join(self.dir, "1"), self.settings, [])
        again = live.write_video(self.heldout, os.path.join(self.dir, "2"), self.settings, [])
        self.assertEqual(first["segments"], again["segments"])
        other = live.LiveSettings(**{**vars(self.settings), "seed": 5})
        moved = live.write_video(self.heldout, os.path.join(self.dir, "3"), other, [])
        self.assertNotEqual(first["segments"], moved["segments"])

    def test_the_runner_s_performances_are_left_out_while_others_remain(self):
        out = os.path.join(self.dir, "live")
        truth = live.write_video(self.heldout, out, self.settings, ["a/p0000_view0.mp4"])
        used = [c for s in truth["segments"] for c in s["clips"]]
        self.assertLen(used, 12)
        self.assertFalse([c for c in used if c.startswith("a/p0000")], used)
        self.assertEqual(truth["runner_clips"]["clips_of_their_performances"], 0)
        self.assertIn("no clip of the video shows", truth["runner_clips"]["note"])
        # Class a needs 4 clips and has 2 outside the runner's 2 performances: those performances' other
        # cameras fill in before the runner's own clips do.
        train = ["a/p0000_view0.mp4", "a/p0001_view0.mp4"]
        truth = live.write_video(self.heldout, out, self.settings, train)
        used = [c for s in truth["segments"] for c in s["clips"] if c.startswith("a/")]
        self.assertCountEqual(
            used,
            ["a/p0002_view0.mp4", "a/p0002_view1.mp4", "a/p0000_view1.mp4", "a/p0001_view1.mp4"],
        )
        self.assertEqual(truth["runner_clips"]["clips_of_their_performances"], 2)
        # Unknown training clips: said so.
        truth = live.write_video(self.heldout, out, self.settings, None)
        self.assertFalse(truth["runner_clips"]["listed"])
        self.assertIn("may be among", truth["runner_clips"]["note"])

    def test_performance_is_the_clip_without_its_camera(self):
        self.assertEqual(live.performance("jump/p0002_view1.mp4"), os.path.join("jump", "p0002"))
        self.assertEqual(live.performance("/x/wave/take_3.avi"), os.path.join("wave", "take_3"))

    def test_bad_inputs_are_named(self):
        with self.assertRaisesRegex(live.LiveError, "class 'a' has 6 readable clips .* needs 8"):
            live.write_video(
                self.heldout,
                self.dir,
                live.LiveSettings(segments_per_class=4, clips_per_segment=2),
                [],
            )
        with self.assertRaisesRegex(live.LiveError, "clips_per_segment must be >= 1"):
            live.write_video(self.heldout, self.dir, live.LiveSettings(clips_per_segment=0), [])
        with self.assertRaisesRegex(live.LiveError, "data folder does not exist: .*missing"):
            live.write_video(os.path.join(self.dir, "missing"), self.dir, self.settings, [])
        with self.assertRaisesRegex(live.LiveError, "cannot read the runner's .*metrics.json"):
            live.read_train_clips(self.dir)
        with open(os.path.join(self.dir, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump({"accuracy": 0.5}, f)
        self.assertIsNone(live.read_train_clips(self.dir))  # an older runner's output
        self.assertFalse(os.path.exists(os.path.join(self.dir, live.VIDEO)))


FIGURES = {
    "frame_accuracy": 0.5,
    "action_frame_accuracy": 0.4,
    "no_action_frame_accuracy": 0.9,
    "action_frame_argmax_accuracy": 0.6,
    "precision": None,
    "recall": 0.0,
    "events": 0,
    "true_segments": 3,
    "matched": 0,
    "median_abs_start_error": None,
    "median_abs_end_error": None,
    "median_abs_boundary_error": None,
    "fps_end_to_end": 812.3,
    "model_fps": 2500.0,
}


class ReportTest(absltest.TestCase):

    def test_frames_become_runs_of_one_label(self):
        frames = [(1.0, None), (1.5, "a"), (2.0, "a"), (2.5, "b"), (3.0, "b")]
        self.assertEqual(
            report._runs(frames),  # pylint: disable=protected-access
            [(1.0, 1.5, None), (1.5, 2.5, "a"), (2.5, 3.5, "b")],
        )
        self.assertEqual(report._runs([]), [])  # pylint: disable=protected-access

    def test_timeline_plot_and_a_section_without_events(self):
        path = os.path.join(self.create_tempdir().full_path, "timeline.png")
        truth = [
            {"start": 0.0, "end": 2.0, "label": "a"},
            {"start": 2.0, "end": 3.0, "label": None},
        ]
        events = [{"start": 0.5, "end": 1.5, "label": "a", "confidence": 0.8}]
        report._timeline(  # pylint: disable=protected-access
            path, truth, [(0.5, "a"), (1.0, None)], events, ["a", "b"]
        )
        with open(path, "rb") as f:
            self.assertEqual(f.read(4), b"\x89PNG")
        result = {
            "engine": "litert",
            "precision": "int8",
            "seconds_of_video": 13.0,
            "stills": 1,
            "model_frames": 104,
            "runner_clips": {
                "note": "no clip of the video shows a performance the classifier was fitted on"
            },
            "motion_gate": 0.005,
            "motion_gate_note": "given (--motion_gate)",
            "figures": FIGURES,
        }
        section = "\n".join(report._live_section(result))  # pylint: disable=protected-access
        self.assertIn("Motion gate: 0.0050 of the pixels moving (given (--motion_gate)).", section)
        self.assertIn("| frame accuracy (no action a class) | 50.0% |", section)
        self.assertIn("| event precision | - |", section)
        self.assertIn("| event recall | 0.0% (0 of 3) |", section)
        self.assertIn("start / end / both | - / - / - |", section)
        self.assertIn("| 812 / 2500 |", section)
        self.assertEqual(
            report.live_json(result)["event_precision"], None
        )  # JSON null, not a made-up number


if __name__ == "__main__":
    absltest.main()
