"""The skeleton every data module agrees on: COCO-17 keypoints, limbs, left/right swaps, the CV-MIM subset.

Pose arrays are [..., 17, C] in this order (C = 2 for image x, y in pixels, 3 for world x, y, z or x, y, confidence).
"""

import numpy as np

COCO17 = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS = len(COCO17)
INDEX = {name: i for i, name in enumerate(COCO17)}


def _mirror(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[len("left_") :]
    if name.startswith("right_"):
        return "left_" + name[len("right_") :]
    return name


# keypoints[..., FLIP_PERMUTATION, :] relabels a horizontally mirrored pose: the person's left becomes their right.
FLIP_PERMUTATION = np.array([INDEX[_mirror(n)] for n in COCO17], dtype=np.int32)

# CV-MIM's 13-keypoint profile (2DSTD13): nose, shoulders, elbows, wrists, hips, knees, ankles (no eyes or ears).
CV_MIM_13 = np.array(
    [INDEX[n] for n in COCO17 if n == "nose" or not n.endswith(("_eye", "_ear"))], dtype=np.int32
)

# Body segments whose movement the synthetic world reports as body signals (`signals`: angular speed,
# `moved`: movement flags), the stand-in for the Muscles paper's limb-worn IMUs. (name, from keypoint, to keypoint).
LIMBS = (
    ("left_upper_arm", "left_shoulder", "left_elbow"),
    ("right_upper_arm", "right_shoulder", "right_elbow"),
    ("left_forearm", "left_elbow", "left_wrist"),
    ("right_forearm", "right_elbow", "right_wrist"),
    ("left_thigh", "left_hip", "left_knee"),
    ("right_thigh", "right_hip", "right_knee"),
    ("left_shin", "left_knee", "left_ankle"),
    ("right_shin", "right_knee", "right_ankle"),
)
NUM_LIMBS = len(LIMBS)
LIMB_NAMES = tuple(limb[0] for limb in LIMBS)
LIMB_ENDPOINTS = np.array([(INDEX[a], INDEX[b]) for _, a, b in LIMBS], dtype=np.int32)
# signals[..., LIMB_FLIP_PERMUTATION] (and moved[...]) relabel the limbs of a mirrored clip.
LIMB_FLIP_PERMUTATION = np.array([LIMB_NAMES.index(_mirror(n)) for n in LIMB_NAMES], dtype=np.int32)

# The torso pairs CV-MIM normalises by.
TORSO_PAIRS = tuple(
    (INDEX[a], INDEX[b])
    for a, b in (
        ("left_shoulder", "right_shoulder"),
        ("left_shoulder", "left_hip"),
        ("left_shoulder", "right_hip"),
        ("right_shoulder", "left_hip"),
        ("right_shoulder", "right_hip"),
        ("left_hip", "right_hip"),
    )
)
