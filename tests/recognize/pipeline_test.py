"""Tests for edge_ssl.recognize.pipeline with a stand-in model: a live source faster than the model skips and counts,
a file never skips, outputs (events, annotated video, status line) are written as promised, errors leave nothing.
"""

import io
import json
import os
import time

import cv2
import numpy as np
from absl.testing import absltest

from edge_ssl.recognize import pipeline, recognizer, sources, streaming
from tests.recognize.fixtures import FakeCapture

LABELS = ["dark", "bright"]


class FakeStep:
    """A 'model' that calls a frame bright or dark by its mean, taking `seconds` per frame."""

    def __init__(self, seconds: float = 0.0, fail_at: int | None = None):
        self.seconds, self.fail_at, self.calls, self.resets = seconds, fail_at, 0, 0

    def reset(self):
        self.resets += 1

    def __call__(self, frame):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("the model broke")
        if self.seconds:
            time.sleep(self.seconds)
        bright = float(frame.mean() > 0.5)
        return np.array([0.95 - 0.9 * bright, 0.05 + 0.9 * bright], np.float32)


def fake_classifier(step: FakeStep, frame_rate: float = 100.0) -> streaming.StreamingClassifier:
    return streaming.StreamingClassifier(
        path="fake.tflite",
        labels=LABELS,
        frames=2,
        size=(8, 8),
        frame_rate=frame_rate,
        frame_rate_note="set by the test",
        engine="fake",
        precision="fp32",
        files=[],
        choice=None,
        _step=step,
    )


