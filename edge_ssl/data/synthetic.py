"""The synthetic world: clothed people acting in rooms before cameras, with every modality from one source.

One seeded generator produces, for each *performance* (one person doing one action), a 3D pose sequence from a small
forward-kinematics skeleton, several perspective cameras in a frontal arc, and for each camera an example: the RGB
render, the 2D keypoints in that camera, the same frames seen from another camera (CV-MIM's cross-view positive),
limb angular speeds and movement flags (the stand-in for the Muscles paper's limb IMUs), a gaze-like 2D target, and
the label. It is built to behave like real footage where it matters for learning:

* The person is visible and recognisable: filled capsules along the bones (sleeves, trousers, shoes, hands, neck),
  a filled trunk, two-tone shading, hair on the back of the head (so front and back, and left and right, can be told
  apart), clothing luminance at least MIN_CONTRAST from the background behind it, standing 65-85% of the frame high.
* Nuisance cannot be memorised: clothing, body proportions and style are drawn per performance independently of the
  action; backgrounds come from a pool of rooms shared by every action and split (`clutter`, flat to textures);
  lighting (gain, colour cast, brightness ramp, flicker), sensor noise and camera drift vary per clip.
* Actions are defined by pose and motion; two pairs differ only in time order (TIME_REVERSED), so motion is needed.
  benchmarks/learnability.py measures what a network can learn from it.

Example keys (numpy, one dict per (performance, camera)); T frames of H x W pixels:

* `rgb` uint8 [T, H, W, 3] (`to_contract` / `as_dataset` give float32 in [0, 1], DESIGN.md's contract).
* `pose2d` float32 [T, 17, 2]: COCO-17 keypoints in pixels (x, y) of this camera, camera shake included, so they sit
  on the rendered limbs. `pose2d == project(pose3d, view, shake)`.
* `pose3d` float32 [T, 17, 3]: world coordinates in metres; y is up, the ground is y = 0.
* `view` float32 [len(VIEW_FIELDS)]: this camera's parameters, fields in `VIEW_FIELDS`.
* `shake` float32 [T, 2]: per-frame camera-shake offset in pixels (x, y), added to the projection: a smooth drift from
  (0, 0) at frame 0 (`camera_shake`).
* `pose2d_pair`, `view_pair`: the same frames seen from another camera of the same performance (no shake, no render):
  `pose2d_pair == project(pose3d, view_pair)`.
* `signals` float32 [T, NUM_LIMBS]: angular speed of each limb of `keypoints.LIMBS` in rad/frame (frame 0 is 0).
* `moved` int32 [T, NUM_LIMBS]: 1 moving (speed above the upper threshold), 0 still (below the lower one), -1 ambiguous
  (between them, and at frame 0 where no speed is measured): the Muscles paper's two-threshold rule.
* `gaze` float32 [T, 2]: where the person looks, as (x / W, y / H) in this camera, [-1, -1] where that point is outside
  the image or behind the camera. The person looks at their moving hand(s) when the hands move, else straight ahead.
* `label` int32 (index into `ACTIONS`), `performance_id` int32, `camera_id` int32 (index among the performance's
  cameras), `room_id` int32 (the room of the shared pool, -1 at other clutter levels).
* `mask` uint8 [T, H, W, 1], only with `generate(..., mask=True)`: 1 on the person's pixels.

Splits: `pretrain` and `test` hold `SEEN_ACTIONS` only, `heldout` holds `HELDOUT_ACTIONS` only, so few-shot
evaluation on `heldout` uses classes pretraining never saw. The world is y-up, right-handed, metres; time is seconds,
sampled at the size's `fps`, and every size covers the same clip duration.
"""

import dataclasses
import functools
import math
from collections.abc import Iterable, Iterator, Mapping

import cv2
import numpy as np

from edge_ssl.data import keypoints

# Actions differ by pose and motion. Held-out ones come last, so seen labels are 0..len(SEEN_ACTIONS)-1. Two pairs
# differ only in time order (squat_down / stand_up, raise_arms / lower_arms): one plays the other backwards, so a
# single frame cannot tell them apart and motion is needed.
SEEN_ACTIONS = (
    "wave_left",
    "wave_right",
    "clap",
    "jumping_jack",
    "squat_down",
    "stand_up",
    "kick_left",
    "kick_right",
    "punch",
    "march",
)
HELDOUT_ACTIONS = ("arm_circles", "side_step", "jump", "raise_arms", "lower_arms")
ACTIONS = SEEN_ACTIONS + HELDOUT_ACTIONS
NUM_ACTIONS = len(ACTIONS)
# The pairs in which one action is the other played backwards (the second is rendered as the first reversed).
TIME_REVERSED = (("squat_down", "stand_up"), ("raise_arms", "lower_arms"))

# ACTION_FLIP[label] is the label of the horizontally mirrored clip: the person's left becomes their right, so
# wave_left <-> wave_right and kick_left <-> kick_right; every other action is its own mirror image. Use it wherever
# a flip meets labels (augmentation, supervised benchmarks).
_MIRRORED = {"wave_left": "wave_right", "kick_left": "kick_right"}
_MIRRORED.update({v: k for k, v in _MIRRORED.items()})
ACTION_FLIP = np.array([ACTIONS.index(_MIRRORED.get(a, a)) for a in ACTIONS], dtype=np.int32)

SPLITS = ("pretrain", "test", "heldout")
# The world a run of each config preset trains on (method presets: tiny, small, paper; students: tiny, small, base).
CONFIG_WORLDS = {"tiny": "tiny", "small": "small", "paper": "base", "base": "base"}
_SPLIT_ACTIONS = {"pretrain": SEEN_ACTIONS, "test": SEEN_ACTIONS, "heldout": HELDOUT_ACTIONS}

# `view` fields: angles in radians, distance and target in metres (world), focal and principal point in pixels.
# The camera sits at target + distance * (cos(el) sin(az), sin(el), cos(el) cos(az)), looks at `target`, and is rolled
# by `roll` about its optical axis; positive elevation looks down on the person.
VIEW_FIELDS = (
    "azimuth",
    "elevation",
    "roll",
    "distance",
    "focal",
    "cx",
    "cy",
    "target_x",
    "target_y",
    "target_z",
)
NUM_VIEW_FIELDS = len(VIEW_FIELDS)

# Background settings of `WorldConfig.clutter`: flat, shared room pool (default), unique rooms, textures.
CLUTTER_LEVELS = (0, 1, 2, 3)

