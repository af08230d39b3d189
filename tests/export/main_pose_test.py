"""Tests for `python -m export` on CV-MIM's pose encoder: a pretraining workdir exported end to end on the synthetic
world, a pose folder as calibration and parity data, and models the CLI cannot export."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from absl import app
from absl.testing import flagsaver

from edge_ssl.configs import cv_mim_tiny
from edge_ssl.data import synthetic
from edge_ssl.keras import keras
from edge_ssl.methods import cv_mim
from edge_ssl.models import pose_encoder
from export import __main__ as export_main
from tests.data import tiny_world


def _pretraining_workdir(workdir: str) -> str:
    """What `python -m edge_ssl.cli.pretrain --method=cv_mim --config=tiny` leaves: run.json and backbone/."""
    keras.utils.set_random_seed(0)
    config = cv_mim_tiny.get_config()
    method = cv_mim.build(config)
    os.makedirs(workdir, exist_ok=True)
    method.save_backbone(os.path.join(workdir, "backbone"))
    with open(os.path.join(workdir, "run.json"), "w", encoding="utf-8") as f:
        json.dump({"method": config.method, "preset": config.preset}, f)
    return workdir


class ExportPoseCliTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.workdir = _pretraining_workdir(
            os.path.join(tf.compat.v1.test.get_temp_dir(), "cv_mim_run")
        )

    def test_exports_a_cv_mim_pretraining_workdir_on_the_synthetic_world(self):
        out = self.get_temp_dir() + "/pose_artifacts"
        data_dir = tiny_world.tiny_world(self.get_temp_dir() + "/tfds")
        command = [
            sys.executable,
            "-m",
            "export",
            f"--model={self.workdir}",
            f"--output_dir={out}",
            f"--data_dir={data_dir}",
            "--num_representative=4",
            "--num_heldout=6",
            "--formats=tflite_fp32,tflite_int8,onnx",
            # A random encoder's per-frame codes sit near several prototypes (see pose_artifacts_test.py).
            "--int8_min_agreement=0.5",
        ]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stdout[-2000:] + result.stderr[-3000:])
        self.assertIn("(pose_encoder)", result.stdout)
        self.assertRegex(result.stdout, r"int8 +max abs \S+ +mean cosine 0\.9\d+")
        self.assertNotIn("streamed", result.stdout)
        with open(os.path.join(out, "model_card.json"), encoding="utf-8") as f:
            card = json.load(f)
        self.assertEqual(card["kind"], "pose_encoder")
        self.assertEqual(card["input"]["keypoints"], [17, 2])
        self.assertEqual(card["source"], os.path.join(self.workdir, "backbone"))
        self.assertEqual(
            set(card["artifacts"]), {"saved_model", "fp32", "int8", "onnx", "head_trainer"}
        )
        # Every frame of the 6 held-out sequences of the tiny world (8 frames each).
        self.assertEqual(card["artifacts"]["int8"]["parity"]["count"], 48)
        self.assertLessEqual(card["artifacts"]["fp32"]["parity"]["max_abs"], 1e-4)

    def test_pose_folders_for_calibration_and_parity(self):
        root = self.get_temp_dir() + "/poses"
        world = synthetic.get_config("tiny", performances=(1, 1, 2))
        for i, example in enumerate(synthetic.as_dataset(world, "heldout").take(4)):
            folder = os.path.join(root, f"action{i % 2}")
            os.makedirs(folder, exist_ok=True)
            pose2d = example["pose2d"].numpy()
            confidence = np.ones_like(pose2d[..., :1])  # files may carry a confidence channel
            np.save(os.path.join(folder, f"clip{i}.npy"), np.concatenate([pose2d, confidence], -1))
        with open(os.path.join(root, "action0", "broken.npy"), "wb") as f:
            f.write(b"not numpy")
        out = self.get_temp_dir() + "/from_folder"
        with flagsaver.flagsaver(
            model=self.workdir,
            output_dir=out,
            representative_data=root,
            heldout=root,
            num_heldout=3,
            formats=["tflite_fp32", "onnx"],
        ):
            self.assertEqual(export_main.main(["export"]), 0)
        with open(os.path.join(out, "model_card.json"), encoding="utf-8") as f:
            card = json.load(f)
        # Three files taken from the classes in turn (action0, action1, action0), 8 frames each.
        self.assertEqual(card["artifacts"]["fp32"]["parity"]["count"], 24)
        self.assertIsNotNone(card["artifacts"]["fp32"]["parity"]["agreement"])

    def test_models_and_folders_the_cli_cannot_export_are_usage_errors(self):
        inputs = keras.Input((17, 3))
        odd = self.get_temp_dir() + "/odd"
        keras.Model(inputs, keras.layers.Flatten()(inputs)).save(odd, save_format="tf")
        with flagsaver.flagsaver(model=odd, output_dir=self.get_temp_dir() + "/o"):
            with self.assertRaisesRegex(app.UsageError, r"takes \[17, 3\]: neither a student"):
                export_main.main(["export"])
        exported = self.get_temp_dir() + "/exported"
        pose_encoder.save_keypoint_model(
            pose_encoder.keypoint_embedding_model(
                keras.models.load_model(os.path.join(self.workdir, "backbone"))
            ),
            exported,
        )
        with flagsaver.flagsaver(model=exported, output_dir=self.get_temp_dir() + "/o"):
            with self.assertRaisesRegex(app.UsageError, "export the CV-MIM pretraining workdir"):
                export_main.main(["export"])
        empty = self.get_temp_dir() + "/empty"
        os.makedirs(empty)
        with flagsaver.flagsaver(
            model=self.workdir, output_dir=self.get_temp_dir() + "/o", representative_data=empty
        ):
            with self.assertRaisesRegex(app.UsageError, "folder .*empty.*no class folders"):
                export_main.main(["export"])


if __name__ == "__main__":
    tf.test.main()
