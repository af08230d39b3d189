"""Tests for CV-MIM: three optimizers on three disjoint sets, serialisation, positives, and what a short run learns."""

import math

import numpy as np
import tensorflow as tf

from edge_ssl.configs import cv_mim_tiny
from edge_ssl.data import augment, keypoints, pose, synthetic
from edge_ssl.fewshot import cross_view
from edge_ssl.keras import keras
from edge_ssl.methods import cv_mim
from edge_ssl.models import pose_encoder

STEPS = 300
BATCH = 64


def _relative_azimuth(example) -> np.ndarray:
    """Per frame: the camera's azimuth relative to the way the person's hips face, in radians."""
    p3 = example["pose3d"]
    across = p3[:, keypoints.INDEX["left_hip"]] - p3[:, keypoints.INDEX["right_hip"]]
    facing = np.arctan2(
        across[:, 2], -across[:, 0]
    )  # forward = up x (left - right), in the ground plane
    return example["view"][0] - facing


def _ridge_r2(features, targets, train) -> float:
    """R^2 on held-out rows of a ridge regression fitted on the `train` rows."""
    x = np.concatenate([features, np.ones((len(features), 1))], axis=1)
    w = np.linalg.solve(
        x[train].T @ x[train] + 1e-2 * np.eye(x.shape[1]), x[train].T @ targets[train]
    )
    residual = targets[~train] - x[~train] @ w
    return 1.0 - (residual**2).sum() / ((targets[~train] - targets[~train].mean(0)) ** 2).sum()


class CvMimContractTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        self.method = cv_mim.build(cv_mim_tiny.get_config())
        world = synthetic.get_config("tiny", performances=(4, 1, 1))
        data = synthetic.as_dataset(world, "pretrain")
        self.batch = next(iter(augment.with_seeds(data, 0).map(self.method.prepare).batch(8)))

    def test_three_optimizers_update_three_disjoint_sets(self):
        groups = self.method.variable_groups()
        ids = [{id(v) for v in g} for g in groups.values()]
        self.assertEqual(sum(len(s) for s in ids), len(set().union(*ids)))  # disjoint
        every = {id(v) for m in self.method.encoders.values() for v in m.trainable_variables}
        self.assertEqual(set().union(*ids), every)  # and together cover every trained network
        self.assertEqual(set(groups), set(self.method.optimizers))
        before = {name: [v.numpy().copy() for v in g] for name, g in groups.items()}
        losses = self.method.train_step(self.batch, 8)
        for name, group in groups.items():
            changed = [not np.array_equal(v.numpy(), b) for v, b in zip(group, before[name])]
            self.assertTrue(any(changed), f"the {name} optimizer changed nothing")
        for key in ("infomax", "cross_view", "prior", "disentangle", "estimators", "discriminator"):
            self.assertTrue(np.isfinite(float(losses[key])), key)
        self.assertGreaterEqual(float(losses["disentangle"]), 0.0)  # CLUB is floored at 0

    def test_estimator_and_discriminator_losses_never_move_the_encoder(self):
        # The encoder's loss does reach the estimators and the discriminator (it is measured through them), but only
        # the encoder's optimizer applies it; their own losses see stop-gradient codes and must not reach E or S.
        groups = self.method.variable_groups()
        with tf.GradientTape(persistent=True) as tape:
            losses = self.method.losses(self.batch, 8)
        for name in ("estimators", "discriminator"):
            grads = tape.gradient(losses[name], groups["encoder"])
            self.assertTrue(all(g is None for g in grads), name)
            own = tape.gradient(losses[name], groups[name])
            self.assertTrue(all(g is not None for g in own), name)

    def test_camera_positives_are_the_other_view_of_the_same_frame(self):
        config = cv_mim.CvMimConfig(**{**cv_mim_tiny.get_config().__dict__, "positives": "camera"})
        method = cv_mim.build(config)
        example = next(
            synthetic.generate(synthetic.get_config("tiny", performances=(1, 1, 1)), "pretrain")
        )
        out = method.prepare(
            {k: tf.constant(v) for k, v in example.items()}, tf.constant([3, 4], tf.int64)
        )
        anchors = pose.normalize(example["pose2d"]).numpy()
        t = int(np.argmin(np.abs(anchors - out["anchor"].numpy()).sum(axis=(1, 2))))
        self.assertAllClose(out["anchor"], anchors[t], atol=1e-6)
        self.assertAllClose(out["positive"], pose.normalize(example["pose2d_pair"][t]), atol=1e-6)
        self.assertAllInRange(out["prior_sample"], 0.0, 1.0)

    def test_reprojected_positives_stand_upright_like_their_anchors(self):
        # A re-projection of the y-up world pose must not be upside down (image y grows downward): within the
        # elevation and roll of CV-MIM's random cameras (30 degrees at most) the nose stays above the hips and the
        # ankles below them, as in the anchor.
        config = cv_mim.CvMimConfig(
            **{**cv_mim_tiny.get_config().__dict__, "positives": "reprojection"}
        )
        method = cv_mim.build(config)
        examples = list(
            synthetic.generate(synthetic.get_config("tiny", performances=(2, 0, 0)), "pretrain")
        )
        nose = int(np.flatnonzero(keypoints.CV_MIM_13 == keypoints.INDEX["nose"])[0])
        ankles = [
            int(np.flatnonzero(keypoints.CV_MIM_13 == keypoints.INDEX[name])[0])
            for name in ("left_ankle", "right_ankle")
        ]
        for i in range(20):
            example = {k: tf.constant(v) for k, v in examples[i % len(examples)].items()}
            out = method.prepare(example, tf.constant([i, 7], tf.int64))
            self.assertLess(float(out["anchor"][nose, 1]), 0.0)
            self.assertLess(float(out["positive"][nose, 1]), 0.0)
            self.assertAllGreater(tf.gather(out["positive"][:, 1], ankles), 0.0)

    def test_backbone_is_normalised_z_p_and_round_trips(self):
        x = pose.normalize(np.random.default_rng(0).uniform(0, 50, (3, 17, 2)).astype("float32"))
        emb = self.method.embed(x).numpy()
        self.assertEqual(emb.shape, (3, 32))
        self.assertAllClose(np.linalg.norm(emb, axis=1), np.ones(3), atol=1e-5)
        z_p = self.method.encoder(x, training=False)["embedding"][:, :32]
        self.assertAllClose(emb, tf.math.l2_normalize(z_p, axis=1), atol=1e-6)
        clone = keras.Model.from_config(self.method.backbone.get_config())
        clone.set_weights(self.method.backbone.get_weights())
        self.assertAllClose(clone(x), emb, atol=1e-6)

    def test_paper_encoder_parameter_count_is_pinned(self):
        # 26x1024 fc0, four 1024x1024 layers in two residual blocks, 1024x64 embedder; biases; BN (4 per channel).
        dense = (26 * 1024 + 1024) + 4 * (1024 * 1024 + 1024) + (1024 * 64 + 64)
        bn = 5 * 4 * 1024
        self.assertEqual(pose_encoder.pose_encoder("paper").count_params(), dense + bn)

    def test_config_rejects_bad_values(self):
        with self.assertRaisesRegex(ValueError, "fusion"):
            cv_mim.CvMimConfig(fusion="sum")
        with self.assertRaisesRegex(ValueError, "pose_dim == view_dim"):
            cv_mim.CvMimConfig(pose_dim=16, view_dim=32, fusion="moe")
        with self.assertRaisesRegex(ValueError, "positives"):
            cv_mim.CvMimConfig(positives="random")


