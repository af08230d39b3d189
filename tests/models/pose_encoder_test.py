"""Tests for the pose encoder's device form: the in-graph normalisation is CV-MIM's training normalisation, and the
keypoint model saves and reloads with its `keypoints` signature."""

import numpy as np
import tensorflow as tf

from edge_ssl.configs import cv_mim_tiny
from edge_ssl.data import augment, pose, synthetic
from edge_ssl.keras import keras
from edge_ssl.methods import cv_mim
from edge_ssl.models import pose_encoder


def _poses(count: int = 16, seed: int = 0) -> np.ndarray:
    """COCO-17 poses in pixels from the synthetic world (whole sequences, several cameras)."""
    world = synthetic.get_config("tiny", performances=(2, 1, 1))
    examples = list(synthetic.as_dataset(world, "pretrain").take(3).as_numpy_iterator())
    frames = np.concatenate([e["pose2d"] for e in examples])
    return frames[np.random.default_rng(seed).permutation(len(frames))[:count]]


class PoseNormalizeTest(tf.test.TestCase):

    def test_equals_the_training_normalisation(self):
        rng = np.random.default_rng(0)
        world = _poses()
        # Poses far from the origin and large (a 1920-pixel camera), and a degenerate one (every keypoint on one
        # spot), which both guard against a zero torso with the same epsilon.
        big = world * 40.0 + rng.uniform(0, 1000, size=(len(world), 1, 2))
        degenerate = np.full((1, 17, 2), 123.0)
        for name, keypoints in (("world", world), ("big", big), ("degenerate", degenerate)):
            with self.subTest(name):
                keypoints = keypoints.astype("float32")
                ours = pose_encoder.PoseNormalize()(keypoints).numpy()
                self.assertEqual(ours.shape, (len(keypoints), 13, 2))
                self.assertAllClose(ours, pose.normalize(keypoints).numpy(), atol=2e-6, rtol=1e-5)
        thirteen = pose.select_13(world).numpy()
        self.assertAllClose(
            pose_encoder.PoseNormalize()(thirteen), pose.normalize(thirteen), atol=2e-6
        )

    def test_equals_what_cv_mim_trains_its_anchor_on(self):
        method = cv_mim.build(cv_mim_tiny.get_config())
        world = synthetic.get_config("tiny", performances=(2, 1, 1))
        example = next(iter(augment.with_seeds(synthetic.as_dataset(world, "pretrain"), 0)))
        example, seed = example
        # Every frame the same, so the anchor is that frame whichever one `prepare` draws.
        frame = example["pose2d"][3]
        example = dict(example, pose2d=tf.repeat(frame[None], example["pose2d"].shape[0], axis=0))
        anchor = method.prepare(example, seed)["anchor"]
        self.assertAllClose(pose_encoder.PoseNormalize()(frame[None])[0], anchor, atol=2e-6)

    def test_bad_shapes_and_arguments(self):
        with self.assertRaisesRegex(ValueError, "expected 17 .COCO. or 13"):
            pose_encoder.PoseNormalize()(np.zeros((1, 15, 2), "float32"))
        with self.assertRaisesRegex(ValueError, "must be positive"):
            pose_encoder.PoseNormalize(scale_unit=0.0)


class KeypointEmbeddingModelTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.backbone = pose_encoder.pose_embedding_model(pose_encoder.pose_encoder("tiny", 64), 32)
        cls.model = pose_encoder.keypoint_embedding_model(cls.backbone)
        cls.keypoints = _poses(8)

    def test_raw_keypoints_give_the_backbone_embedding_of_the_normalised_pose(self):
        self.assertEqual(self.model.input_shape, (None, 17, 2))
        self.assertEqual(self.model.input_names, ["keypoints"])
        expected = self.backbone(pose.normalize(self.keypoints), training=False)
        embeddings = self.model(self.keypoints)
        self.assertAllClose(embeddings, expected, atol=1e-6)
        self.assertAllClose(np.linalg.norm(embeddings, axis=-1), np.ones(8), atol=1e-5)

    def test_saved_model_reloads_in_keras_and_serves_keypoints_without_it(self):
        path = self.get_temp_dir() + "/pose"
        pose_encoder.save_keypoint_model(self.model, path)
        reloaded = keras.models.load_model(path)
        self.assertAllClose(reloaded(self.keypoints), self.model(self.keypoints), atol=1e-6)
        serving = tf.saved_model.load(path).signatures["serving_default"]
        self.assertEqual(list(serving.structured_input_signature[1]), ["keypoints"])
        outputs = serving(keypoints=tf.constant(self.keypoints[:5]))
        self.assertAllClose(outputs["embedding"], self.model(self.keypoints[:5]), atol=1e-6)

    def test_a_backbone_that_does_not_take_13_keypoints_is_refused(self):
        inputs = keras.Input((17, 2))
        wrong = keras.Model(inputs, keras.layers.Flatten()(inputs))
        with self.assertRaisesRegex(ValueError, r"must take normalised poses \[B, 13, 2\]"):
            pose_encoder.keypoint_embedding_model(wrong)


if __name__ == "__main__":
    tf.test.main()
