"""Tests for edge_ssl.recognize (recognizer, streaming, pipeline) on a tiny student that has learned the direction of
moving bars: streaming equals the whole window, events in order on a concatenated video with no action on a still
stretch, and a 30 fps file resampled for an 8 fps model."""

import importlib.util
import json
import os
from unittest import mock

import numpy as np
import tensorflow as tf

from edge_ssl.data import decode
from edge_ssl.recognize import pipeline, recognizer, streaming
from export.runtime import classifier as classifier_lib
from export.runtime import litert
from tests.recognize import fixtures

# (label or None for still bars, seconds): the concatenated video of known actions.
SEGMENTS = [("right", 3.0), (None, 3.0), ("left", 3.0), ("down", 3.0), ("right", 3.0)]
# Boundaries must be within one model window (T frames at the model's rate: 1 s) of the truth: the decision needs
# about half a window of the new action, plus the smoothing.
BOUNDARY_TOLERANCE = fixtures.FRAMES / fixtures.MODEL_FPS


def _true_events(segments):
    events, start = [], 0.0
    for label, seconds in segments:
        if label is not None:
            events.append((label, start, start + seconds))
        start += seconds
    return events


class RecognizerTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        base = tf.compat.v1.test.get_temp_dir()
        cls.paths = fixtures.make_classifier(base)
        cls.video = fixtures.write_video(os.path.join(base, "actions.mp4"), SEGMENTS, 24.0, seed=99)

    def _classifier(self, **kwargs) -> streaming.StreamingClassifier:
        return streaming.open_classifier(self.paths["classifier"], **kwargs)

    def test_the_classifier_says_what_it_needs(self):
        classifier = self._classifier(precision="fp32")
        self.assertEqual(classifier.labels, fixtures.LABELS)
        self.assertEqual(classifier.size, (fixtures.SIZE, fixtures.SIZE))
        self.assertEqual(classifier.frames, fixtures.FRAMES)
        # The runner recorded the rate of the clips it was fitted on.
        self.assertEqual(classifier.frame_rate, fixtures.MODEL_FPS)
        self.assertIn("from the classifier", classifier.frame_rate_note)
        self.assertEqual((classifier.engine, classifier.files), ("litert", ["classifier.tflite"]))
        # The runner measured how much its 12 training clips move, for the motion gate.
        self.assertEqual(classifier.movement["windows"], 12)
        self.assertGreater(classifier.movement["p5"], 0.01)

    def test_streamed_scores_equal_the_classifier_run_on_the_same_window_whole(self):
        frames = decode.read_video(self.video)[::3][: 3 * fixtures.FRAMES]  # 8 fps
        clips = decode.model_input(frames, (fixtures.SIZE, fixtures.SIZE))
        with open(self.paths["classifier"], "rb") as f:
            content = f.read()
        weights, bias = classifier_lib.read_head(content)
        for precision, first_tolerance in (("fp32", 1e-5), ("int8", 1e-5)):
            classifier = self._classifier(precision=precision)
            stream = recognizer.Recognizer(classifier)
            streamed = [stream.infer(frame, i / 8).probabilities for i, frame in enumerate(frames)]
            source = os.path.join(self.paths["artifact"], f"model_{precision}.tflite")
            with open(source, "rb") as f:
                whole_model = litert.TFLiteModel(
                    classifier_lib.attach_head(f.read(), weights, bias)
                )
            for end in range(fixtures.FRAMES, len(frames) + 1, fixtures.FRAMES):
                whole = whole_model.run(
                    "serving_default", {"clip": clips[None, end - fixtures.FRAMES : end]}
                )["probabilities"][0]
                # From the zero state the first window is the whole-clip run exactly; later windows differ by the
                # temporal convolutions' reach before the window (real frames there, zeros in a whole-clip run).
                tolerance = first_tolerance if end == fixtures.FRAMES else 0.05
                self.assertAllClose(
                    streamed[end - 1], whole, atol=tolerance, msg=f"{precision} {end}"
                )

    def test_onnxruntime_streams_what_litert_streams(self):
        frames = decode.read_video(self.video)[::3][:12]
        results = {}
        for engine in ("litert", "onnxruntime"):
            stream = recognizer.Recognizer(self._classifier(engine=engine, precision="fp32"))
            results[engine] = np.stack(
                [stream.infer(frame, i / 8).probabilities for i, frame in enumerate(frames)]
            )
        self.assertAllClose(results["litert"], results["onnxruntime"], atol=1e-4)

    def test_tensorrt_without_tensorrt_or_its_engine_says_what_to_install_or_build(self):
        # The engine itself runs only on a GPU with TensorRT (the export GPU tests build it); here, its errors.
        if importlib.util.find_spec("tensorrt") is None:
            with self.assertRaisesRegex(streaming.ClassifierError, "needs TensorRT 10"):
                self._classifier(engine="tensorrt")
        real_find_spec = importlib.util.find_spec
        # With TensorRT importable but no engine built for this artifact, the message gives both ways to build it.
        with mock.patch.object(
            streaming.importlib.util,
            "find_spec",
            side_effect=lambda name, *a: (
                object() if name == "tensorrt" else real_find_spec(name, *a)
            ),
        ):
            with self.assertRaises(streaming.ClassifierError) as raised:
                self._classifier(engine="tensorrt")
        message = str(raised.exception)
        self.assertIn("--formats=tensorrt_fp16", message)
        self.assertIn("trtexec --onnx=", message)
        self.assertIn("--fp16", message)

    def test_events_come_out_in_order_with_their_labels_and_no_action_on_the_still_stretch(self):
        events_path = os.path.join(self.get_temp_dir(), "events.jsonl")
        summary = pipeline.run(
            pipeline.RecognizeConfig(
                classifier=self.paths["classifier"],
                source=self.video,
                events=events_path,
                status=False,
            )
        )
        with open(events_path, encoding="utf-8") as f:
            events = [json.loads(line) for line in f]
        truth = _true_events(SEGMENTS)
        self.assertEqual([e["label"] for e in events], [label for label, _, _ in truth])
        for event, (label, start, end) in zip(events, truth):
            self.assertLessEqual(abs(event["start"] - start), BOUNDARY_TOLERANCE, event)
            self.assertLessEqual(abs(event["end"] - end), BOUNDARY_TOLERANCE, event)
            self.assertGreater(event["confidence"], 0.6)
        # Nothing is recognised on the still bars (3-6 s) beyond the boundaries' tolerance.
        still_start, still_end = 3.0 + BOUNDARY_TOLERANCE, 6.0 - BOUNDARY_TOLERANCE
        for event in events:
            self.assertFalse(event["start"] < still_end and event["end"] > still_start, event)
        self.assertEqual((summary["frames"], summary["model_frames"]), (360, 120))
        self.assertEqual((summary["skipped"], summary["corrupt"]), (0, 0))
        self.assertEqual(summary["events"], len(truth))
        # The gate came from the classifier's training windows.
        gate = recognizer.GATE_SHARE * self._classifier().movement["p5"]
        self.assertAlmostEqual(summary["motion_gate"], gate)
        self.assertIn("training windows", summary["motion_gate_note"])

    def test_the_still_stretch_is_no_action_frame_by_frame(self):
        # Without a gate (this student spreads its probabilities on still bars), then with the classifier's own.
        classifier = self._classifier()
        for gate in (None, recognizer.motion_gate("auto", classifier.movement)[0]):
            stream = recognizer.Recognizer(classifier, gate=gate)
            results = {}
            for i, frame in enumerate(decode.read_video(self.video)):
                result = stream.process(frame, i / 24)
                if result is not None:
                    results[result.time] = result
            still = [r for t, r in results.items() if 4.5 <= t < 6.0]
            self.assertNotEmpty(still)
            self.assertEqual({r.label for r in still}, {None})
            self.assertEqual(results[8.0].label, "left")
            # The gate calls the still bars still, and none of the moving ones.
            self.assertEqual({r.still for r in still}, {gate is not None})
            self.assertFalse(any(r.still for t, r in results.items() if 1.5 <= t < 3.0))

    def test_a_30_fps_file_is_resampled_to_the_models_8_fps(self):
        segments = [("left", 3.0), ("down", 3.0)]
        video = fixtures.write_video(
            os.path.join(self.get_temp_dir(), "thirty.mp4"), segments, 30.0, seed=5
        )
        stream = recognizer.Recognizer(self._classifier(), source_rate=30.0)
        results = [
            stream.process(frame, i / 30) for i, frame in enumerate(decode.read_video(video))
        ]
        ran = [r for r in results if r is not None]
        self.assertLen(ran, 48)  # 6 s at 8 fps, of 180 frames
        times = np.array([r.time for r in ran])
        np.testing.assert_allclose(np.diff(times), 1 / 8, atol=1 / 30)
        stream.finish()
        self.assertEqual([e["label"] for e in stream.events], ["left", "down"])
        # Fed at 30 fps unresampled, the bars would move 3.75 times too slowly for what the model learned.
        self.assertGreater(min(r.confidence for r in ran[12:20]), 0.6)


if __name__ == "__main__":
    tf.test.main()
