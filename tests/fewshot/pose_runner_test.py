"""The runner on pose folders with an exported CV-MIM pose encoder: per-frame embeddings and a linear head in LiteRT,
the temporal classifier (--head=finetune) with its sequence classifier, and the single-shot cross-view protocol.
"""

import os

import numpy as np
import tensorflow as tf

from edge_ssl.data import synthetic
from edge_ssl.fewshot import runner
from edge_ssl.keras import keras
from edge_ssl.models import pose_encoder
from export import artifacts
from export.runtime import litert, parity
from tests.fewshot import fixtures

FRAMES = 12


def _write_pose_folder(root: str, per_view: int, seed: int) -> None:
    """Two actions a random encoder separates (arms raised / arms down), seen from two "views" (mirrored), in
    files named `<clip>_view<k>.npy` as the cross-view protocol reads them."""
    world = synthetic.get_config("tiny", performances=(1, 0, 0))
    base = next(synthetic.as_dataset(world, "pretrain").take(1).as_numpy_iterator())["pose2d"][0]
    rng = np.random.default_rng(seed)
    for action, lift in (("raise", -10.0), ("lower", 6.0)):
        for view in range(2):
            for i in range(per_view):
                frames = np.repeat(base[None], FRAMES, axis=0).astype(np.float32)
                frames[:, [7, 8, 9, 10], 1] += lift * np.linspace(0.3, 1.0, FRAMES)[:, None]
                if view == 1:
                    frames[..., 0] = 32.0 - frames[..., 0]
                frames += rng.normal(0, 0.3, frames.shape).astype(np.float32)
                path = os.path.join(root, action, f"clip{i}_view{view}.npy")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                np.save(path, frames)


class PoseRunnerTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        base = tf.compat.v1.test.get_temp_dir()
        keras.utils.set_random_seed(0)
        backbone = pose_encoder.pose_embedding_model(pose_encoder.pose_encoder("tiny", 64), 32)
        cls.train = os.path.join(base, "train")
        cls.eval = os.path.join(base, "eval")
        _write_pose_folder(cls.train, 3, seed=0)
        _write_pose_folder(cls.eval, 2, seed=1)
        frames = np.concatenate(
            [np.load(os.path.join(r, f)) for r, _, fs in os.walk(cls.train) for f in fs]
        )
        cls.artifact = os.path.join(base, "pose_artifact")
        thresholds = dict(parity.DEFAULT_THRESHOLDS, int8=parity.Thresholds(min_cosine=0.98))
        artifacts.export_pose_encoder(
            backbone,
            cls.artifact,
            frames[::2],
            frames[1::2],
            options=artifacts.ExportOptions(thresholds=thresholds, onnx=False),
        )

    def config(self, **kwargs):
        defaults = dict(
            model=self.artifact,
            train_dir=self.train,
            eval_dir=self.eval,
            output_dir=os.path.join(self.get_temp_dir(), "out"),
            cache_dir=None,
            epochs=60,
            learning_rate=0.05,
        )
        defaults.update(kwargs)
        return runner.RunConfig(**defaults)

    def test_linear_head_on_per_frame_codes_and_a_per_frame_classifier(self):
        config = self.config(head="linear", engine="litert", precision="fp32")
        results = runner.run(config)
        self.assertEqual(results.metrics["modality"], "pose")
        self.assertGreaterEqual(results.accuracy, 0.75)
        self.assertTrue(results.metrics["classifier"]["per_frame"])
        self.assertNotIn("movement", results.metrics)  # the motion gate is for video
        # The classifier scores one frame; averaging its logits over a sequence gives the runner's prediction.
        model = litert.TFLiteModel(
            os.path.join(config.output_dir, "classifier.tflite"), required=("serving_default",)
        )
        sequence = np.load(os.path.join(self.eval, "raise", "clip0_view0.npy"))
        logits = np.mean(
            [model.run("serving_default", {"keypoints": f[None]})["logits"][0] for f in sequence],
            axis=0,
        )
        self.assertEqual(results.classes[int(np.argmax(logits))], "raise")

    def test_temporal_classifier_ships_one_sequence_model_and_cross_view_reports_each_view(self):
        config = self.config(
            head="finetune",
            engine="litert",
            precision="fp32",
            cross_view=True,
            sequence_length=8,
            epochs=30,
            learning_rate=0.005,
        )
        results = runner.run(config)
        self.assertEqual(results.metrics["classifier"]["input"], {"keypoints": [1, 8, 17, 2]})
        self.assertFalse(results.metrics["classifier"]["per_frame"])
        self.assertEqual(sorted(results.metrics["cross_view"]["per_view"]), ["0", "1"])
        self.assertBetween(results.metrics["cross_view"]["mean"], 0.0, 1.0)
        self.assertEqual(results.cross_view, results.metrics["cross_view"]["mean"])
        self.assertIn("single-shot cross-view mean accuracy", results.summary())
        model = litert.TFLiteModel(
            os.path.join(config.output_dir, "classifier.tflite"), required=("serving_default",)
        )
        sequence = np.load(os.path.join(self.eval, "lower", "clip1_view1.npy"))[:8][None]
        out = model.run("serving_default", {"keypoints": sequence})
        self.assertEqual(out["probabilities"].shape, (1, 2))
        self.assertAllClose(out["probabilities"].sum(), 1.0, atol=1e-5)

    def test_cross_view_needs_views_and_pose(self):
        unnamed = os.path.join(self.get_temp_dir(), "unnamed")
        for action in ("raise", "lower"):
            os.makedirs(os.path.join(unnamed, action))
            for i in range(2):
                np.save(
                    os.path.join(unnamed, action, f"c{i}.npy"), np.zeros((4, 17, 2), np.float32) + i
                )
        with self.assertRaisesRegex(runner.RunnerError, "4 clips have no camera view"):
            runner.run(
                self.config(train_dir=unnamed, eval_dir=None, head="prototype", cross_view=True)
            )

    def test_a_video_folder_for_the_pose_model_says_it_holds_videos(self):
        videos = fixtures.write_video_folder(os.path.join(self.get_temp_dir(), "videos"), 2)
        with self.assertRaisesRegex(
            runner.RunnerError,
            r"no readable pose clip \((\d+) entries skipped, \1 of them video files",
        ):
            runner.run(self.config(train_dir=videos, eval_dir=None, head="prototype"))


if __name__ == "__main__":
    tf.test.main()
