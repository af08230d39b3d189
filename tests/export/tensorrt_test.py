"""Tests for export.runtime.tensorrt and export.tftrt: what runs without a GPU (commands, cards, errors); the engine build
itself needs TensorRT 10 and a CUDA GPU and is skipped otherwise, with the reason."""

import json
import os

import numpy as np
import tensorflow as tf

from edge_ssl.keras import keras
from edge_ssl.models import student as student_lib
from export import onnx as onnx_export
from export import tftrt
from export.runtime import tensorrt


def _gpu_reason() -> str | None:
    """Why the GPU test cannot run here, or None."""
    try:
        import tensorrt as trt  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
        return "TensorRT is not installed (GPU-only; build engines on the device)"
    try:
        tensorrt.gpu_description()
    except tensorrt.TensorRTUnavailable as e:
        return f"no CUDA GPU: {e}"
    return None


class TensorRTTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.student = student_lib.build_student("tiny")
        cls.onnx_path = os.path.join(tf.compat.v1.test.get_temp_dir(), "model.onnx")
        import onnx  # pylint: disable=g-import-not-at-top

        onnx.save(onnx_export.convert_clip(cls.student, batch=None), cls.onnx_path)

    def test_trtexec_command_for_each_precision_and_a_batch_profile(self):
        command = tensorrt.trtexec_command(
            "m.onnx",
            "m.plan",
            "int8",
            "clip",
            [8, 32, 32, 3],
            max_batch=8,
            calibration_cache="c.cache",
        )
        self.assertEqual(command[:3], ["trtexec", "--onnx=m.onnx", "--saveEngine=m.plan"])
        for flag in (
            "--minShapes=clip:1x8x32x32x3",
            "--optShapes=clip:4x8x32x32x3",
            "--maxShapes=clip:8x8x32x32x3",
            "--fp16",
            "--int8",
            "--calib=c.cache",
            "--memPoolSize=workspace:1024",
        ):
            self.assertIn(flag, command)
        fp32 = tensorrt.trtexec_command("m.onnx", "m.plan", "fp32")
        self.assertNotIn("--fp16", fp32)
        with self.assertRaisesRegex(ValueError, "precision must be one of"):
            tensorrt.trtexec_command("m.onnx", "m.plan", "int4")
        with self.assertRaisesRegex(ValueError, "a batch profile needs input_shape"):
            tensorrt.trtexec_command("m.onnx", "m.plan", max_batch=4)

    def test_card_mismatch_names_version_and_gpu(self):
        card = {
            "tensorrt_version": "10.3.0",
            "gpu": "Orin",
            "compute_capability": "8.7",
            "onnx": "/a/model.onnx",
        }
        tensorrt.check_card(card, "10.3.0", {"gpu": "Orin", "compute_capability": "8.7"})
        with self.assertRaisesRegex(
            tensorrt.EngineMismatchError,
            r"TensorRT 10.3.0 built it, this is 10.4.0; it was built on Orin \(sm 8.7\), this is RTX 4090 "
            r"\(sm 8.9\). Rebuild it here from /a/model.onnx",
        ):
            tensorrt.check_card(card, "10.4.0", {"gpu": "RTX 4090", "compute_capability": "8.9"})

    def test_without_tensorrt_the_build_error_gives_the_trtexec_command(self):
        if _gpu_reason() is None:
            self.skipTest("TensorRT and a GPU are present: the build runs in the GPU test")
        engine = self.get_temp_dir() + "/model.plan"
        with self.assertRaisesRegex(
            tensorrt.TensorRTUnavailable, r"trtexec --onnx=.*model.onnx --saveEngine="
        ):
            tensorrt.build_engine(self.onnx_path, engine, "fp16", max_batch=4)
        self.assertFalse(os.path.exists(engine))

    def test_bad_build_requests_fail_before_tensorrt(self):
        with self.assertRaisesRegex(FileNotFoundError, "no ONNX file"):
            tensorrt.build_engine("/no/model.onnx", "/tmp/x.plan")
        with self.assertRaisesRegex(ValueError, "int8 needs calibration inputs"):
            tensorrt.build_engine(self.onnx_path, self.get_temp_dir() + "/x.plan", "int8")

    def test_engine_without_card_is_refused(self):
        engine = self.get_temp_dir() + "/foreign.plan"
        with open(engine, "wb") as f:
            f.write(b"\0")
        with self.assertRaisesRegex(FileNotFoundError, "has no card"):
            tensorrt.load_engine(engine)

    def test_builds_and_loads_an_fp16_engine_on_a_gpu(self):
        reason = _gpu_reason()
        if reason:
            self.skipTest(reason)
        engine = self.get_temp_dir() + "/model_fp16.plan"
        card = tensorrt.build_engine(self.onnx_path, engine, "fp16", max_batch=2)
        self.assertEqual(card["precision"], "fp16")
        with open(engine + tensorrt.CARD_SUFFIX, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["onnx_sha256"], tensorrt.sha256(self.onnx_path))
        self.assertIsNotNone(tensorrt.load_engine(engine))
        clips = np.random.default_rng(0).uniform(size=(2, 8, 32, 32, 3)).astype("float32")
        outputs = tensorrt.TensorRTModel(engine)({"clip": clips})
        want = self.student(clips).numpy()
        got = next(iter(outputs.values()))
        cosine = np.sum(want * got, -1) / np.linalg.norm(got, axis=-1)
        self.assertGreater(float(cosine.min()), 0.999)

    def test_tftrt_without_tensorrt_names_the_onnx_route(self):
        if tftrt.tensorrt_enabled():
            self.skipTest("this TensorFlow has TensorRT")
        path = self.get_temp_dir() + "/artifacts/saved_model"
        with self.assertRaisesRegex(
            tftrt.TFTRTUnavailable, r"ONNX export instead: .*artifacts/model.onnx"
        ):
            tftrt.convert(path, self.get_temp_dir() + "/trt")


if __name__ == "__main__":
    tf.test.main()
