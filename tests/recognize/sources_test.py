"""Tests for edge_ssl.recognize.sources: files read whole and resampled, live sources that never fall behind, drops
and reconnects, corrupt frames, and every `--source` that cannot be read."""

import os
import threading
import time

import cv2
import numpy as np
from absl.testing import absltest

from edge_ssl.recognize import sources
from tests.recognize.fixtures import FakeCapture

SIZE = (48, 64)  # height, width


def write_video(path: str, frames: int, fps: float, fourcc: str = "mp4v") -> str:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, SIZE[::-1])
    assert writer.isOpened(), path
    rng = np.random.default_rng(0)
    for i in range(frames):
        writer.write((np.full((*SIZE, 3), 4 * i) + rng.integers(0, 8, (*SIZE, 3))).astype(np.uint8))
    writer.release()
    return path


class SourcesTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path

    def test_a_30_fps_file_feeds_an_8_fps_model_every_frame_read_none_skipped(self):
        path = write_video(os.path.join(self.dir, "clip.mp4"), 90, 30.0)
        source = sources.open_source(path, model_rate=8.0)
        frames = list(source.frames())
        self.assertLen(frames, 90)
        self.assertEqual(source.counters.read, 90)
        self.assertEqual(source.counters.skipped, 0)
        due = [f.seconds for f in frames if f.due]
        self.assertLen(due, 24)  # 3 s at 8 fps
        self.assertEqual(source.counters.resampled_away, 66)
        np.testing.assert_allclose(
            np.diff(due), 1 / 8, atol=1 / 30
        )  # never more than a source frame off
        self.assertAlmostEqual(frames[30].seconds, 1.0)
        self.assertTrue(frames[0].new_stream)
        self.assertFalse(any(f.new_stream for f in frames[1:]))
        self.assertEqual(source.fps, 30.0)

    def test_a_source_slower_than_the_model_feeds_every_frame(self):
        path = write_video(os.path.join(self.dir, "slow.mp4"), 10, 5.0)
        frames = list(sources.open_source(path, model_rate=8.0).frames())
        self.assertTrue(all(f.due for f in frames))

    def test_a_folder_is_its_videos_in_order_each_a_new_stream_and_a_broken_one_skipped(self):
        folder = os.path.join(self.dir, "videos")
        os.makedirs(folder)
        write_video(os.path.join(folder, "b.mp4"), 10, 10.0)
        write_video(os.path.join(folder, "a.avi"), 6, 10.0, "MJPG")
        with open(os.path.join(folder, "c.mp4"), "wb") as f:
            f.write(b"\x00 not a video")
        with open(os.path.join(folder, "notes.txt"), "w", encoding="utf-8") as f:
            f.write("not a video file")
        source = sources.open_source(folder, model_rate=10.0)
        frames = list(source.frames())
        self.assertEqual([f.stream for f in frames if f.new_stream], ["a.avi", "b.mp4"])
        self.assertEqual(len(frames), 16)
        self.assertEqual(frames[6].seconds, 0.0)  # times restart with each video
        self.assertEqual(source.counters.files, 2)
        self.assertEqual(
            [p for p, _ in source.counters.files_skipped], [os.path.join(folder, "c.mp4")]
        )

    def test_corrupt_frames_inside_a_file_are_counted_and_the_rest_read(self):
        path = write_video(os.path.join(self.dir, "whole.avi"), 40, 10.0, "MJPG")
        with open(path, "rb") as f:
            data = bytearray(f.read())
        middle = len(data) // 2
        data[middle : middle + 600] = bytes(b ^ 0xFF for b in data[middle : middle + 600])
        broken = os.path.join(self.dir, "broken.avi")
        with open(broken, "wb") as f:
            f.write(data)
        source = sources.open_source(broken, model_rate=10.0)
        frames = list(source.frames())
        self.assertGreater(source.counters.corrupt, 0)
        self.assertGreater(len(frames), 30)
        # FFmpeg conceals some damage (a frame repeated or lost); a read failing before the declared end counts.
        self.assertLessEqual(len(frames) + source.counters.corrupt, 40)
        self.assertGreaterEqual(len(frames) + source.counters.corrupt, 40 - 2)

    def _live(self, captures, model_rate=100.0, reconnects=2):
        pending = list(captures)

        def opener():
            return pending.pop(0) if pending else FakeCapture(0, opened=False)

        source = sources.LiveSource(
            opener, "fake camera", model_rate, reconnects, reconnect_pause=0.01
        )
        source.open()
        return source

    def test_a_live_source_faster_than_its_consumer_skips_and_counts_never_falling_behind(self):
        source = self._live([FakeCapture(120, fps=200.0)])
        taken, lags = [], []
        start = time.monotonic()
        for frame in source.frames():
            lags.append(time.monotonic() - start - frame.seconds)
            taken.append(frame)
            time.sleep(0.03)  # a model slower than the camera
        counters = source.counters
        self.assertGreater(counters.skipped, 20)
        self.assertEqual(counters.read, 120)
        self.assertEqual(len(taken) + counters.skipped + counters.resampled_away, 120)
        # Each frame taken was at most one consumer step old: the reader never queues.
        self.assertLess(max(lags), 0.25)  # a queue would be ~0.6 s behind by the end
        self.assertIn("did not come back after 2 reopen attempt(s)", source.ended)

    def test_a_live_source_is_resampled_before_skipping(self):
        source = self._live([FakeCapture(60, fps=100.0)], model_rate=25.0)
        taken = list(
            source.frames()
        )  # a fast consumer: nothing is skipped, 3 in 4 are resampled away
        self.assertEqual(source.counters.skipped, 0)
        self.assertAlmostEqual(len(taken), 15, delta=3)
        self.assertEqual(len(taken) + source.counters.resampled_away, 60)

    def test_a_dropped_live_source_is_reopened_and_the_new_stream_marked(self):
        captures = [
            FakeCapture(5, fps=50.0),
            FakeCapture(0, opened=False),
            FakeCapture(5, fps=50.0),
        ]
        source = self._live(captures, reconnects=3)  # a model at 100 fps takes every frame
        frames = list(source.frames())
        self.assertLen(frames, 10)
        self.assertEqual([i for i, f in enumerate(frames) if f.new_stream], [0, 5])
        # Two reopen attempts brought it back (the first failed); the end used up the third.
        self.assertEqual(source.counters.reconnects, 3)
        self.assertIn("stopped delivering frames", source.ended)

    def test_corrupt_live_frames_are_counted_and_skipped(self):
        source = self._live([FakeCapture(20, bad=(3, 7))], reconnects=0)
        frames = list(source.frames())
        self.assertEqual(source.counters.corrupt, 2)
        self.assertTrue(all(f.image.shape[:2] == SIZE for f in frames))

    def test_closing_a_live_source_stops_its_reader(self):
        source = self._live([FakeCapture(10_000, fps=500.0)])
        for i, _ in enumerate(source.frames()):
            if i == 5:
                break
        # The generator's close stopped the reader thread and released the capture.
        self.assertFalse(
            any(t.name == "source fake camera" and t.is_alive() for t in threading.enumerate())
        )

    def test_sources_that_cannot_be_read_are_clear_errors(self):
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        zero = os.path.join(self.dir, "zero.mp4")
        open(zero, "wb").close()
        text = os.path.join(self.dir, "notes.mp4")
        with open(text, "w", encoding="utf-8") as f:
            f.write("hello")
        for spec, message in (
            (os.path.join(self.dir, "missing.mp4"), "does not exist"),
            (empty, "holds no video file"),
            (zero, "empty file"),
            (text, "not a video"),
            ("ftp://example.com/stream", "unsupported URL scheme ftp://"),
            ("rtmpx://host/live", "unsupported URL scheme rtmpx://"),
            ("99", "camera 99 does not open"),
            ("", "--source is empty"),
        ):
            with self.assertRaisesRegex(sources.SourceError, message, msg=spec):
                sources.open_source(spec, model_rate=8.0)
        if not sources.gstreamer_available():
            with self.assertRaisesRegex(sources.SourceError, "built without GStreamer"):
                sources.open_source(sources.JETSON_CSI_PIPELINE, model_rate=8.0)

    def test_a_network_stream_that_does_not_open_is_an_error(self):
        with self.assertRaisesRegex(sources.SourceError, "does not open"):
            sources.open_source("rtsp://127.0.0.1:9/none", model_rate=8.0)


if __name__ == "__main__":
    absltest.main()