class CvMimLearningTest(tf.test.TestCase):
    """A short run on the tiny synthetic world (about 20 s here), then what its embeddings know."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.method = cv_mim.build(cv_mim_tiny.get_config())
        # Cameras all around the person: cross-view learning needs views that differ by more than a frontal arc.
        world = synthetic.get_config("tiny", camera_arc_deg=360.0)
        data = synthetic.as_dataset(world, "pretrain").cache().repeat().shuffle(120, seed=0)
        data = augment.with_seeds(data, 0).map(cls.method.prepare).batch(BATCH, drop_remainder=True)
        step = tf.function(lambda b: cls.method.train_step(b, BATCH))
        for batch in data.take(STEPS):
            step(batch)
        # Seen actions, performances never trained on.
        cls.examples = list(
            synthetic.generate(
                synthetic.get_config("tiny", performances=(1, 80, 1), camera_arc_deg=360.0), "test"
            )
        )

    def _codes(self, poses):
        out = self.method.encoder(pose.normalize(poses), training=False)["embedding"].numpy()
        return out[:, :32], out[:, 32:]

    def test_view_is_predicted_from_z_v_and_not_from_z_p(self):
        poses = np.concatenate([e["pose2d"] for e in self.examples])
        az = np.concatenate([_relative_azimuth(e) for e in self.examples])
        targets = np.stack([np.sin(az), np.cos(az)], axis=1)
        groups = np.concatenate([[e["performance_id"]] * len(e["pose2d"]) for e in self.examples])
        train = groups % 2 == 0
        z_p, z_v = self._codes(poses)
        r2_p, r2_v = _ridge_r2(z_p, targets, train), _ridge_r2(z_v, targets, train)
        # Over seeds 0-3 of this run the gap was 0.18, 0.40, 1.00 and 0.80 (z_v 0.40-0.66): z_v always carries the
        # view and z_p much less of it, by a margin that varies from run to run.
        message = f"azimuth R^2 from z_v {r2_v:.3f}, from z_p {r2_p:.3f}"
        self.assertGreater(r2_v, 0.3, message)
        self.assertGreater(r2_v, r2_p + 0.15, message)

    def test_single_shot_cross_view_beats_raw_keypoints(self):
        # Viewpoints: the camera's quadrant around the person (front, left, back, right). Train on the front view only
        # and test on all the others, once on z_p sequences and once on raw normalised keypoints.
        rel = np.array([_relative_azimuth(e)[0] for e in self.examples])
        views = np.round(np.angle(np.exp(1j * rel)) / (math.pi / 2)).astype(int) % 4
        self.assertGreater((views == 0).sum(), 15)
        labels = np.array([e["label"] for e in self.examples])
        raw = np.stack(
            [
                pose.normalize(e["pose2d"]).numpy().reshape(len(e["pose2d"]), -1)
                for e in self.examples
            ]
        )
        z_p = np.stack(
            [
                tf.math.l2_normalize(self._codes(e["pose2d"])[0], axis=1).numpy()
                for e in self.examples
            ]
        )
        kwargs = dict(num_classes=10, train_views=[0], filters=(32, 64), kernel=3, seed=1)
        raw_accuracy = cross_view.single_shot_cross_view(raw, labels, views, **kwargs)["mean"]
        z_p_accuracy = cross_view.single_shot_cross_view(z_p, labels, views, **kwargs)["mean"]
        self.assertGreater(
            z_p_accuracy, raw_accuracy + 0.1, f"z_p {z_p_accuracy:.3f}, raw {raw_accuracy:.3f}"
        )


if __name__ == "__main__":
    tf.test.main()