def write_brightness_video(path: str, pattern, fps: float = 20.0) -> str:
    """Frames of brightness `pattern` (0 or 1 per frame), 48 x 64."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for value in pattern:
        writer.write(np.full((48, 64, 3), 230 if value else 20, np.uint8))
    writer.release()
    return path


class PipelineTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path

    def _live(self, capture, reconnects=1):
        source = sources.LiveSource(
            lambda: capture if not capture.released else FakeCapture(0, opened=False),
            "fake camera",
            model_rate=100.0,
            reconnects=reconnects,
            reconnect_pause=0.01,
        )
        source.open()
        return source

    def test_a_live_source_faster_than_the_model_skips_frames_and_counts_them(self):
        source = self._live(FakeCapture(150, fps=100.0))
        step = FakeStep(seconds=0.03)  # 33 fps of model against 100 fps of camera
        events = os.path.join(self.dir, "events.jsonl")
        video = os.path.join(self.dir, "annotated.mp4")
        summary = pipeline.recognize(
            source, recognizer.Recognizer(fake_classifier(step)), events, video
        )
        self.assertGreater(summary["skipped"], 50)
        self.assertEqual(summary["model_frames"], step.calls)
        self.assertEqual(
            summary["frames"],
            summary["model_frames"] + summary["skipped"] + summary["resampled_away"],
        )
        # The camera "dropped" (its frames ran out) and did not come back: the run ends, its outputs kept.
        self.assertTrue(summary["dropped"])
        self.assertIn("did not come back after 1 reopen attempt(s)", summary["ended"])
        self.assertTrue(os.path.exists(events))
        capture = cv2.VideoCapture(video)
        self.assertEqual(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), step.calls)
        self.assertGreater(summary["latency_ms"]["p50"], 25.0)
        self.assertLess(summary["model_fps"], 40.0)

    def test_a_file_is_never_skipped_however_slow_the_model(self):
        path = write_brightness_video(os.path.join(self.dir, "clip.mp4"), [0] * 10 + [1] * 10)
        source = sources.open_source(path, model_rate=100.0)
        step = FakeStep(seconds=0.02)
        summary = pipeline.recognize(source, recognizer.Recognizer(fake_classifier(step)))
        self.assertEqual((summary["skipped"], summary["frames"], step.calls), (0, 20, 20))

    def test_events_are_json_lines_naming_their_video_in_a_folder_and_the_state_resets(self):
        folder = os.path.join(self.dir, "videos")
        os.makedirs(folder)
        write_brightness_video(os.path.join(folder, "a.mp4"), [0] * 20 + [1] * 20)
        write_brightness_video(os.path.join(folder, "b.mp4"), [1] * 30)
        step = FakeStep()
        events_path = os.path.join(self.dir, "out", "events.jsonl")
        summary = pipeline.recognize(
            sources.open_source(folder, model_rate=20.0),
            recognizer.Recognizer(
                fake_classifier(step, 20.0), recognizer.DecisionConfig(smoothing=0.0)
            ),
            events_path,
        )
        with open(events_path, encoding="utf-8") as f:
            events = [json.loads(line) for line in f]
        self.assertEqual(
            [(e["source"], e["label"]) for e in events],
            [("a.mp4", "dark"), ("a.mp4", "bright"), ("b.mp4", "bright")],
        )
        self.assertEqual(set(events[0]), {"start", "end", "label", "confidence", "source"})
        self.assertAlmostEqual(events[1]["start"], 1.0, delta=0.1)
        self.assertAlmostEqual(events[1]["end"], 1.95, delta=0.1)  # the video's last frame
        self.assertEqual(
            events[2]["start"], 0.025
        )  # b.mp4's own clock (a window of 2 frames is timed at its centre)
        self.assertGreaterEqual(step.resets, 2)
        self.assertEqual(summary["files"], 2)

    def test_frames_are_json_lines_of_every_model_frame_timed_at_the_window_centre(self):
        path = write_brightness_video(os.path.join(self.dir, "clip.mp4"), [0] * 10 + [1] * 10)
        frames_path = os.path.join(self.dir, "out", "frames.jsonl")
        summary = pipeline.recognize(
            sources.open_source(path, model_rate=20.0),
            recognizer.Recognizer(
                fake_classifier(FakeStep(), 20.0), recognizer.DecisionConfig(smoothing=0.0)
            ),
            frames_path=frames_path,
        )
        with open(frames_path, encoding="utf-8") as f:
            frames = [json.loads(line) for line in f]
        self.assertLen(frames, summary["model_frames"])
        self.assertEqual(summary["frames_file"], frames_path)
        self.assertEqual(
            set(frames[0]),
            {
                "time",
                "centre",
                "warm",
                "label",
                "confidence",
                "probabilities",
                "smoothed",
                "moving",
                "still",
            },
        )
        # A window of 2 frames at 20 fps: decisions start at the second frame, timed half a frame earlier.
        self.assertEqual([f["warm"] for f in frames[:2]], [False, True])
        self.assertEqual([f["time"] for f in frames[:3]], [0.0, 0.05, 0.1])
        self.assertEqual([f["centre"] for f in frames[:3]], [-0.025, 0.025, 0.075])
        self.assertEqual([f["label"] for f in frames], [None] + ["dark"] * 9 + ["bright"] * 10)
        self.assertEqual(frames[5]["probabilities"], [0.95, 0.05])
        # Flat frames do not move, the switch from dark to bright is a global change (no gate was set here).
        self.assertEqual(
            (frames[0]["moving"], frames[5]["moving"], frames[10]["moving"]), (None, 0.0, 0.0)
        )
        self.assertFalse(any(f["still"] for f in frames))

    def test_the_annotated_video_appears_only_when_complete(self):
        path = write_brightness_video(os.path.join(self.dir, "clip.mp4"), [0, 1] * 15)
        video = os.path.join(self.dir, "annotated.avi")
        with self.assertRaisesRegex(RuntimeError, "the model broke"):
            pipeline.recognize(
                sources.open_source(path, model_rate=100.0),
                recognizer.Recognizer(fake_classifier(FakeStep(fail_at=10))),
                annotate_path=video,
            )
        self.assertEqual(sorted(os.listdir(self.dir)), ["clip.mp4"])  # no video, no partial file
        summary = pipeline.recognize(
            sources.open_source(path, model_rate=100.0),
            recognizer.Recognizer(fake_classifier(FakeStep())),
            annotate_path=video,
        )
        capture = cv2.VideoCapture(video)
        self.assertEqual(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 30)
        self.assertEqual(capture.get(cv2.CAP_PROP_FPS), 20.0)
        self.assertEqual(summary["annotated_video"], video)
        self.assertEqual(sorted(os.listdir(self.dir)), ["annotated.avi", "clip.mp4"])

    def test_corrupt_live_frames_are_counted_and_max_frames_stops(self):
        source = self._live(FakeCapture(40, fps=50.0, bad=(4, 9)))  # the model takes each
        summary = pipeline.recognize(
            source, recognizer.Recognizer(fake_classifier(FakeStep())), max_frames=20
        )
        self.assertEqual(summary["corrupt"], 2)
        # 20 frames taken (the reader thread may have read one more meanwhile), 2 of those read were corrupt.
        self.assertBetween(summary["frames"], 22, 23)
        self.assertEqual(summary["model_frames"], 20)
        self.assertEqual(summary["ended"], "--max_frames=20 reached")
        self.assertFalse(summary["dropped"])

    def test_a_status_line_once_a_second(self):
        path = write_brightness_video(os.path.join(self.dir, "clip.mp4"), [1] * 30)
        status = io.StringIO()
        pipeline.recognize(
            sources.open_source(path, model_rate=100.0),
            recognizer.Recognizer(fake_classifier(FakeStep(seconds=0.05))),
            status_stream=status,
        )
        lines = status.getvalue().splitlines()
        self.assertBetween(len(lines), 1, 2)  # 30 frames x 50 ms: 1.5 s
        self.assertRegex(
            lines[0], r"\[ +\d+\.\d s\] bright 0\.\d\d \| \d+\.\d fps \| model p50 5\d\.\d\d ms"
        )

    def test_bad_settings_are_refused_before_anything_is_written(self):
        path = write_brightness_video(os.path.join(self.dir, "clip.mp4"), [1] * 5)
        events = os.path.join(self.dir, "events.jsonl")
        for kwargs, message in (
            (dict(threshold=1.5), "--threshold"),
            (dict(smoothing=-1.0), "--smoothing"),
            (dict(max_frames=0), "--max_frames"),
            (dict(annotate=os.path.join(self.dir, "video.gif")), "--annotate=.* must end in"),
            (dict(annotate=self.dir), "is a folder"),
            (
                dict(
                    annotate=os.path.join(self.dir, "e.mp4"), events=os.path.join(self.dir, "e.mp4")
                ),
                "--events and --annotate name the same file",
            ),
            (dict(frames=events), "--events and --frames name the same file"),
            (dict(motion_gate="1.5"), "--motion_gate must be auto, off, or a fraction"),
        ):
            config = pipeline.RecognizeConfig(
                **{"classifier": "unused.tflite", "source": path, "events": events, **kwargs}
            )
            with self.assertRaisesRegex(pipeline.RecognizeError, message):
                pipeline.run(config)
        self.assertEqual(os.listdir(self.dir), ["clip.mp4"])


if __name__ == "__main__":
    absltest.main()
