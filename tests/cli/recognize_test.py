"""Tests for the recognize CLI: outputs and summary, the run without TensorFlow (LiteRT and ONNX Runtime), and every
bad input a clear error with exit status 2 and nothing written."""

import contextlib
import io
import json
import os
import shutil
import tempfile

import cv2
import numpy as np
from absl.testing import absltest, flagsaver
from ai_edge_litert.tools import flatbuffer_utils

from edge_ssl.cli import recognize
from edge_ssl.fewshot import runner
from export.runtime import classifier as classifier_lib
from tests.fewshot import fixtures


def _write_colour_video(
    path: str, colours, seconds_each: float, fps: float, fourcc: str = "mp4v"
) -> str:
    writer = cv2.VideoWriter(
        path, cv2.VideoWriter_fourcc(*fourcc), fps, (fixtures.SIZE + 8, fixtures.SIZE)
    )
    rng = np.random.default_rng(0)
    for colour in colours:
        for _ in range(int(seconds_each * fps)):
            noise = rng.integers(-25, 25, size=(fixtures.SIZE, fixtures.SIZE + 8, 3))
            writer.write(
                np.clip(np.array(fixtures.COLOURS[colour]) + noise, 0, 255).astype(np.uint8)
            )
    writer.release()
    return path


class RecognizeCliTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        base = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
        cls.artifact = os.path.join(base, "artifact")
        fixtures.tiny_student_artifact(cls.artifact)
        train = fixtures.write_video_folder(os.path.join(base, "train"), 3)
        cls.output = os.path.join(base, "classifier")
        runner.run(
            runner.RunConfig(
                model=cls.artifact,
                train_dir=train,
                output_dir=cls.output,
                engine="litert",
                precision="int8",
            )
        )
        cls.classifier = os.path.join(cls.output, "classifier.tflite")
        cls.video = _write_colour_video(
            os.path.join(base, "colours.mp4"), ["red", "green", "bright"], 2.0, 25.0
        )

    def setUp(self):
        super().setUp()
        self.temp = self.create_tempdir().full_path

    def _main(self, **flags):
        stdout, stderr = io.StringIO(), io.StringIO()
        defaults = dict(classifier=self.classifier, source=self.video, status=False)
        defaults.update(flags)
        with (
            flagsaver.flagsaver(**defaults),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            status = recognize.main(["recognize"])
        return status, stdout.getvalue(), stderr.getvalue()

    def test_a_file_gives_events_an_annotated_video_and_a_summary(self):
        out = os.path.join(self.temp, "out")
        status, stdout, _ = self._main(
            events=os.path.join(out, "events.jsonl"),
            annotate=os.path.join(out, "annotated.mp4"),
            threshold=0.3,
            hysteresis=0.05,
        )
        self.assertEqual(status, 0)
        self.assertEqual(sorted(os.listdir(out)), ["annotated.mp4", "events.jsonl"])
        with open(os.path.join(out, "events.jsonl"), encoding="utf-8") as f:
            for line in f:
                self.assertEqual(set(json.loads(line)), {"start", "end", "label", "confidence"})
        capture = cv2.VideoCapture(os.path.join(out, "annotated.mp4"))
        self.assertEqual(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 150)
        self.assertEqual(capture.get(cv2.CAP_PROP_FPS), 25.0)
        for text in (
            "model frame rate 10 fps from the classifier",
            "frames 150 read, 60 run by the model, 90 resampled away, 0 skipped",
            "fps end to end",
            "latency p50",
            "peak memory",
            "motion gate 0.",
            "training windows",
        ):
            self.assertIn(text, stdout)

    def test_precision_can_be_forced_and_auto_says_why(self):
        status, stdout, _ = self._main(precision="fp32", max_frames=30)
        self.assertEqual(status, 0)
        self.assertIn("litert fp32 (model_fp32.tflite, classifier.tflite)", stdout)
        status, stdout, _ = self._main(max_frames=30)
        self.assertEqual(status, 0)
        self.assertRegex(stdout, r"precision (int8|fp32): the fastest litert step")

    def test_runs_where_tensorflow_cannot_be_imported_on_litert_and_onnxruntime(self):
        for engine in ("litert", "onnxruntime"):
            events = os.path.join(self.temp, f"{engine}.jsonl")
            result = fixtures.run_without_tensorflow(
                "edge_ssl.cli.recognize",
                [
                    f"--classifier={self.classifier}",
                    f"--source={self.video}",
                    f"--engine={engine}",
                    f"--events={events}",
                    "--nostatus",
                ],
                timeout=120,
            )
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
            self.assertIn(f"{engine} ", result.stdout)
            self.assertIn("frames 150 read", result.stdout)
            self.assertTrue(os.path.exists(events))

    def _classifier_variant(self, name: str, content: bytes) -> str:
        folder = os.path.join(self.temp, name)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "classifier.tflite")
        with open(path, "wb") as f:
            f.write(content)
        return path

    def _assert_refused(self, message: str, **flags):
        out = os.path.join(self.temp, "refused")
        shutil.rmtree(out, ignore_errors=True)
        status, stdout, stderr = self._main(
            events=os.path.join(out, "events.jsonl"),
            annotate=os.path.join(out, "video.mp4"),
            **flags,
        )
        self.assertEqual(status, 2, stderr + stdout)
        self.assertRegex(stderr, "^error: .*" + message)
        self.assertFalse(os.path.exists(out))

    def test_bad_inputs_exit_2_with_the_reason_and_write_nothing(self):
        with open(self.classifier, "rb") as f:
            content = f.read()
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
        model.signatureDefs = [s for s in model.signatureDefs if s.signatureKey.decode() != "step"]
        no_step = self._classifier_variant(
            "no_step", bytes(flatbuffer_utils.convert_object_to_bytearray(model))
        )
        weights, bias = classifier_lib.read_head(content)
        with open(os.path.join(self.artifact, "model_fp32.tflite"), "rb") as f:
            no_labels = self._classifier_variant(
                "no_labels", classifier_lib.attach_head(f.read(), weights, bias)
            )
        missing = os.path.join(self.temp, "missing")
        self._assert_refused("does not exist", source=os.path.join(missing, "video.mp4"))
        self._assert_refused("camera 9 does not open", source="9")
        self._assert_refused("unsupported URL scheme ftp://", source="ftp://example.com/live")
        self._assert_refused(
            "built without GStreamer|must end in appsink", source="videotestsrc ! fakesink"
        )
        self._assert_refused(
            "--classifier=.* does not exist", classifier=os.path.join(missing, "c.tflite")
        )
        self._assert_refused("no streaming `step` signature", classifier=no_step)
        self._assert_refused("has no labels", classifier=no_labels)
        self._assert_refused(
            "is an artifact directory .* run the few-shot runner on it first",
            classifier=self.artifact,
        )
        self._assert_refused(
            "is an embedding model .* run the few-shot runner",
            classifier=os.path.join(self.artifact, "model_int8.tflite"),
        )
        self._assert_refused("--precision=fp16 is not available on litert", precision="fp16")
        self._assert_refused("--threshold must be in", threshold=0.0)
        self._assert_refused("--motion_gate must be auto, off, or a fraction", motion_gate="never")
        not_video = os.path.join(self.temp, "notes.mp4")
        with open(not_video, "w", encoding="utf-8") as f:
            f.write("not a video")
        self._assert_refused("not a video", source=not_video)

    def test_corrupt_frames_are_counted_and_skipped(self):
        path = _write_colour_video(
            os.path.join(self.temp, "whole.avi"), ["red", "green"], 2.0, 20.0, "MJPG"
        )
        with open(path, "rb") as f:
            data = bytearray(f.read())
        middle = len(data) // 2
        data[middle : middle + 2000] = bytes(b ^ 0xFF for b in data[middle : middle + 2000])
        broken = os.path.join(self.temp, "broken.avi")
        with open(broken, "wb") as f:
            f.write(data)
        status, stdout, _ = self._main(source=broken)
        self.assertEqual(status, 0)
        corrupt = int(stdout.split(" corrupt")[0].rsplit(" ", 1)[-1])
        self.assertGreater(corrupt, 0)


if __name__ == "__main__":
    absltest.main()
