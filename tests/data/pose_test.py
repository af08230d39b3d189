"""Tests for edge_ssl.data.pose: CV-MIM normalisation and random re-projection."""

import math

import numpy as np
import tensorflow as tf

from edge_ssl.data import keypoints, pose, synthetic

_NOSE = int(np.flatnonzero(keypoints.CV_MIM_13 == keypoints.INDEX["nose"])[0])
_ANKLES = [
    int(np.flatnonzero(keypoints.CV_MIM_13 == keypoints.INDEX[name])[0])
    for name in ("left_ankle", "right_ankle")
]


def _pose2d(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(50, 200, size=(3, 17, 2)).astype(np.float32)


def _flat_pose3d(pose2d: np.ndarray) -> np.ndarray:
    """The y-up world pose (z = 0) whose front view is the pixel pose `pose2d` (y down)."""
    x, y = pose2d[..., :1], pose2d[..., 1:]
    return np.concatenate([x, -y, np.zeros_like(x)], axis=-1)


def _world_examples() -> list[dict[str, np.ndarray]]:
    return list(
        synthetic.generate(synthetic.get_config("tiny", performances=(2, 0, 0)), "pretrain")
    )


def _rotation_only_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The rotation (no reflection) that best maps 2D points x [N, 2] onto y [N, 2]: its angle in degrees and the
    RMS distance left."""
    u, _, vt = np.linalg.svd(x.T @ y)
    r = u @ np.diag([1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    rms = float(np.sqrt(np.mean(np.sum(np.square(x @ r - y), axis=-1))))
    return math.degrees(math.atan2(r[0, 1], r[0, 0])), rms


def _torso_max(p: np.ndarray) -> np.ndarray:
    sub = [
        int(np.flatnonzero(keypoints.CV_MIM_13 == k)[0])
        for pair in keypoints.TORSO_PAIRS
        for k in pair
    ]
    pairs = np.array(sub).reshape(-1, 2)
    return np.linalg.norm(p[..., pairs[:, 0], :] - p[..., pairs[:, 1], :], axis=-1).max(-1)


class PoseTest(tf.test.TestCase):

    def test_normalize_centres_on_hips_and_scales_torso_to_half(self):
        out = pose.normalize(_pose2d()).numpy()
        self.assertEqual(out.shape, (3, 13, 2))
        hips = out[:, [7, 8]].mean(axis=1)
        self.assertAllClose(hips, np.zeros((3, 2)), atol=1e-5)
        self.assertAllClose(_torso_max(out), [0.5, 0.5, 0.5])

    def test_normalize_ignores_translation_and_scale_and_keeps_the_subset(self):
        p = _pose2d(1)
        self.assertAllClose(pose.normalize(p), pose.normalize(p * 3.0 + 17.0), atol=1e-5)
        self.assertAllClose(pose.normalize(p), pose.normalize(p[:, keypoints.CV_MIM_13]), atol=1e-6)
        with self.assertRaisesRegex(ValueError, "17 .* or 13"):
            pose.normalize(p[:, :10])

    def test_degenerate_pose_does_not_divide_by_zero(self):
        out = pose.normalize(np.ones((17, 2), np.float32)).numpy()
        self.assertTrue(np.all(np.isfinite(out)))

    def test_rotation_matrices_are_orthonormal(self):
        r = pose.rotation_matrix(
            tf.constant([0.3, -2.0]), tf.constant([0.2, 0.5]), tf.constant([-0.1, 0.4])
        )
        eye = tf.linalg.matmul(r, r, transpose_b=True)
        self.assertAllClose(eye, np.stack([np.eye(3)] * 2), atol=1e-5)
        self.assertAllClose(tf.linalg.det(r), [1.0, 1.0], atol=1e-5)

    def test_front_view_of_a_flat_pose_is_its_normalised_2d_pose(self):
        p2 = _pose2d(2)[0]
        front = pose.rotation_matrix(0.0, 0.0, 0.0)
        self.assertAllClose(pose.project(_flat_pose3d(p2), front), pose.normalize(p2), atol=1e-5)

    def test_half_turn_mirrors_a_flat_pose(self):
        p2 = _pose2d(3)[0]
        back = pose.project(_flat_pose3d(p2), pose.rotation_matrix(math.pi, 0.0, 0.0)).numpy()
        front = pose.normalize(p2).numpy()
        self.assertAllClose(back, front * [-1.0, 1.0], atol=1e-4)

    def test_level_reprojection_of_a_world_pose_stands_upright(self):
        # World poses are y up, images y down: from any azimuth, a level, unrolled camera sees the nose above the
        # hips (negative y, as in the pose's own normalised pose2d) and the ankles below them.
        for example in _world_examples():
            anchor = pose.normalize(example["pose2d"]).numpy()
            for azimuth in np.linspace(-math.pi, math.pi, 7):
                level = pose.rotation_matrix(azimuth, 0.0, 0.0)
                view = pose.project(example["pose3d"], level).numpy()  # [T, 13, 2]
                self.assertAllLess(view[:, _NOSE, 1], 0.0)
                self.assertAllGreater(view[:, _ANKLES, 1], 0.0)
                self.assertAllEqual(np.sign(view[:, _NOSE, 1]), np.sign(anchor[:, _NOSE, 1]))

    def test_reprojection_by_the_world_camera_matches_its_pose2d_up_to_perspective(self):
        # The same camera in pose's pinhole model: only the perspective differs (the world's camera stands 3.5-6 m
        # away and aims near the torso, the re-projection at 2 torso units from the hips), so the best rotation
        # (reflections excluded) is close to none and leaves little; an upside-down re-projection needs a
        # reflection, which this fit cannot make.
        for example in _world_examples():
            azimuth, elevation, roll = example["view"][:3]
            rotation = pose.rotation_matrix(azimuth, elevation, roll)
            view = pose.project(example["pose3d"], rotation).numpy()
            anchor = pose.normalize(example["pose2d"]).numpy()
            for t in range(len(view)):
                angle, rms = _rotation_only_fit(view[t], anchor[t])
                self.assertLess(abs(angle), 2.0)
                self.assertLess(rms, 0.08)  # the torso's largest distance is 0.5

    def test_random_reprojection_is_seeded_and_normalised(self):
        p3 = np.random.default_rng(4).normal(size=(5, 17, 3)).astype(np.float32)
        a = pose.random_reprojection(p3, tf.constant([1, 2])).numpy()
        b = pose.random_reprojection(p3, tf.constant([1, 2])).numpy()
        c = pose.random_reprojection(p3, tf.constant([3, 4])).numpy()
        self.assertEqual(a.shape, (5, 13, 2))
        self.assertAllEqual(a, b)
        self.assertNotAllClose(a, c)
        self.assertAllClose(_torso_max(a), np.full(5, 0.5), atol=1e-5)
        mapped = tf.data.Dataset.from_tensors(p3).map(
            lambda x: pose.random_reprojection(x, tf.constant([1, 2]))
        )
        self.assertAllClose(next(iter(mapped)), a, atol=1e-6)


if __name__ == "__main__":
    tf.test.main()