# One table of sizes, decoded only by `get_config`. Every size spans CLIP_SECONDS of motion.
CLIP_SECONDS = 2.0
SIZES = {
    "tiny": dict(num_frames=8, height=32, width=32, num_cameras=3, performances=(40, 20, 20)),
    # Thousands of performances, so that memorising performers is harder than learning actions.
    "small": dict(
        num_frames=16, height=112, width=112, num_cameras=3, performances=(2000, 200, 200)
    ),
    "base": dict(
        num_frames=32, height=224, width=224, num_cameras=4, performances=(2000, 400, 400)
    ),
}


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """What the world generates; build one with `get_config(name, **overrides)`.

    Attributes:
      name: size name, for bookkeeping.
      num_frames: frames per clip (T).
      height: image height in pixels (H).
      width: image width in pixels (W).
      num_cameras: cameras per performance; each renders one example, and another one is its `view_pair`.
      performances: number of performances in the (pretrain, test, heldout) splits.
      moved_min_deg_per_s: limb angular speeds below this are `moved == 0` (still).
      moved_max_deg_per_s: limb angular speeds above this are `moved == 1` (moving); in between is -1.
      clutter: the background. 0 a flat colour per performance; 1 (default) a room from a fixed pool of `rooms`
        scenes shared by every action and split (wall and floor meeting behind the person, furniture blocks,
        low-amplitude wallpaper, slightly blurred), so a background says nothing about the action or the performer;
        2 a room of the same kind drawn anew for every performance; 3 high-contrast textures (noise, stripes,
        checkers) drawn anew for every clip, the world's first renderer's backgrounds.
      rooms: scenes in the shared pool of `clutter` 1.
      camera_arc_deg: the cameras of a performance sit within this arc of azimuths centred on the direction the
        person faces (120: a frontal arc of +-60 degrees, so front and back, and so left and right, are visible;
        360: all around the person, for cross-view pose work that wants the widest views).
    """

    name: str = "custom"
    num_frames: int = 8
    height: int = 32
    width: int = 32
    num_cameras: int = 3
    performances: tuple[int, int, int] = (40, 20, 20)
    moved_min_deg_per_s: float = 15.0
    moved_max_deg_per_s: float = 40.0
    clutter: int = 1
    rooms: int = 32
    camera_arc_deg: float = 120.0

    def __post_init__(self):
        if not isinstance(self.num_frames, int) or self.num_frames < 2:
            raise ValueError(
                f"num_frames must be an int >= 2 (speeds need two frames), got {self.num_frames!r}"
            )
        for field in ("height", "width"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 16:
                raise ValueError(f"{field} must be an int >= 16 pixels, got {value!r}")
        if not isinstance(self.num_cameras, int) or self.num_cameras < 2:
            raise ValueError(
                f"num_cameras must be an int >= 2 (each example needs a second view), got "
                f"{self.num_cameras!r}"
            )
        perf = tuple(self.performances)
        if len(perf) != len(SPLITS) or any(not isinstance(n, int) or n < 0 for n in perf):
            raise ValueError(
                f"performances must be {len(SPLITS)} ints >= 0 for {SPLITS}, got {self.performances!r}"
            )
        object.__setattr__(self, "performances", perf)
        if not 0 <= self.moved_min_deg_per_s < self.moved_max_deg_per_s:
            raise ValueError(
                "need 0 <= moved_min_deg_per_s < moved_max_deg_per_s, got "
                f"{self.moved_min_deg_per_s} and {self.moved_max_deg_per_s}"
            )
        if self.clutter not in CLUTTER_LEVELS:
            raise ValueError(f"clutter must be one of {CLUTTER_LEVELS}, got {self.clutter!r}")
        if not isinstance(self.rooms, int) or self.rooms < 1:
            raise ValueError(f"rooms must be an int >= 1, got {self.rooms!r}")
        if not 0.0 < self.camera_arc_deg <= 360.0:
            raise ValueError(f"camera_arc_deg must be in (0, 360], got {self.camera_arc_deg!r}")

    @property
    def fps(self) -> float:
        """Frames per second: every size covers CLIP_SECONDS, so motion speeds agree across sizes."""
        return self.num_frames / CLIP_SECONDS

    @property
    def moved_thresholds(self) -> tuple[float, float]:
        """(still below, moving above) limb angular speed in rad/frame, the units of `signals`."""
        per_frame = math.pi / 180.0 / self.fps
        return self.moved_min_deg_per_s * per_frame, self.moved_max_deg_per_s * per_frame

    def num_performances(self, split: str) -> int:
        """Performances in `split`; each gives `num_cameras` examples."""
        return self.performances[_split_index(split)]


def get_config(name: str, **overrides) -> WorldConfig:
    """The world config for a size name of `SIZES`, with optional field overrides.

    Args:
      name: "tiny", "small" or "base".
      **overrides: WorldConfig fields to replace, e.g. `performances=(4, 2, 2)`.

    Returns:
      A validated WorldConfig.

    Raises:
      ValueError: on an unknown size name, an unknown field, or an invalid value.
    """
    if name not in SIZES:
        raise ValueError(f"unknown synthetic world size {name!r}; known sizes: {sorted(SIZES)}")
    fields = {f.name for f in dataclasses.fields(WorldConfig)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown WorldConfig fields {sorted(unknown)}; known: {sorted(fields)}")
    return WorldConfig(**{"name": name, **SIZES[name], **overrides})


def split_actions(split: str) -> tuple[str, ...]:
    """The actions of `split`: SEEN_ACTIONS for pretrain and test, HELDOUT_ACTIONS for heldout."""
    _split_index(split)
    return _SPLIT_ACTIONS[split]


def _split_index(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {SPLITS}")
    return SPLITS.index(split)


# ----------------------------------------------------------------------------------------------------------------
# Body: proportions, actions as joint-angle curves, forward kinematics.

# Segment lengths and the widths of the rendered body in metres, for a person of scale 1 (about 1.78 m tall).
_BODY = dict(
    foot=0.06,
    shin=0.44,
    thigh=0.45,
    hip_half=0.11,
    spine=0.55,
    shoulder_half=0.19,
    upper_arm=0.30,
    forearm=0.27,
    head_radius=0.11,
    # Widths (diameters) of the filled capsules the renderer draws along the bones.
    upper_arm_width=0.13,
    forearm_width=0.1,
    thigh_width=0.2,
    shin_width=0.14,
    neck_width=0.10,
    trunk_round=0.2,
    hand_radius=0.05,
    shoe_length=0.2,
    shoe_width=0.1,
)
STANDING_HEIGHT = 1.78  # metres, feet to the top of the head at scale 1

_ANGLE_KEYS = (
    "l_arm_el",
    "l_arm_az",
    "l_fore_el",
    "l_fore_az",
    "r_arm_el",
    "r_arm_az",
    "r_fore_el",
    "r_fore_az",
    "l_hip_flex",
    "l_hip_abd",
    "l_knee",
    "r_hip_flex",
    "r_hip_abd",
    "r_knee",
    "pitch",
    "twist",
)
_REST = dict(
    l_arm_el=-80.0,
    l_arm_az=0.0,
    l_fore_el=-75.0,
    l_fore_az=30.0,
    l_hip_abd=4.0,
    pitch=0.0,
    twist=0.0,
    l_hip_flex=0.0,
    l_knee=3.0,
)
for _key in list(_REST):
    if _key.startswith("l_"):
        _REST["r_" + _key[2:]] = _REST[_key]


def _both(pose: dict, key: str, left: np.ndarray, right: np.ndarray | None = None) -> None:
    pose["l_" + key] = left
    pose["r_" + key] = left if right is None else right


def _wave(pose, th, a, side):
    pose[f"{side}_arm_el"] = 35.0 + 10.0 * a * np.sin(th)
    pose[f"{side}_arm_az"] = np.full_like(th, 10.0)
    # The forearm swings in the frontal plane about the raised elbow, from out sideways to over the head.
    pose[f"{side}_fore_el"] = 50.0 + 55.0 * a * np.sin(th)
    pose[f"{side}_fore_az"] = np.full_like(th, 10.0)


def _guard(pose, th):
    for side in "lr":
        pose[f"{side}_arm_el"] = np.full_like(th, -50.0)
        pose[f"{side}_arm_az"] = np.full_like(th, 60.0)
        pose[f"{side}_fore_el"] = np.full_like(th, 40.0)
        pose[f"{side}_fore_az"] = np.full_like(th, 85.0)


def _kick(pose, th, a, side):
    h = 0.5 - 0.5 * np.cos(th)
    _guard(pose, th)
    pose[f"{side}_hip_flex"] = 80.0 * a * h
    pose[f"{side}_knee"] = 3.0 + 70.0 * 4.0 * h * (
        1.0 - h
    )  # chambered mid-swing, straight at the top
    pose["pitch"] = -8.0 * a * h


def _squat(pose, p, a):
    """Crouched by `p` (0 standing, 1 deep), arms reaching forward for balance."""
    _both(pose, "hip_flex", np.minimum(100.0 * a * p, 110.0))
    _both(pose, "knee", np.minimum(3.0 + 120.0 * a * p, 130.0))
    pose["pitch"] = 35.0 * a * p
    _both(pose, "arm_el", -85.0 + 80.0 * a * p)
    _both(pose, "fore_el", -80.0 + 80.0 * a * p)
    _both(pose, "arm_az", np.full_like(p, 85.0))
    _both(pose, "fore_az", np.full_like(p, 85.0))


def _raised(pose, p, a):
    """Both arms raised forwards by `p` (0 hanging, 1 overhead)."""
    el = np.minimum(-85.0 + 170.0 * min(a, 1.0) * p, 88.0)
    _both(pose, "arm_el", el)
    _both(pose, "fore_el", el)
    _both(pose, "arm_az", np.full_like(p, 88.0))
    _both(pose, "fore_az", np.full_like(p, 88.0))


def _action_angles(
    action: str, th: np.ndarray, a: float, ramp: np.ndarray
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Joint-angle curves (degrees), sideways shift and lift (metres) of `action`.

    Args:
      action: a name of ACTIONS.
      th: [T] phases (radians) of the cyclic actions.
      a: amplitude, the performer's style.
      ramp: [T] progress of the one-way actions (squat_down, raise_arms), rising from 0 to 1 within the clip; the
        second action of each TIME_REVERSED pair is the first one's curves played backwards.
    """
    for first, second in TIME_REVERSED:
        if action == second:
            pose, dx, dy = _action_angles(first, th, a, ramp)
            return {k: v[::-1].copy() for k, v in pose.items()}, dx[::-1].copy(), dy[::-1].copy()
    s, c = np.sin(th), np.cos(th)
    h = 0.5 - 0.5 * c  # 0 -> 1 -> 0 over a cycle
    up, down = np.maximum(s, 0.0), np.maximum(-s, 0.0)
    pose = {k: np.full_like(th, _REST[k]) for k in _ANGLE_KEYS}
    dx, dy = np.zeros_like(th), np.zeros_like(th)
    if action == "wave_left":
        _wave(pose, th, a, "l")
    elif action == "wave_right":
        _wave(pose, th, a, "r")
    elif action == "clap":
        _both(pose, "arm_el", np.full_like(th, 0.0))
        _both(pose, "arm_az", 30.0 + 60.0 * a * h)
        _both(pose, "fore_el", np.full_like(th, 5.0))
        _both(pose, "fore_az", 40.0 + 60.0 * a * h)
    elif action == "jumping_jack":
        el = np.minimum(-80.0 + 150.0 * a * h, 85.0)
        _both(pose, "arm_el", el)
        _both(pose, "fore_el", np.minimum(el + 5.0, 88.0))
        _both(pose, "arm_az", np.full_like(th, 0.0))
        _both(pose, "fore_az", np.full_like(th, 0.0))
        _both(pose, "hip_abd", 4.0 + 18.0 * a * h)
        dy = 0.06 * a * np.abs(s)
    elif action == "squat_down":
        _squat(pose, ramp, a)
    elif action == "kick_left":
        _kick(pose, th, a, "l")
    elif action == "kick_right":
        _kick(pose, th, a, "r")
    elif action == "punch":
        _guard(pose, th)
        for side, e in (("l", np.minimum(a * up, 1.0)), ("r", np.minimum(a * down, 1.0))):
            pose[f"{side}_arm_el"] = -50.0 + 50.0 * e
            pose[f"{side}_arm_az"] = 60.0 + 30.0 * e
            pose[f"{side}_fore_el"] = 40.0 - 40.0 * e
            pose[f"{side}_fore_az"] = 85.0 + 5.0 * e
        pose["twist"] = 15.0 * a * (down - up)
    elif action == "march":
        for side, lift, swing in (("l", up, -s), ("r", down, s)):
            pose[f"{side}_hip_flex"] = 70.0 * a * lift
            pose[f"{side}_knee"] = 3.0 + 90.0 * a * lift
            # Each arm swings with the opposite leg.
            pose[f"{side}_arm_el"] = -90.0 + 45.0 * a * swing
            pose[f"{side}_fore_el"] = -80.0 + 55.0 * a * swing
            pose[f"{side}_arm_az"] = np.full_like(th, 90.0)
            pose[f"{side}_fore_az"] = np.full_like(th, 90.0)
    elif action == "arm_circles":
        _both(pose, "arm_el", 35.0 * a * c)
        _both(pose, "fore_el", 38.0 * a * c)
        _both(pose, "arm_az", 35.0 * a * s)
        _both(pose, "fore_az", 38.0 * a * s)
    elif action == "side_step":
        dx = 0.3 * a * s
        # The leading leg opens in the direction of travel.
        _both(
            pose,
            "hip_abd",
            4.0 + 20.0 * a * np.maximum(c, 0.0),
            4.0 + 20.0 * a * np.maximum(-c, 0.0),
        )
        _both(pose, "knee", np.full_like(th, 10.0))
    elif action == "raise_arms":
        _raised(pose, ramp, a)
    elif action == "jump":
        crouch = np.minimum(a * down, 1.0)
        _both(pose, "hip_flex", 55.0 * crouch)
        _both(pose, "knee", 3.0 + 95.0 * crouch)
        pose["pitch"] = 25.0 * crouch
        _both(pose, "arm_el", -90.0 - 30.0 * crouch + 140.0 * np.minimum(a * up, 1.0))
        _both(pose, "fore_el", -85.0 - 30.0 * crouch + 140.0 * np.minimum(a * up, 1.0))
        _both(pose, "arm_az", np.full_like(th, 88.0))
        _both(pose, "fore_az", np.full_like(th, 88.0))
        dy = 0.25 * a * up
    else:
        raise ValueError(f"unknown action {action!r}; actions are {ACTIONS}")
    return pose, dx, dy


def _arm_dir(el, az, side, fwd, up, left):
    """Unit vectors [T, 3] at elevation `el` and azimuth `az` (radians) in a body frame; side +1 left, -1 right."""
    ce = np.cos(el)[:, None]
    return (
        ce * (np.cos(az)[:, None] * side * left + np.sin(az)[:, None] * fwd)
        + np.sin(el)[:, None] * up
    )


def _leg_dir(flex, abd, side, fwd, up, left):
    """Unit vectors [T, 3] of a leg segment flexed forward by `flex` and abducted sideways by `abd` (radians)."""
    cf = np.cos(flex)[:, None]
    return (
        -cf * np.cos(abd)[:, None] * up
        + cf * np.sin(abd)[:, None] * side * left
        + np.sin(flex)[:, None] * fwd
    )


def _rotate_about(v, axis, angle):
    """Rodrigues rotation of vectors v [T, 3] about unit axes [T, 3] by angles [T] (radians)."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    dot = np.sum(v * axis, axis=-1, keepdims=True)
    return v * c + np.cross(axis, v) * s + axis * dot * (1.0 - c)


def _forward_kinematics(
    angles: Mapping[str, np.ndarray], body: Mapping[str, float], yaw, origin, dx, dy
):
    """COCO-17 joints [T, 17, 3] (metres, y up) from joint angles, chained from the pelvis outwards.

    Returns:
      (joints, torso_forward [T, 3], head_centre [T, 3]).
    """
    t = len(dx)
    rad = {k: np.deg2rad(v) for k, v in angles.items()}
    up0 = np.tile([0.0, 1.0, 0.0], (t, 1))
    fwd0 = np.tile([math.sin(yaw), 0.0, math.cos(yaw)], (t, 1))
    left0 = np.cross(up0, fwd0)  # the person's left, for a y-up right-handed world
    pelvis = origin[None, :] + left0 * dx[:, None]
    # Upper body: twist about the vertical, then bend forward about the person's left-right axis.
    fwd = _rotate_about(fwd0, up0, rad["twist"])
    left = _rotate_about(left0, up0, rad["twist"])
    up = _rotate_about(up0, left, rad["pitch"])
    fwd = _rotate_about(fwd, left, rad["pitch"])

    j = np.zeros((t, keypoints.NUM_KEYPOINTS, 3))
    idx = keypoints.INDEX
    neck = pelvis + body["spine"] * up
    for side_name, side in (("left", 1.0), ("right", -1.0)):
        p = side_name[0]
        shoulder = neck + side * body["shoulder_half"] * left
        elbow = shoulder + body["upper_arm"] * _arm_dir(
            rad[f"{p}_arm_el"], rad[f"{p}_arm_az"], side, fwd, up, left
        )
        wrist = elbow + body["forearm"] * _arm_dir(
            rad[f"{p}_fore_el"], rad[f"{p}_fore_az"], side, fwd, up, left
        )
        # Legs hang from the pelvis frame, which neither twists nor bends.
        hip = pelvis + side * body["hip_half"] * left0
        flex, abd = rad[f"{p}_hip_flex"], rad[f"{p}_hip_abd"]
        knee = hip + body["thigh"] * _leg_dir(flex, abd, side, fwd0, up0, left0)
        ankle = knee + body["shin"] * _leg_dir(flex - rad[f"{p}_knee"], abd, side, fwd0, up0, left0)
        for name, point in (
            ("shoulder", shoulder),
            ("elbow", elbow),
            ("wrist", wrist),
            ("hip", hip),
            ("knee", knee),
            ("ankle", ankle),
        ):
            j[:, idx[f"{side_name}_{name}"]] = point
        hs = body["head_radius"] / _BODY["head_radius"]  # head offsets below are for scale 1
        j[:, idx[f"{side_name}_eye"]] = neck + hs * (0.21 * up + 0.075 * fwd + side * 0.035 * left)
        j[:, idx[f"{side_name}_ear"]] = neck + hs * (0.19 * up + side * 0.075 * left)
    j[:, idx["nose"]] = neck + hs * (0.17 * up + 0.11 * fwd)
    head = neck + hs * 0.17 * up
    # Feet stay on the ground (y = foot height) unless the action lifts the body, so squats lower the pelvis.
    lowest = np.minimum(j[:, idx["left_ankle"], 1], j[:, idx["right_ankle"], 1])
    lift = (body["foot"] - lowest + dy)[:, None]
    j[..., 1] += lift
    head[:, 1] += lift[:, 0]
    return j, fwd, head


# ----------------------------------------------------------------------------------------------------------------
# Cameras.


def _camera_frame(view: np.ndarray):
    """Camera centre [3] and rows (right, down, forward) [3, 3] of the camera described by `view`."""
    az, el, roll, dist = (float(view[i]) for i in range(4))
    target = np.asarray(view[7:10], dtype=np.float64)
    offset = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
    centre = target + dist * offset
    fwd = -offset
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    cr, sr = math.cos(roll), math.sin(roll)
    right, down = cr * right + sr * down, -sr * right + cr * down
    return centre, np.stack([right, down, fwd])


def project(points3d: np.ndarray, view: np.ndarray, shake: np.ndarray | None = None) -> np.ndarray:
    """Perspective projection of world points into the pixels of the camera `view`.

    Args:
      points3d: [..., N, 3] world points in metres; if `shake` is given, [T, N, 3].
      view: [NUM_VIEW_FIELDS] camera parameters in `VIEW_FIELDS` order.
      shake: optional [T, 2] per-frame pixel offsets (camera shake) added to the projection.

    Returns:
      float32 [..., N, 2] pixel coordinates (x right, y down). Points behind the camera project to meaningless values;
      use `camera_depth` to tell them apart.
    """
    centre, rows = _camera_frame(np.asarray(view, dtype=np.float64))
    cam = (np.asarray(points3d, dtype=np.float64) - centre) @ rows.T
    focal, cx, cy = float(view[4]), float(view[5]), float(view[6])
    z = np.where(np.abs(cam[..., 2]) < 1e-6, 1e-6, cam[..., 2])
    xy = np.stack([focal * cam[..., 0] / z + cx, focal * cam[..., 1] / z + cy], axis=-1)
    if shake is not None:
        xy = xy + np.asarray(shake, dtype=np.float64)[:, None, :]
    return xy.astype(np.float32)


def camera_depth(points3d: np.ndarray, view: np.ndarray) -> np.ndarray:
    """Depth [...] (metres along the optical axis) of world points [..., 3] in the camera `view`; <= 0 is behind."""
    centre, rows = _camera_frame(np.asarray(view, dtype=np.float64))
    return (np.asarray(points3d, dtype=np.float64) - centre) @ rows[2]


def _sample_cameras(
    rng: np.random.Generator, cfg: WorldConfig, target: np.ndarray, height_m: float, yaw: float
):
    """[num_cameras, NUM_VIEW_FIELDS] cameras within `camera_arc_deg` of the facing `yaw`, each framing the body.

    Azimuths are spread evenly over the arc with jitter, so the views of one performance really differ (by up to the
    arc); the standing person fills 65-85% of the frame height.
    """
    arc = math.radians(cfg.camera_arc_deg)
    n = cfg.num_cameras
    if cfg.camera_arc_deg >= 360.0:
        start = rng.uniform(0.0, 2.0 * math.pi)
        azimuths = start + arc * (np.arange(n) + rng.uniform(-0.1, 0.1, size=n)) / n
    else:
        azimuths = yaw - arc / 2.0 + arc * (np.arange(n) + rng.uniform(0.0, 1.0, size=n)) / n
    views = []
    for az in azimuths:
        el = rng.uniform(math.radians(-5.0), math.radians(25.0))
        roll = rng.uniform(math.radians(-4.0), math.radians(4.0))
        dist = rng.uniform(3.5, 6.0)
        focal = rng.uniform(0.65, 0.85) * cfg.height * dist / height_m
        cx = cfg.width / 2.0 + rng.uniform(-0.03, 0.03) * cfg.width
        cy = cfg.height / 2.0 + rng.uniform(-0.03, 0.03) * cfg.height
        aim = target + rng.uniform(-0.05, 0.05, size=3)
        views.append([az % (2.0 * math.pi), el, roll, dist, focal, cx, cy, *aim])
    return np.asarray(views, dtype=np.float64)


# ----------------------------------------------------------------------------------------------------------------
# Body signals.


def limb_signals(pose3d: np.ndarray) -> np.ndarray:
    """Angular speed of each limb of `keypoints.LIMBS`, the synthetic stand-in for limb-worn IMUs.

    Args:
      pose3d: [T, 17, 3] world joints.

    Returns:
      float32 [T, NUM_LIMBS]: angle (radians) each limb turned since the previous frame; frame 0 is 0.
    """
    pose3d = np.asarray(pose3d, dtype=np.float64)
    a, b = keypoints.LIMB_ENDPOINTS[:, 0], keypoints.LIMB_ENDPOINTS[:, 1]
    d = pose3d[:, b] - pose3d[:, a]
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    cos = np.clip(np.sum(d[1:] * d[:-1], axis=-1), -1.0, 1.0)
    speed = np.concatenate([np.zeros((1, d.shape[1])), np.arccos(cos)], axis=0)
    return speed.astype(np.float32)


def movement_flags(signals: np.ndarray, still_below: float, moving_above: float) -> np.ndarray:
    """Per-limb movement flags with the Muscles paper's two thresholds.

    Args:
      signals: [T, L] limb angular speeds (rad/frame), frame 0 unmeasured.
      still_below: speeds below this are still (0).
      moving_above: speeds above this are moving (1); speeds in between are ambiguous (-1).

    Returns:
      int32 [T, L] in {-1, 0, 1}; frame 0 is -1 because no speed was measured there.
    """
    flags = np.full(signals.shape, -1, dtype=np.int32)
    flags[signals < still_below] = 0
    flags[signals > moving_above] = 1
    flags[0] = -1
    return flags


_HAND_SPEED = 0.15  # m/s: hands faster than this draw the gaze


def _gaze_points(
    pose3d: np.ndarray, torso_fwd: np.ndarray, head: np.ndarray, fps: float
) -> np.ndarray:
    """World points [T, 3] the person looks at: their moving hand(s) if the hands move, else straight ahead."""
    idx = keypoints.INDEX
    wrists = pose3d[:, [idx["left_wrist"], idx["right_wrist"]]]
    # Hand speed relative to the shoulders (m/s), so stepping or jumping with still arms does not count.
    shoulders = pose3d[:, [idx["left_shoulder"], idx["right_shoulder"]]].mean(axis=1, keepdims=True)
    speed = np.linalg.norm(np.diff(wrists - shoulders, axis=0), axis=-1).mean(axis=0) * fps
    if speed.max() > _HAND_SPEED:
        # Weighting by speed looks at a waving hand, or between clapping ones; one choice per clip avoids flicker.
        w = speed / speed.sum()
        return np.einsum("k,tkc->tc", w, wrists)
    ahead = torso_fwd.copy()
    ahead[:, 1] -= 0.3  # people look slightly down in front of them
    return head + 1.5 * ahead


def _normalised_gaze(points: np.ndarray, view: np.ndarray, shake: np.ndarray, cfg: WorldConfig):
    xy = project(points[:, None, :], view, shake)[:, 0].astype(np.float64)
    xy /= np.array([cfg.width, cfg.height])
    inside = (camera_depth(points, view) > 0) & np.all((xy >= 0.0) & (xy <= 1.0), axis=-1)
    return np.where(inside[:, None], xy, -1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Rendering.

# Clothing stays at least this far (0-255 luminance) from the background behind it, before lighting.
MIN_CONTRAST = 40.0


def luminance(rgb) -> np.ndarray:
    """Rec. 601 luma of RGB values in [0, 255] (any leading shape)."""
    return np.asarray(rgb, np.float32) @ np.float32([0.299, 0.587, 0.114])


def _random_colour(
    rng: np.random.Generator, sat=(0.3, 1.0), val=(0.3, 1.0), hue=(0.0, 180.0)
) -> np.ndarray:
    hsv = np.array(
        [[[rng.uniform(*hue), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]], np.uint8
    )
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _contrasting_colour(
    rng: np.random.Generator, avoid, sat=(0.15, 0.9), gap: float = MIN_CONTRAST
) -> np.ndarray:
    """A random colour whose luminance is at least `gap` from each luminance in `avoid`."""
    avoid = np.asarray(avoid, np.float32)
    for _ in range(64):
        colour = _random_colour(rng, sat=sat, val=(0.05, 1.0))
        if np.all(np.abs(luminance(colour) - avoid) >= gap):
            return colour
    # Rare: the backgrounds' luminances leave no gap a random draw finds; take the extreme furthest from them.
    greys = [np.full(3, v, np.float32) for v in (15.0, 240.0)]
    return max(greys, key=lambda g: float(np.min(np.abs(luminance(g) - avoid))))


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A float32 [H, W, 3] background in [0, 255]: noise, gradient, stripes or checker, in random colours."""
    a, b = _random_colour(rng), _random_colour(rng)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / max(height, width)
    kind = rng.integers(4)
    if kind == 0:  # smooth colour noise
        cells = rng.integers(2, 9)
        low = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.float32)
        return cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    angle = rng.uniform(0, math.pi)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    if kind == 1:  # linear gradient
        m = (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
    elif kind == 2:  # soft stripes
        m = 0.5 + 0.5 * np.sin(2 * math.pi * rng.uniform(2, 10) * u + rng.uniform(0, 2 * math.pi))
    else:  # rotated checker
        v = -xx * math.sin(angle) + yy * math.cos(angle)
        n = rng.uniform(3, 10)
        m = ((np.floor(u * n) + np.floor(v * n)) % 2).astype(np.float32)
    return a * (1.0 - m[..., None]) + b * m[..., None]


def _textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """clutter 3: one or two overlaid high-contrast textures with pixel noise."""
    tex = _texture(rng, height, width)
    if rng.uniform() < 0.5:  # overlay a second texture for more variety
        alpha = rng.uniform(0.2, 0.5)
        tex = (1.0 - alpha) * tex + alpha * _texture(rng, height, width)
    return np.clip(tex + rng.normal(0.0, 6.0, size=tex.shape), 0, 255).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Room:
    """A room behind the person, in metres relative to the spot behind them as seen from the camera.

    The wall stands `back` metres behind the person, square to the camera's horizontal line of sight; the floor
    meets it there. Furniture blocks stand on the floor in front of the wall: (lateral offset, width, height,
    distance in front of the wall, colour).
    """

    wall: np.ndarray
    floor: np.ndarray
    back: float
    stripe_period: float
    stripe_contrast: float
    furniture: tuple


def _draw_room(rng: np.random.Generator) -> Room:
    furniture = tuple(
        (
            rng.uniform(-3.5, 3.5),
            rng.uniform(0.4, 1.5),
            rng.uniform(0.4, 2.0),
            rng.uniform(0.0, 0.6),
            _random_colour(rng, sat=(0.1, 0.7), val=(0.15, 0.9)),
        )
        for _ in range(rng.integers(2, 6))
    )
    return Room(
        wall=_random_colour(rng, sat=(0.05, 0.45), val=(0.35, 0.95)),
        floor=_random_colour(rng, sat=(0.05, 0.5), val=(0.2, 0.8)),
        back=float(rng.uniform(1.5, 4.0)),
        stripe_period=float(rng.uniform(0.12, 0.5)),
        stripe_contrast=float(rng.uniform(0.03, 0.08)),
        furniture=furniture,
    )


@functools.lru_cache(maxsize=8)
def room_pool(seed: int, count: int) -> tuple[Room, ...]:
    """The `count` rooms of `clutter` 1 for a world seed: the same for every split, action and performance."""
    return tuple(
        _draw_room(np.random.default_rng(np.random.SeedSequence([seed, _ROOM_POOL_KEY, k])))
        for k in range(count)
    )


_ROOM_POOL_KEY = 7919  # keeps the pool's seeds apart from the performances' (seed, split, index)
_SHIFT = 4  # cv2 fixed-point bits, so thin strokes land at sub-pixel positions on tiny frames


def _fixed(points: np.ndarray) -> np.ndarray:
    """int32 fixed-point pixel coordinates for cv2's `shift`, clipped far outside any frame."""
    return np.clip(np.round(np.asarray(points) * (1 << _SHIFT)), -(1 << 26), 1 << 26).astype(
        np.int32
    )


def _render_room(room: Room, view: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32 [height, width, 3]: the room seen by `view` (whose principal point is in this canvas's pixels)."""
    az, el, dist = float(view[0]), float(view[1]), float(view[3])
    target = np.asarray(view[7:10], np.float64)
    towards_camera = np.array([math.sin(az), 0.0, math.cos(az)])
    lateral = np.array([math.cos(az), 0.0, -math.sin(az)])  # the camera's right, horizontally
    up = np.array([0.0, 1.0, 0.0])
    ground = np.array([target[0], 0.0, target[2]])
    wall_base = ground - room.back * towards_camera

    def wall_quads(s0, s1, h0, h1, forward=0.0):
        s0, s1, h0, h1 = (np.asarray(v, np.float64)[..., None] for v in (s0, s1, h0, h1))
        base = wall_base + forward * towards_camera
        corners = [base + s * lateral + h * up for s, h in ((s0, h0), (s1, h0), (s1, h1), (s0, h1))]
        return _fixed(project(np.stack(corners, axis=-2), view))

    img = np.empty((height, width, 3), np.float32)
    img[:] = room.wall
    # Wallpaper: faint vertical stripes, every other one lighter.
    edges = np.arange(-8.0, 8.0, 2.0 * room.stripe_period)
    stripes = wall_quads(edges, edges + room.stripe_period, 0.0, 6.0)
    light = tuple(float(v) for v in np.clip(room.wall * (1.0 + room.stripe_contrast), 0, 255))
    cv2.fillPoly(img, list(stripes), light, cv2.LINE_AA, _SHIFT)
    # The floor, from the foot of the wall to just in front of the camera, and a skirting board along the wall.
    camera_ground = ground + dist * math.cos(el) * towards_camera
    near = camera_ground - 0.3 * towards_camera
    floor = np.stack(
        [
            wall_base - 30.0 * lateral,
            wall_base + 30.0 * lateral,
            near + 3.0 * lateral,
            near - 3.0 * lateral,
        ]
    )
    cv2.fillConvexPoly(
        img, _fixed(project(floor, view)), tuple(float(v) for v in room.floor), cv2.LINE_AA, _SHIFT
    )
    board = tuple(float(v) for v in room.wall * 0.6)
    cv2.fillConvexPoly(
        img, wall_quads([-30.0], [30.0], [0.0], [0.08])[0], board, cv2.LINE_AA, _SHIFT
    )
    for s, w, h, forward, colour in sorted(room.furniture, key=lambda f: f[3]):
        quad = wall_quads([s], [s + w], [0.0], [h], forward)[0]
        cv2.fillConvexPoly(img, quad, tuple(float(v) for v in colour), cv2.LINE_AA, _SHIFT)
        cv2.polylines(
            img, [quad], True, tuple(float(v) for v in colour * 0.6), 1, cv2.LINE_AA, _SHIFT
        )
    sigma = (
        0.3 + height / 250.0
    )  # a slightly soft background, as a lens focused on the person gives
    return cv2.GaussianBlur(img, (0, 0), sigma)


@dataclasses.dataclass(frozen=True)
class Clothes:
    """A performer's look, drawn per performance independently of the action (RGB in [0, 255])."""

    skin: np.ndarray
    hair: np.ndarray
    shirt: np.ndarray
    trousers: np.ndarray
    shoes: np.ndarray
    long_sleeves: bool


def _draw_clothes(rng: np.random.Generator, behind_torso, behind_legs) -> Clothes:
    """Clothes whose shirt and trousers stand out from the background luminances behind them."""
    skin = _random_colour(rng, hue=(4.0, 18.0), sat=(0.25, 0.6), val=(0.3, 0.95))
    return Clothes(
        skin=skin,
        # Hair differs from the skin, so the back of the head (all hair) differs from the face.
        hair=_contrasting_colour(rng, [luminance(skin)], sat=(0.1, 0.8)),
        shirt=_contrasting_colour(rng, behind_torso),
        trousers=_contrasting_colour(rng, behind_legs),
        shoes=_random_colour(rng, sat=(0.0, 0.6), val=(0.05, 0.5)),
        long_sleeves=bool(rng.uniform() < 0.5),
    )


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _body_points(pose3d: np.ndarray, fwd: np.ndarray, head: np.ndarray, body: Mapping[str, float]):
    """The extra 3D points [T, 3] the renderer draws besides the joints: neck, head, hair, hands, heels, toes."""
    idx = keypoints.INDEX
    neck = 0.5 * (pose3d[:, idx["left_shoulder"]] + pose3d[:, idx["right_shoulder"]])
    head_up = _unit(head - neck)
    hips_left = _unit(pose3d[:, idx["left_hip"]] - pose3d[:, idx["right_hip"]])
    feet_fwd = _unit(np.cross(hips_left, [0.0, 1.0, 0.0]))
    r = body["head_radius"]
    points = {
        "neck": neck,
        "head": head,
        # Hair sits on the back and top of the head: behind the face seen from the front, over it from behind.
        "hair": head - 0.45 * r * fwd + 0.2 * r * head_up,
    }
    for side in ("left", "right"):
        wrist, elbow = pose3d[:, idx[f"{side}_wrist"]], pose3d[:, idx[f"{side}_elbow"]]
        points[f"{side}_hand"] = wrist + 0.8 * body["hand_radius"] * _unit(wrist - elbow)
        ankle = pose3d[:, idx[f"{side}_ankle"]]
        points[f"{side}_heel"] = ankle - 0.25 * body["shoe_length"] * feet_fwd
        points[f"{side}_toe"] = ankle + 0.75 * body["shoe_length"] * feet_fwd
    return points


def _person_parts(pose3d, fwd, head, body, clothes: Clothes):
    """The drawing list: (kind, 3D anchor points [T, n, 3], width in metres, colour, depth bias).

    kind "capsule" is a thick rounded stroke between two points, "disc" a filled circle at one point, "trunk" a
    filled rounded quadrilateral. Parts are painted far to near by the depth of their anchors' mean plus the bias.
    """
    idx = keypoints.INDEX
    extra = _body_points(pose3d, fwd, head, body)

    def joint(name):
        return pose3d[:, idx[name]]

    def pts(*names):
        return np.stack([extra[n] if n in extra else joint(n) for n in names], axis=1)

    sleeves = clothes.shirt if clothes.long_sleeves else clothes.skin
    parts = [
        (
            "trunk",
            pts("left_shoulder", "right_shoulder", "right_hip", "left_hip"),
            body["trunk_round"],
            clothes.shirt,
            0.05,
        ),
        ("capsule", pts("left_hip", "right_hip"), body["thigh_width"], clothes.trousers, 0.04),
        ("capsule", pts("neck", "head"), body["neck_width"], clothes.skin, 0.02),
        ("disc", pts("head"), body["head_radius"], clothes.skin, 0.0),
        ("disc", pts("hair"), 0.95 * body["head_radius"], clothes.hair, 0.0),
    ]
    for side in ("left", "right"):
        parts += [
            (
                "capsule",
                pts(f"{side}_shoulder", f"{side}_elbow"),
                body["upper_arm_width"],
                clothes.shirt,
                0.0,
            ),
            ("capsule", pts(f"{side}_elbow", f"{side}_wrist"), body["forearm_width"], sleeves, 0.0),
            ("disc", pts(f"{side}_hand"), body["hand_radius"], clothes.skin, 0.0),
            (
                "capsule",
                pts(f"{side}_hip", f"{side}_knee"),
                body["thigh_width"],
                clothes.trousers,
                0.0,
            ),
            (
                "capsule",
                pts(f"{side}_knee", f"{side}_ankle"),
                body["shin_width"],
                clothes.trousers,
                0.0,
            ),
            ("capsule", pts(f"{side}_heel", f"{side}_toe"), body["shoe_width"], clothes.shoes, 0.0),
        ]
    return parts


def _paint(canvases, kind: str, xy: np.ndarray, width_px: float, colour) -> None:
    """Paints one part on each (image, colour scale) of `canvases`: a dark full-size rim and a lighter core.

    The mask canvas (single channel) gets the full-size shape only.
    """
    pts = _fixed(xy)
    for img, is_mask in canvases:
        tones = ((1.0, 1.0),) if is_mask else ((1.0, 0.7), (0.6, 1.0))
        for size, shade in tones:
            col = 1.0 if is_mask else tuple(float(v) for v in np.clip(colour * shade, 0, 255))
            w = max(1, int(round(width_px * size)))
            if kind == "capsule":
                cv2.line(img, tuple(pts[0]), tuple(pts[1]), col, w, cv2.LINE_AA, _SHIFT)
            elif kind == "disc":
                radius = max(1, int(round(0.5 * width_px * size * (1 << _SHIFT))))
                cv2.circle(img, tuple(pts[0]), radius, col, -1, cv2.LINE_AA, _SHIFT)
            else:  # trunk: the quadrilateral with its outline thickened by the rounding width
                cv2.fillConvexPoly(img, pts, col, cv2.LINE_AA, _SHIFT)
                cv2.polylines(img, [pts], True, col, w, cv2.LINE_AA, _SHIFT)
            if kind == "trunk":
                break  # one tone: a core would draw a second, smaller quadrilateral inside the first


def _scene_canvas(scene, view: np.ndarray, height: int, width: int, margin: int, rng) -> np.ndarray:
    """float32 [H + 2 margin, W + 2 margin, 3]: what stands behind the person for one camera."""
    if isinstance(scene, Room):
        shifted = np.array(view, np.float64)
        shifted[5:7] += margin
        return _render_room(scene, shifted, height + 2 * margin, width + 2 * margin)
    if scene is None:  # clutter 3: a new texture for every clip
        return _textured_background(rng, height + 2 * margin, width + 2 * margin)
    canvas = np.empty((height + 2 * margin, width + 2 * margin, 3), np.float32)
    canvas[:] = scene  # clutter 0: a flat colour
    return canvas


def _render(
    rng: np.random.Generator,
    cfg: WorldConfig,
    parts,
    canvas: np.ndarray,
    view: np.ndarray,
    shake: np.ndarray,
    with_mask: bool,
    person: bool = True,
):
    """(uint8 [T, H, W, 3] frames, uint8 [T, H, W, 1] person mask or None).

    The person's parts, painted far to near over the background `canvas` that moves with the camera shake, then
    lighting (gain, colour cast, a brightness ramp, flicker) and sensor noise. `person=False` renders the same clip
    without the person (the shortcut control of benchmarks/learnability.py).
    """
    t, height, width = cfg.num_frames, cfg.height, cfg.width
    margin = (canvas.shape[0] - height) // 2
    focal = float(view[4])
    projected = [
        (kind, project(p3, view, shake), camera_depth(p3, view), w, c, b)
        for kind, p3, w, c, b in parts
    ]
    frames = np.empty((t, height, width, 3), np.float32)
    masks = np.zeros((t, height, width, 1), np.uint8) if with_mask else None
    for f in range(t):
        # The background moves with the shake, like the keypoints.
        m = np.float32([[1, 0, shake[f, 0] - margin], [0, 1, shake[f, 1] - margin]])
        img = cv2.warpAffine(canvas, m, (width, height), borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((height, width), np.float32) if with_mask else None
        canvases = [(img, False)] + ([(mask, True)] if with_mask else [])
        order = sorted(projected, key=lambda part: -(part[2][f].mean() + part[5]))
        for kind, xy, depth, width_m, colour, _ in order if person else ():
            z = float(depth[f].mean())
            if z <= 0.05:
                continue  # behind the camera
            _paint(canvases, kind, xy[f], focal * width_m / z, colour)
        frames[f] = img
        if with_mask:
            masks[f, ..., 0] = mask >= 0.5

    gain = rng.uniform(0.7, 1.25) * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ang = rng.uniform(0, 2 * math.pi)
    ramp = ((xx / width - 0.5) * math.cos(ang) + (yy / height - 0.5) * math.sin(ang)) * rng.uniform(
        0, 0.3
    )
    flicker = 1.0 + rng.uniform(-0.02, 0.02, size=(t, 1, 1, 1))
    frames = frames * gain * (1.0 + ramp)[None, :, :, None] * flicker
    frames += rng.normal(0.0, rng.uniform(0.0, 5.0), size=frames.shape)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8), masks


# ----------------------------------------------------------------------------------------------------------------
# Performances and examples.


def _performance(rng: np.random.Generator, cfg: WorldConfig, action: str):
    """One person doing `action`: joints [T, 17, 3], torso forward [T, 3], head centre [T, 3], body, scale, yaw."""
    scale = rng.uniform(0.8, 1.15)
    body = {k: v * scale * rng.uniform(0.95, 1.05) for k, v in _BODY.items()}
    times = np.arange(cfg.num_frames) / cfg.fps
    freq = rng.uniform(0.45, 0.95)  # cycles per second: the performance's speed
    phase = 2 * math.pi * freq * times + rng.uniform(0, 2 * math.pi)
    amplitude = rng.uniform(0.8, 1.2)  # style: how big the movement is
    # One-way actions rise smoothly from 0 to 1 over half to two thirds of the clip, starting at a random moment.
    u = np.arange(cfg.num_frames) / (cfg.num_frames - 1)
    start, span = rng.uniform(0.05, 0.3), rng.uniform(0.5, 0.65)
    progress = np.clip((u - start) / span, 0.0, 1.0)
    ramp = progress * progress * (3.0 - 2.0 * progress)
    angles, dx, dy = _action_angles(action, phase, amplitude, ramp)
    for key in _ANGLE_KEYS:
        # Style: a personal posture offset and a slow sway, both too small and slow to count as movement. The
        # whole-body angles (lean and twist) get less of both, so a posture never reads as another action.
        whole_body = key in ("pitch", "twist")
        limit, sway_deg = (3.0, 1.0) if whole_body else (6.0, 2.0)
        sway = sway_deg * np.sin(
            2 * math.pi * rng.uniform(0.1, 0.3) * times + rng.uniform(0, 2 * math.pi)
        )
        angles[key] = angles[key] + np.clip(rng.normal(0.0, limit / 1.5), -limit, limit) + sway
    angles["l_knee"] = np.maximum(angles["l_knee"], 0.0)  # knees never bend backwards
    angles["r_knee"] = np.maximum(angles["r_knee"], 0.0)
    yaw = rng.uniform(-math.pi, math.pi)
    origin = np.array([rng.uniform(-0.3, 0.3), 0.0, rng.uniform(-0.3, 0.3)])
    pose3d, fwd, head = _forward_kinematics(angles, body, yaw, origin, dx, dy)
    return pose3d, fwd, head, body, scale, yaw


# Standard deviation of the camera's drift over a whole clip, as a fraction of the frame's shorter side.
SHAKE_FRACTION = 0.012


def camera_shake(rng: np.random.Generator, config: WorldConfig) -> np.ndarray:
    """float32 [T, 2]: a hand-held camera's drift in pixels, a random walk that starts at zero.

    The steps are independent with a standard deviation of SHAKE_FRACTION * min(H, W) / sqrt(T), so the drift over a
    clip has the same spread at every frame rate (every size spans CLIP_SECONDS). A smooth drift, not a fresh offset
    every frame: independent per-frame offsets of the same size move the whole textured background between any two
    frames and bury the person's motion in frame differences and optical flow (1-NN accuracy of a hand-made
    motion-energy feature on 60 held-out performances of the tiny world: 0.40 with them, 0.62 with the drift).
    """
    t = config.num_frames
    step = SHAKE_FRACTION * min(config.height, config.width) / math.sqrt(t)
    steps = rng.normal(0.0, step, size=(t, 2))
    steps[0] = 0.0
    return np.cumsum(steps, axis=0).astype(np.float32)


def _scene(rng: np.random.Generator, cfg: WorldConfig, seed: int):
    """(scene, room id): what stands behind one performance; room id -1 where it is not from the shared pool."""
    if cfg.clutter == 0:
        return _random_colour(rng, sat=(0.0, 0.5), val=(0.2, 0.9)), -1
    if cfg.clutter == 1:
        room_id = int(rng.integers(cfg.rooms))
        return room_pool(seed, cfg.rooms)[room_id], room_id
    if cfg.clutter == 2:
        return _draw_room(rng), -1
    return None, -1  # clutter 3: a texture per clip, drawn when the clip is rendered


def _behind(scene, canvases: list[np.ndarray]) -> tuple[list[float], list[float]]:
    """Background luminances behind the torso and behind the legs, that the clothes must stand out from."""
    if isinstance(scene, Room):
        wall, floor = float(luminance(scene.wall)), float(luminance(scene.floor))
        return [wall], [wall, floor]
    if scene is not None:
        flat = float(luminance(scene))
        return [flat], [flat]
    means = [float(luminance(c.reshape(-1, 3).mean(axis=0))) for c in canvases]
    return means, means


def generate(
    config: WorldConfig,
    split: str,
    seed: int = 0,
    mask: bool = False,
    person: bool = True,
    render: bool = True,
) -> Iterator[dict[str, np.ndarray]]:
    """Examples of one split of the world, `config.num_cameras` per performance, in a fixed order.

    Each performance draws from its own generator seeded by (seed, split, performance index), so the same arguments
    give identical arrays, and a performance does not depend on the ones before it. The rooms of `clutter` 1 come
    from a pool seeded by `seed` alone, shared by every split.

    Args:
      config: the world's sizes and settings (see `get_config`).
      split: "pretrain" or "test" (SEEN_ACTIONS), or "heldout" (HELDOUT_ACTIONS).
      seed: the world's seed.
      mask: also yield `mask`, uint8 [T, H, W, 1], 1 on the person's pixels (not stored by the TFDS builder).
      person: False renders every clip without the person, everything else identical (a shortcut control).
      render: False draws no pixels (no `rgb`, no `mask`): a pose world, hundreds of times faster, for pose methods.
        Its performances and cameras are the rendered world's, its camera shake and cross-view pairs are not (the
        rendering's random draws are skipped).

    Yields:
      Dicts of numpy arrays with the keys in this module's docstring (`rgb` uint8; `to_contract` makes it float).
    """
    for index in range(config.num_performances(split)):
        yield from performance(config, split, index, seed, mask=mask, person=person, render=render)


def performance(
    config: WorldConfig,
    split: str,
    index: int,
    seed: int = 0,
    mask: bool = False,
    person: bool = True,
    render: bool = True,
) -> list[dict[str, np.ndarray]]:
    """The `config.num_cameras` examples of one performance of a split, exactly as `generate` yields them.

    A performance depends only on (seed, split, index), so performances can be rendered in any order or in parallel
    (the TFDS builder renders them in worker processes).

    Args:
      config, split, seed, mask, person, render: as for `generate`.
      index: the performance's index in the split, 0 <= index < `config.num_performances(split)`.

    Returns:
      One dict per camera, in camera order.
    """
    if not 0 <= index < config.num_performances(split):
        raise ValueError(
            f"performance index must be in [0, {config.num_performances(split)}) for split {split!r}, got {index}"
        )
    split_index = _split_index(split)
    actions = _SPLIT_ACTIONS[split]
    still_below, moving_above = config.moved_thresholds
    margin_px = int(math.ceil(4.0 * SHAKE_FRACTION * min(config.height, config.width))) + 2
    rng = np.random.default_rng(np.random.SeedSequence([seed, split_index, index]))
    action = actions[index % len(actions)]  # balanced classes
    pose3d, fwd, head, body, scale, yaw = _performance(rng, config, action)
    # Cameras aim at the middle of the standing body, above the hips on the ground plane.
    hips = pose3d[0, [keypoints.INDEX["left_hip"], keypoints.INDEX["right_hip"]]].mean(axis=0)
    height_m = STANDING_HEIGHT * scale
    target = np.array([hips[0], 0.5 * height_m, hips[2]])
    views = _sample_cameras(rng, config, target, height_m, yaw).astype(np.float32)
    scene, room_id = _scene(rng, config, seed)
    if render:
        canvases = [
            _scene_canvas(scene, view, config.height, config.width, margin_px, rng)
            for view in views
        ]
        parts = _person_parts(
            pose3d, fwd, head, body, _draw_clothes(rng, *_behind(scene, canvases))
        )
    signals = limb_signals(pose3d)
    moved = movement_flags(signals, still_below, moving_above)
    gaze3d = _gaze_points(pose3d, fwd, head, config.fps)
    # Project with the float32 values that are stored, so pose2d == project(pose3d, view, shake) exactly.
    pose3d32 = pose3d.astype(np.float32)
    examples = []
    for cam in range(config.num_cameras):
        view = views[cam]
        pair = (cam + 1 + rng.integers(config.num_cameras - 1)) % config.num_cameras
        shake = np.clip(camera_shake(rng, config), -(margin_px - 2), margin_px - 2)
        example = {}
        if render:
            example["rgb"], person_mask = _render(
                rng, config, parts, canvases[cam], view, shake, mask, person=person
            )
            if mask:
                example["mask"] = person_mask
        example |= {
            "pose2d": project(pose3d32, view, shake),
            "pose3d": pose3d32,
            "view": view,
            "shake": shake,
            "pose2d_pair": project(pose3d32, views[pair]),
            "view_pair": views[pair],
            "signals": signals,
            "moved": moved,
            "gaze": _normalised_gaze(gaze3d, view, shake, config),
            "label": np.int32(ACTIONS.index(action)),
            "performance_id": np.int32(index),
            "camera_id": np.int32(cam),
            "room_id": np.int32(room_id),
        }
        examples.append(example)
    return examples


def feature_shapes(
    config: WorldConfig, render: bool = True
) -> dict[str, tuple[tuple[int, ...], type]]:
    """(shape, numpy dtype) of every example key of `generate` (without `rgb` when not `render`), for tf.data
    signatures and TFDS features."""
    t, h, w, k, l, v = (
        config.num_frames,
        config.height,
        config.width,
        keypoints.NUM_KEYPOINTS,
        keypoints.NUM_LIMBS,
        NUM_VIEW_FIELDS,
    )
    shapes = {
        "rgb": ((t, h, w, 3), np.uint8),
        "pose2d": ((t, k, 2), np.float32),
        "pose3d": ((t, k, 3), np.float32),
        "view": ((v,), np.float32),
        "shake": ((t, 2), np.float32),
        "pose2d_pair": ((t, k, 2), np.float32),
        "view_pair": ((v,), np.float32),
        "signals": ((t, l), np.float32),
        "moved": ((t, l), np.int32),
        "gaze": ((t, 2), np.float32),
        "label": ((), np.int32),
        "performance_id": ((), np.int32),
        "camera_id": ((), np.int32),
        "room_id": ((), np.int32),
    }
    if not render:
        del shapes["rgb"]
    return shapes


def to_contract(example: Mapping) -> dict:
    """Maps an example of `generate` or of the TFDS builder (tensors or numpy) onto DESIGN.md's contract.

    `rgb` becomes float32 in [0, 1] and integer bookkeeping keys int32 (TFDS gives ClassLabel as int64).

    Args:
      example: dict with at least `rgb`.

    Returns:
      A new dict of tensors.
    """
    import tensorflow as tf  # here, so that generating numpy never loads TensorFlow

    out = dict(example)
    if "rgb" in example:
        out["rgb"] = tf.image.convert_image_dtype(tf.convert_to_tensor(example["rgb"]), tf.float32)
    for key in ("label", "performance_id", "camera_id", "room_id", "moved"):
        if key in out:
            out[key] = tf.cast(out[key], tf.int32)
    return out


def as_dataset(config: WorldConfig, split: str, seed: int = 0, render: bool = True):
    """The split as a `tf.data.Dataset` of contract dicts (rgb float32 in [0, 1]), generated on the fly.

    Args:
      config: the world's sizes.
      split: "pretrain", "test" or "heldout".
      seed: the world's seed.
      render: False: a pose world, without `rgb` (see `generate`).

    Returns:
      A finite tf.data.Dataset of dicts, in `generate`'s order.
    """
    import tensorflow as tf

    _split_index(split)  # fail here, not inside the iterator
    signature = {
        key: tf.TensorSpec(shape, tf.as_dtype(dtype))
        for key, (shape, dtype) in feature_shapes(config, render).items()
    }
    ds = tf.data.Dataset.from_generator(
        lambda: generate(config, split, seed, render=render), output_signature=signature
    )
    return map_to_contract(ds, deterministic=True)


def map_to_contract(ds, **map_kwargs):
    """`ds`, a dataset of `generate`'s or the TFDS builder's examples, mapped in parallel onto the contract by
    `to_contract`, traced as written (edge_ssl/tracing.py); `map_kwargs` go to `Dataset.map`."""
    import tensorflow as tf

    from edge_ssl import tracing

    return ds.map(
        tracing.as_written(to_contract), num_parallel_calls=tf.data.AUTOTUNE, **map_kwargs
    )


def stack_examples(examples: Iterable[Mapping], keys: Iterable[str]) -> dict[str, np.ndarray]:
    """The `keys` of every example stacked into arrays [N, ...] (examples from `generate`, `as_dataset` or a TFDS
    split as numpy): a world split held in memory for benchmarks and tests.

    Raises:
      ValueError: no examples, or an example lacks a key (naming it).
    """
    keys = tuple(keys)
    out = {k: [] for k in keys}
    for example in examples:
        for k in keys:
            if k not in example:
                raise ValueError(f"an example has no {k!r}; it has {sorted(example)}")
            out[k].append(np.asarray(example[k]))
    if not out[keys[0]]:
        raise ValueError("no examples to stack")
    return {k: np.stack(v) for k, v in out.items()}
