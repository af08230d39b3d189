"""Pose preprocessing for CV-MIM: the 13-keypoint subset, normalisation, and random camera re-projection.

Zhao et al., "Learning View-Disentangled Human Pose Representation by Contrastive Cross-View Mutual Information
Maximization", CVPR 2021. A 2D pose is reduced to 13 COCO keypoints (no eyes or ears), centred on the mid-hip and
scaled so that the largest of the six torso distances is `scale_unit` (0.5). New views come from the 3D pose: rotate it
by a random camera (azimuth U(-pi, pi), elevation and roll U(-pi/6, pi/6)), place it at depth 1/scale_unit, and
project it with a pinhole camera.

Conventions: 3D poses are world coordinates with y up (the synthetic world's `pose3d`); 2D poses are image
coordinates with y down (pixels, as every `pose2d`). A camera's rotation maps the world onto its (right, down,
forward) axes, as the synthetic world's cameras do, so a re-projected pose stands the same way up as a real one.
"""

import math

import numpy as np
import tensorflow as tf

from edge_ssl.data import keypoints

SCALE_UNIT = 0.5
_SUBSET = [int(i) for i in keypoints.CV_MIM_13]
_POS13 = {int(k): i for i, k in enumerate(_SUBSET)}
_LEFT_HIP = _POS13[keypoints.INDEX["left_hip"]]
_RIGHT_HIP = _POS13[keypoints.INDEX["right_hip"]]
_TORSO_PAIRS_13 = np.array([(_POS13[a], _POS13[b]) for a, b in keypoints.TORSO_PAIRS], np.int32)


def select_13(pose: tf.Tensor) -> tf.Tensor:
    """[..., 17, C] COCO-17 keypoints -> [..., 13, C] CV-MIM subset; a 13-keypoint pose is returned as is."""
    pose = tf.convert_to_tensor(pose)
    count = pose.shape[-2]
    if count == 13:
        return pose
    if count != keypoints.NUM_KEYPOINTS:
        raise ValueError(f"expected 17 (COCO) or 13 (CV-MIM) keypoints, got shape {pose.shape}")
    return tf.gather(pose, _SUBSET, axis=-2)


def normalize(pose: tf.Tensor, scale_unit: float = SCALE_UNIT, epsilon: float = 1e-6) -> tf.Tensor:
    """CV-MIM normalisation of 2D or 3D keypoints.

    `p' = (p - hip_centre) / max_torso_distance * scale_unit`, where hip_centre is the mean of the two hips and the
    torso distances are the six between shoulders and hips (Ls-Rs, Ls-Lh, Ls-Rh, Rs-Lh, Rs-Rh, Lh-Rh).

    Args:
      pose: float [..., 17 or 13, C] (C = 2 or 3), COCO order.
      scale_unit: what the largest torso distance becomes.
      epsilon: guards a degenerate pose (every torso keypoint on one spot) from dividing by zero.

    Returns:
      float32 [..., 13, C].
    """
    pose = tf.cast(select_13(pose), tf.float32)
    centre = 0.5 * (
        pose[..., _LEFT_HIP : _LEFT_HIP + 1, :] + pose[..., _RIGHT_HIP : _RIGHT_HIP + 1, :]
    )
    centred = pose - centre
    a = tf.gather(centred, _TORSO_PAIRS_13[:, 0], axis=-2)
    b = tf.gather(centred, _TORSO_PAIRS_13[:, 1], axis=-2)
    largest = tf.reduce_max(tf.norm(a - b, axis=-1), axis=-1)[..., None, None]
    return centred / tf.maximum(largest, epsilon) * scale_unit


def rotation_matrix(azimuth: tf.Tensor, elevation: tf.Tensor, roll: tf.Tensor) -> tf.Tensor:
    """World-to-camera rotation [..., 3, 3] of a camera looking at the origin of a y-up world.

    The camera sits in the direction (cos(el) sin(az), sin(el), cos(el) cos(az)) from the origin (azimuth about the
    vertical axis; positive elevation looks down on the person), is rolled by `roll` about its optical axis, and its
    rows are its (right, down, forward) axes in world coordinates: the synthetic world's camera for the same angles
    (`synthetic.VIEW_FIELDS`). With elevation and roll zero, world up is image up (smaller image y).
    """
    azimuth, elevation, roll = (tf.cast(v, tf.float32) for v in (azimuth, elevation, roll))
    zero = tf.zeros_like(azimuth)
    ca, sa = tf.cos(azimuth), tf.sin(azimuth)
    ce, se = tf.cos(elevation), tf.sin(elevation)
    cr, sr = tf.cos(roll), tf.sin(roll)
    # Unrolled axes: forward points from the camera to the origin, right is horizontal, down = forward x right.
    right = tf.stack([ca, zero, -sa], axis=-1)
    down = tf.stack([se * sa, -ce, se * ca], axis=-1)
    forward = tf.stack([-ce * sa, -se, -ce * ca], axis=-1)
    rolled_right = cr[..., None] * right + sr[..., None] * down
    rolled_down = -sr[..., None] * right + cr[..., None] * down
    return tf.stack([rolled_right, rolled_down, forward], axis=-2)


def project(pose3d: tf.Tensor, rotation: tf.Tensor, scale_unit: float = SCALE_UNIT) -> tf.Tensor:
    """Turns a 3D pose into camera axes by `rotation`, places it at depth 1/scale_unit and projects it (pinhole,
    focal 1).

    Args:
      pose3d: float [..., 17 or 13, 3] world keypoints, y up (the synthetic world's `pose3d`).
      rotation: float [..., 3, 3] world-to-camera rotation, rows (right, down, forward) (`rotation_matrix`).
      scale_unit: as in `normalize`; the 3D pose is normalised first, so depth 1/scale_unit keeps it in front.

    Returns:
      float32 [..., 13, 2], CV-MIM-normalised 2D keypoints of the new view, y down like `normalize(pose2d)`.
    """
    body = normalize(pose3d, scale_unit)  # [..., 13, 3], centred, torso <= scale_unit
    camera = tf.linalg.matmul(body, rotation, transpose_b=True)
    depth = camera[..., 2:3] + 1.0 / scale_unit
    return normalize(camera[..., :2] / depth, scale_unit)


def random_reprojection(
    pose3d: tf.Tensor,
    seed: tf.Tensor,
    max_elevation: float = math.pi / 6,
    max_roll: float = math.pi / 6,
    scale_unit: float = SCALE_UNIT,
) -> tf.Tensor:
    """A random new view of the y-up world pose `pose3d` ([..., 17, 3] or [..., 13, 3]) as normalised 2D keypoints
    [..., 13, 2], y down.

    One camera is drawn per pose (per leading index), as CV-MIM's `2D_INPUT_AND_3D_PROJECTION` input does.
    """
    pose3d = tf.convert_to_tensor(pose3d, tf.float32)
    batch = tf.shape(pose3d)[:-2]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    azimuth = tf.random.stateless_uniform(batch, seeds[0], -math.pi, math.pi)
    elevation = tf.random.stateless_uniform(batch, seeds[1], -max_elevation, max_elevation)
    roll = tf.random.stateless_uniform(batch, seeds[2], -max_roll, max_roll)
    return project(pose3d, rotation_matrix(azimuth, elevation, roll), scale_unit)
