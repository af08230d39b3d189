"""Tests for export.artifacts.export_pose_encoder: CV-MIM's tiny pose encoder exported to every form, the card the
few-shot runner reads, parity, raw keypoints normalised in the graph as in training, and bad input.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import tensorflow as tf

from edge_ssl.data import pose, synthetic
from edge_ssl.keras import keras
from edge_ssl.models import pose_encoder
from edge_ssl.models import student as student_lib
from export import artifacts
from export.runtime import layout, litert, parity

# A random encoder's per-frame codes sit close to several class prototypes, so a frame's nearest prototype flips
# under tiny changes and top-1 agreement says little about an untrained encoder; cosine is the check here.
THRESHOLDS = dict(parity.DEFAULT_THRESHOLDS, int8=parity.Thresholds(min_cosine=0.98))
IMAGE = 32  # the tiny synthetic world's frames are 32 x 32 pixels


def _poses(split: str, sequences: int):
    """Every frame's COCO-17 pose [N, 17, 2] (pixels) of the tiny synthetic world, and its sequence's class."""
    world = synthetic.get_config("tiny", performances=(3, 1, 3))
    examples = list(synthetic.as_dataset(world, split).take(sequences).as_numpy_iterator())
    keypoints = np.concatenate([e["pose2d"] for e in examples])
    labels = np.concatenate([np.full(len(e["pose2d"]), e["label"]) for e in examples])
    return keypoints.astype("float32"), labels


class PoseArtifactsTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.backbone = pose_encoder.pose_embedding_model(pose_encoder.pose_encoder("tiny", 64), 32)
        cls.representative, _ = _poses("pretrain", 6)
        cls.heldout, cls.labels = _poses("heldout", 6)
        cls.out = os.path.join(tf.compat.v1.test.get_temp_dir(), "pose_artifacts")
        cls.card = artifacts.export_pose_encoder(
            cls.backbone,
            cls.out,
            cls.representative,
            cls.heldout,
            cls.labels,
            artifacts.ExportOptions(thresholds=THRESHOLDS),
            source="/runs/cv_mim",
        )
        # What CV-MIM trains on: the backbone applied to edge_ssl.data.pose's normalisation of the pose.
        cls.trained = cls.backbone(pose.normalize(cls.heldout), training=False).numpy()

    def test_writes_every_form_and_the_card_the_runner_reads(self):
        for name in (
            "saved_model/saved_model.pb",
            "model_fp32.tflite",
            "model_fp16.tflite",
            "model_int8.tflite",
            "model.onnx",
            "head_trainer.tflite",
            layout.CARD,
        ):
            self.assertTrue(os.path.exists(os.path.join(self.out, name)), name)
        self.assertFalse(os.path.exists(os.path.join(self.out, "model_step.onnx")))
        self.assertFalse(os.path.exists(self.out + ".partial"))
        card = layout.ArtifactDir(self.out).read_card()
        self.assertEqual(card, json.loads(json.dumps(self.card)))
        self.assertEqual((card["kind"], card["modality"]), ("pose_encoder", "pose"))
        self.assertEqual(card["input"], {"keypoints": [17, 2], "dtype": "float32", "layout": "NKC"})
        self.assertEqual(
            next(iter(card["input"])), "keypoints"
        )  # the runner feeds the first input by name
        self.assertEqual(card["embedding_dim"], 32)
        self.assertIs(card["per_frame"], True)
        self.assertNotIn("state", card)
        self.assertEqual(card["source"], "/runs/cv_mim")
        self.assertEqual(card["keypoint_order"][5], "left_shoulder")
        self.assertTrue(all(card["lint"]["ok"].values()), card["lint"])
        self.assertEqual(card["artifacts"]["saved_model"]["signatures"], ["serving_default"])

    def test_parity_of_every_form(self):
        figures = {k: v["parity"] for k, v in self.card["artifacts"].items() if "parity" in v}
        self.assertEqual(set(figures), {"fp32", "fp16", "int8", "onnx"})
        for name, entry in figures.items():
            self.assertEqual(entry["count"], len(self.heldout), name)
            self.assertTrue(self.card["artifacts"][name]["passed"], self.card["artifacts"][name])
            self.assertIsNone(self.card["artifacts"][name]["stream_max_abs"])
        self.assertLessEqual(figures["fp32"]["max_abs"], 1e-4)
        self.assertLessEqual(figures["onnx"]["max_abs"], 1e-4)
        self.assertGreaterEqual(figures["fp16"]["mean_cosine"], 0.999)
        self.assertGreaterEqual(figures["int8"]["mean_cosine"], 0.98)
        self.assertIsNotNone(figures["int8"]["agreement"])
        self.assertNotIn("step_file", self.card["artifacts"]["onnx"])

    def test_every_runtime_embeds_raw_keypoints_as_training_normalises_them(self):
        serving = tf.saved_model.load(os.path.join(self.out, "saved_model")).signatures[
            "serving_default"
        ]
        saved = serving(keypoints=tf.constant(self.heldout))["embedding"].numpy()
        model = litert.TFLiteModel(
            os.path.join(self.out, "model_fp32.tflite"), required=("serving_default",)
        )
        on_litert = np.concatenate(
            [
                model.run("serving_default", {"keypoints": k[None]})["embedding"]
                for k in self.heldout
            ]
        )
        session = ort.InferenceSession(
            os.path.join(self.out, "model.onnx"), providers=["CPUExecutionProvider"]
        )
        on_onnx_runtime = np.concatenate(
            [session.run(["embedding"], {"keypoints": k[None]})[0] for k in self.heldout]
        )
        for name, embeddings in (
            ("saved_model", saved),
            ("litert", on_litert),
            ("onnx", on_onnx_runtime),
        ):
            with self.subTest(name):
                self.assertAllClose(embeddings, self.trained, atol=1e-5)
                self.assertAllClose(
                    np.linalg.norm(embeddings, axis=-1), np.ones(len(embeddings)), atol=1e-5
                )

    def test_int8_takes_keypoints_anywhere_in_the_image(self):
        # Calibrate on poses in the middle of the image only; the int8 model must still take poses at its edges.
        middle = (
            self.representative - self.representative.mean(axis=(1, 2), keepdims=True) + IMAGE / 2
        )
        low = self.heldout - self.heldout.min(axis=(1, 2), keepdims=True)
        high = self.heldout + (IMAGE - self.heldout.max(axis=(1, 2), keepdims=True))
        edges = np.concatenate([low, high])
        out = self.get_temp_dir() + "/int8_only"
        card = artifacts.export_pose_encoder(
            self.backbone,
            out,
            middle,
            edges,
            options=artifacts.ExportOptions(("int8",), onnx=False, thresholds=THRESHOLDS),
            image_extent=IMAGE,
        )
        low_end, high_end = card["int8_keypoint_range"]
        self.assertLessEqual(low_end, 0.0)
        self.assertGreaterEqual(high_end, IMAGE)
        # Without the moved calibration copies the edges are clipped: mean cosine 0.94, worst 0.80 (measured).
        figures = card["artifacts"]["int8"]["parity"]
        self.assertGreaterEqual(figures["mean_cosine"], 0.98)
        self.assertGreaterEqual(figures["min_cosine"], 0.9)

    def test_calibration_poses_are_moved_against_the_image_edges(self):
        poses = np.full((2, 17, 2), 10.0, "float32") + np.arange(17)[None, :, None]
        calibration = artifacts.pose_calibration(poses, extent=100.0)
        self.assertEqual(calibration.shape, (6, 17, 2))
        self.assertAllClose(calibration[:2], poses)
        self.assertAllClose(calibration[2:4].min(axis=(1, 2)), [0.0, 0.0])
        self.assertAllClose(calibration[4:].max(axis=(1, 2)), [100.0, 100.0])
        # Moved, not reshaped: the normalised poses are the same.
        self.assertAllClose(pose.normalize(calibration[4:]), pose.normalize(poses), atol=1e-6)

    def test_bad_inputs_are_clear_errors(self):
        out = self.get_temp_dir() + "/bad"
        student = student_lib.build_student("tiny")
        with self.assertRaisesRegex(
            artifacts.ArtifactError, r"must take normalised poses \[B, 13, 2\], it takes \[8, 32"
        ):
            artifacts.export_pose_encoder(student.model, out, self.heldout, self.heldout)
        with_confidence = np.concatenate([self.heldout, np.ones_like(self.heldout[..., :1])], -1)
        with self.assertRaisesRegex(artifacts.ArtifactError, "drop the confidence channel"):
            artifacts.export_pose_encoder(self.backbone, out, self.heldout, with_confidence)
        broken = self.heldout.copy()
        broken[0, 0, 0] = np.nan
        with self.assertRaisesRegex(artifacts.ArtifactError, "NaN or Inf"):
            artifacts.export_pose_encoder(self.backbone, out, broken, self.heldout)
        with self.assertRaisesRegex(artifacts.ArtifactError, "int8 needs representative poses"):
            artifacts.export_pose_encoder(self.backbone, out, np.zeros((0, 17, 2)), self.heldout)
        with self.assertRaisesRegex(artifacts.ArtifactError, "image_extent must be positive"):
            artifacts.export_pose_encoder(
                self.backbone, out, self.heldout, self.heldout, image_extent=0
            )
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    tf.test.main()
