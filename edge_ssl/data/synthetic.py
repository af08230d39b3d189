"""The synthetic world: stick-figure people acting in front of cameras, with every modality from one source.

One seeded generator produces, for each *performance* (one person doing one action), a 3D pose sequence from a small
forward-kinematics skeleton, several perspective cameras around the person, and for each camera an example: the RGB
render (limbs as thick shaded strokes over a textured background, with colour, lighting, noise and camera-shake
nuisance), the 2D keypoints in that camera, the same frames seen from another camera (CV-MIM's cross-view positive),
limb angular speeds and movement flags (the stand-in for the Muscles paper's limb IMUs), a gaze-like 2D target, and
the label. Actions differ by motion only: limb colours, background and lighting are drawn per performance independently
of the action, so appearance carries no class information.

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
  cameras).

Splits: `pretrain` and `test` hold `SEEN_ACTIONS` only, `heldout` holds `HELDOUT_ACTIONS` only, so few-shot
evaluation on `heldout` uses classes pretraining never saw. The world is y-up, right-handed, metres; time is seconds,
sampled at the size's `fps`, and every size covers the same clip duration.
"""

import dataclasses
import math
from collections.abc import Iterator, Mapping

import cv2
import numpy as np

from edge_ssl.data import keypoints

# Actions differ by motion. Held-out ones come last, so seen labels are 0..len(SEEN_ACTIONS)-1.
SEEN_ACTIONS = (
    "wave_left",
    "wave_right",
    "clap",
    "jumping_jack",
    "squat",
    "kick_left",
    "kick_right",
    "punch",
    "march",
    "bend_forward",
)
HELDOUT_ACTIONS = ("arm_circles", "twist", "side_step", "raise_arms", "jump")
ACTIONS = SEEN_ACTIONS + HELDOUT_ACTIONS
NUM_ACTIONS = len(ACTIONS)

SPLITS = ("pretrain", "test", "heldout")
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

# One table of sizes, decoded only by `get_config`. Every size spans CLIP_SECONDS of motion.
CLIP_SECONDS = 2.0
SIZES = {
    "tiny": dict(num_frames=8, height=32, width=32, num_cameras=3, performances=(40, 20, 20)),
    "small": dict(
        num_frames=16, height=112, width=112, num_cameras=4, performances=(400, 100, 100)
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
    """

    name: str = "custom"
    num_frames: int = 8
    height: int = 32
    width: int = 32
    num_cameras: int = 3
    performances: tuple[int, int, int] = (40, 20, 20)
    moved_min_deg_per_s: float = 15.0
    moved_max_deg_per_s: float = 40.0

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


def _split_index(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {SPLITS}")
    return SPLITS.index(split)


# ----------------------------------------------------------------------------------------------------------------
# Body: proportions, actions as joint-angle curves, forward kinematics.

# Segment lengths in metres for a person of scale 1 (about 1.75 m tall).
_BODY = dict(
    foot=0.06,
    shin=0.44,
    thigh=0.45,
    hip_half=0.11,
    spine=0.55,
    shoulder_half=0.19,
    upper_arm=0.30,
    forearm=0.27,
    limb_width=0.09,
    head_radius=0.11,
)

# Joint angles, degrees. Arm segments are (elevation above the horizontal, azimuth from sideways-out towards forward)
# in the torso frame; legs are flexion forward, abduction sideways and knee bend; pitch bends the torso forward at the
# hips, twist turns it about the vertical; dx (sideways, metres) and dy (lift off the ground, metres) move the body.
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
    pose[f"{side}_arm_el"] = np.full_like(th, 40.0)
    pose[f"{side}_arm_az"] = np.full_like(th, 10.0)
    # The forearm swings in the frontal plane about the raised elbow.
    pose[f"{side}_fore_el"] = 65.0 + 30.0 * a * np.sin(th)
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


def _action_angles(action: str, th: np.ndarray, a: float) -> tuple[dict, np.ndarray, np.ndarray]:
    """Joint-angle curves (degrees), sideways shift and lift (metres) of `action` at phases `th` and amplitude `a`."""
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
        _both(pose, "arm_el", np.full_like(th, -5.0))
        _both(pose, "arm_az", 40.0 + 50.0 * a * h)
        _both(pose, "fore_el", np.full_like(th, 0.0))
        _both(pose, "fore_az", 60.0 + 45.0 * a * h)
    elif action == "jumping_jack":
        el = np.minimum(-80.0 + 150.0 * a * h, 85.0)
        _both(pose, "arm_el", el)
        _both(pose, "fore_el", np.minimum(el + 5.0, 88.0))
        _both(pose, "arm_az", np.full_like(th, 0.0))
        _both(pose, "fore_az", np.full_like(th, 0.0))
        _both(pose, "hip_abd", 4.0 + 18.0 * a * h)
        dy = 0.06 * a * np.abs(s)
    elif action == "squat":
        _both(pose, "hip_flex", np.minimum(100.0 * a * h, 110.0))
        _both(pose, "knee", np.minimum(3.0 + 120.0 * a * h, 130.0))
        pose["pitch"] = 35.0 * a * h
        _both(pose, "arm_el", -85.0 + 80.0 * a * h)
        _both(pose, "fore_el", -80.0 + 80.0 * a * h)
        _both(pose, "arm_az", np.full_like(th, 85.0))
        _both(pose, "fore_az", np.full_like(th, 85.0))
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
            pose[f"{side}_hip_flex"] = 60.0 * a * lift
            pose[f"{side}_knee"] = 3.0 + 80.0 * a * lift
            # Each arm swings with the opposite leg.
            pose[f"{side}_arm_el"] = -90.0 + 35.0 * a * swing
            pose[f"{side}_fore_el"] = -80.0 + 45.0 * a * swing
            pose[f"{side}_arm_az"] = np.full_like(th, 90.0)
            pose[f"{side}_fore_az"] = np.full_like(th, 90.0)
    elif action == "bend_forward":
        pitch = np.minimum(80.0 * a * h, 90.0)
        pose["pitch"] = pitch
        # Arms reach towards the feet: they swing forward in the bending torso's frame, by less than its bend.
        _both(pose, "arm_el", -88.0 + 0.5 * pitch)
        _both(pose, "fore_el", -85.0 + 0.5 * pitch)
        _both(pose, "arm_az", np.full_like(th, 88.0))
        _both(pose, "fore_az", np.full_like(th, 88.0))
    elif action == "arm_circles":
        _both(pose, "arm_el", 25.0 * a * c)
        _both(pose, "fore_el", 28.0 * a * c)
        _both(pose, "arm_az", 25.0 * a * s)
        _both(pose, "fore_az", 28.0 * a * s)
    elif action == "twist":
        pose["twist"] = 50.0 * a * s
        _both(pose, "arm_el", np.full_like(th, -10.0))
        _both(pose, "fore_el", np.full_like(th, -5.0))
        _both(pose, "arm_az", np.full_like(th, 10.0))
        _both(pose, "fore_az", np.full_like(th, 20.0))
    elif action == "side_step":
        dx = 0.25 * a * s
        # The leading leg opens in the direction of travel.
        _both(
            pose,
            "hip_abd",
            4.0 + 20.0 * a * np.maximum(c, 0.0),
            4.0 + 20.0 * a * np.maximum(-c, 0.0),
        )
        _both(pose, "knee", np.full_like(th, 10.0))
    elif action == "raise_arms":
        el = np.minimum(-85.0 + 170.0 * a * h, 88.0)
        _both(pose, "arm_el", el)
        _both(pose, "fore_el", el)
        _both(pose, "arm_az", np.full_like(th, 88.0))
        _both(pose, "fore_az", np.full_like(th, 88.0))
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
    rng: np.random.Generator, cfg: WorldConfig, target: np.ndarray, height_m: float
):
    """[num_cameras, NUM_VIEW_FIELDS] cameras spread around the person, each framing the whole body."""
    base = rng.uniform(0.0, 2.0 * math.pi)
    views = []
    for i in range(cfg.num_cameras):
        # Spread azimuths evenly with jitter, so the views of one performance really differ.
        az = (base + 2.0 * math.pi * i / cfg.num_cameras + rng.uniform(-0.3, 0.3)) % (2.0 * math.pi)
        el = rng.uniform(math.radians(-5.0), math.radians(35.0))
        roll = rng.uniform(math.radians(-6.0), math.radians(6.0))
        dist = rng.uniform(3.5, 6.0)
        # A raised arm reaches about 1.3 x body height; that extent fills 70-95 % of the frame.
        focal = rng.uniform(0.7, 0.95) * min(cfg.height, cfg.width) * dist / (1.3 * height_m)
        cx = cfg.width / 2.0 + rng.uniform(-0.05, 0.05) * cfg.width
        cy = cfg.height / 2.0 + rng.uniform(-0.05, 0.05) * cfg.height
        aim = target + rng.uniform(-0.1, 0.1, size=3)
        views.append([az, el, roll, dist, focal, cx, cy, *aim])
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


def _random_colour(rng: np.random.Generator, sat=(0.3, 1.0), val=(0.3, 1.0)) -> np.ndarray:
    hsv = np.array(
        [[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]], np.uint8
    )
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


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


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    tex = _texture(rng, height, width)
    if rng.uniform() < 0.5:  # overlay a second texture for more variety
        alpha = rng.uniform(0.2, 0.5)
        tex = (1.0 - alpha) * tex + alpha * _texture(rng, height, width)
    return np.clip(tex + rng.normal(0.0, 6.0, size=tex.shape), 0, 255).astype(np.float32)


_SHIFT = 4  # cv2 fixed-point bits, so thin strokes land at sub-pixel positions on tiny frames
_TORSO = tuple(
    keypoints.INDEX[n] for n in ("left_shoulder", "right_shoulder", "right_hip", "left_hip")
)


def _fixed(xy) -> tuple[int, int]:
    return int(round(xy[0] * (1 << _SHIFT))), int(round(xy[1] * (1 << _SHIFT)))


def _render(
    rng: np.random.Generator,
    cfg: WorldConfig,
    pose3d: np.ndarray,
    head: np.ndarray,
    body: Mapping[str, float],
    view: np.ndarray,
    shake: np.ndarray,
) -> np.ndarray:
    """uint8 [T, H, W, 3]: the person as shaded strokes over a shaking textured background, with lighting and noise."""
    t, height, width = cfg.num_frames, cfg.height, cfg.width
    margin = int(math.ceil(np.abs(shake).max())) + 2
    bg = _background(rng, height + 2 * margin, width + 2 * margin)
    # Colours are drawn per performance regardless of the action: appearance must carry no class information.
    bone_colour = [_random_colour(rng) for _ in keypoints.BONES]
    torso_colour = _random_colour(rng)
    head_colour = _random_colour(rng, sat=(0.1, 0.6))
    focal = float(view[4])
    pose2d = project(pose3d, view, shake)
    head2d = project(head[:, None, :], view, shake)[:, 0]
    depth = camera_depth(pose3d, view)
    head_depth = camera_depth(head, view)

    frames = np.empty((t, height, width, 3), np.float32)
    for f in range(t):
        # The background moves with the shake, like the keypoints.
        m = np.float32([[1, 0, shake[f, 0] - margin], [0, 1, shake[f, 1] - margin]])
        img = cv2.warpAffine(bg, m, (width, height), borderMode=cv2.BORDER_REFLECT)
        items = []  # (depth, draw) painted far to near
        for (i, k), colour in zip(keypoints.BONES, bone_colour):
            z = 0.5 * (depth[f, i] + depth[f, k])
            items.append((z, "bone", (i, k, colour)))
        items.append((depth[f, list(_TORSO)].mean() + 0.05, "torso", None))
        items.append((head_depth[f], "head", None))
        for z, kind, arg in sorted(items, key=lambda item: -item[0]):
            if z <= 0.05:
                continue  # behind the camera
            if kind == "bone":
                i, k, colour = arg
                thick = max(1.0, focal * body["limb_width"] / z)
                p, q = _fixed(pose2d[f, i]), _fixed(pose2d[f, k])
                # Shading: dark rim, body colour, light core.
                for scale, shade in ((1.0, 0.55), (0.7, 1.0), (0.3, 1.35)):
                    w = max(1, int(round(thick * scale)))
                    col = tuple(float(x) for x in np.clip(colour * shade, 0, 255))
                    cv2.line(img, p, q, col, w, cv2.LINE_AA, _SHIFT)
            elif kind == "torso":
                poly = np.array([_fixed(pose2d[f, i]) for i in _TORSO], np.int32)
                cv2.fillConvexPoly(
                    img, poly, tuple(float(x) for x in torso_colour * 0.8), cv2.LINE_AA, _SHIFT
                )
            else:
                r = max(1.0, focal * body["head_radius"] / z)
                centre = _fixed(head2d[f])
                for scale, shade in ((1.0, 0.6), (0.6, 1.0), (0.25, 1.3)):
                    col = tuple(float(x) for x in np.clip(head_colour * shade, 0, 255))
                    rad = max(1, int(round(r * scale * (1 << _SHIFT))))
                    cv2.circle(img, centre, rad, col, -1, cv2.LINE_AA, _SHIFT)
        frames[f] = img

    # Lighting: global gain, colour cast and a spatial ramp, flickering a little per frame; then sensor noise.
    gain = rng.uniform(0.6, 1.3) * rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ang = rng.uniform(0, 2 * math.pi)
    ramp = ((xx / width - 0.5) * math.cos(ang) + (yy / height - 0.5) * math.sin(ang)) * rng.uniform(
        0, 0.5
    )
    flicker = 1.0 + rng.normal(0.0, 0.03, size=(t, 1, 1, 1))
    frames = frames * gain * (1.0 + ramp)[None, :, :, None] * flicker
    frames += rng.normal(0.0, rng.uniform(0.0, 10.0), size=frames.shape)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------------
# Performances and examples.


def _performance(rng: np.random.Generator, cfg: WorldConfig, action: str):
    """One person doing `action`: joints [T, 17, 3], torso forward [T, 3], head centre [T, 3], body proportions."""
    scale = rng.uniform(0.8, 1.15)
    body = {k: v * scale * rng.uniform(0.95, 1.05) for k, v in _BODY.items()}
    times = np.arange(cfg.num_frames) / cfg.fps
    freq = rng.uniform(0.45, 0.95)  # cycles per second: the performance's speed
    phase = 2 * math.pi * freq * times + rng.uniform(0, 2 * math.pi)
    amplitude = rng.uniform(0.75, 1.2)  # style: how big the movement is
    angles, dx, dy = _action_angles(action, phase, amplitude)
    for key in _ANGLE_KEYS:
        # Style: a personal posture offset and a slow sway, both too slow to count as movement.
        sway = 2.0 * np.sin(
            2 * math.pi * rng.uniform(0.1, 0.3) * times + rng.uniform(0, 2 * math.pi)
        )
        angles[key] = angles[key] + rng.normal(0.0, 4.0) + sway
    angles["l_knee"] = np.maximum(angles["l_knee"], 0.0)  # knees never bend backwards
    angles["r_knee"] = np.maximum(angles["r_knee"], 0.0)
    yaw = rng.uniform(-math.pi, math.pi)
    origin = np.array([rng.uniform(-0.3, 0.3), 0.0, rng.uniform(-0.3, 0.3)])
    pose3d, fwd, head = _forward_kinematics(angles, body, yaw, origin, dx, dy)
    return pose3d, fwd, head, body, scale


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


def generate(config: WorldConfig, split: str, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Examples of one split of the world, `config.num_cameras` per performance, in a fixed order.

    Each performance draws from its own generator seeded by (seed, split, performance index), so the same arguments
    give identical arrays, and a performance does not depend on the ones before it.

    Args:
      config: the world's sizes (see `get_config`).
      split: "pretrain" or "test" (SEEN_ACTIONS), or "heldout" (HELDOUT_ACTIONS).
      seed: the world's seed.

    Yields:
      Dicts of numpy arrays with the keys in this module's docstring (`rgb` uint8; `to_contract` makes it float).
    """
    split_index = _split_index(split)
    actions = _SPLIT_ACTIONS[split]
    still_below, moving_above = config.moved_thresholds
    for perf in range(config.num_performances(split)):
        rng = np.random.default_rng(np.random.SeedSequence([seed, split_index, perf]))
        action = actions[perf % len(actions)]  # balanced classes
        pose3d, fwd, head, body, scale = _performance(rng, config, action)
        # Cameras aim at the body's middle: between the hips on the ground plane, at hip height.
        hips = pose3d[0, [keypoints.INDEX["left_hip"], keypoints.INDEX["right_hip"]]].mean(axis=0)
        target = np.array([hips[0], 0.85 * scale, hips[2]])
        views = _sample_cameras(rng, config, target, 1.75 * scale)
        signals = limb_signals(pose3d)
        moved = movement_flags(signals, still_below, moving_above)
        gaze3d = _gaze_points(pose3d, fwd, head, config.fps)
        for cam in range(config.num_cameras):
            view = views[cam].astype(np.float32)
            pair = (cam + 1 + rng.integers(config.num_cameras - 1)) % config.num_cameras
            view_pair = views[pair].astype(np.float32)
            shake = camera_shake(rng, config)
            # Project with the float32 views that are stored, so pose2d == project(pose3d, view, shake) exactly.
            pose3d32 = pose3d.astype(np.float32)
            yield {
                "rgb": _render(rng, config, pose3d, head, body, view, shake),
                "pose2d": project(pose3d32, view, shake),
                "pose3d": pose3d32,
                "view": view,
                "shake": shake,
                "pose2d_pair": project(pose3d32, view_pair),
                "view_pair": view_pair,
                "signals": signals,
                "moved": moved,
                "gaze": _normalised_gaze(gaze3d, view, shake, config),
                "label": np.int32(ACTIONS.index(action)),
                "performance_id": np.int32(perf),
                "camera_id": np.int32(cam),
            }


def feature_shapes(config: WorldConfig) -> dict[str, tuple[tuple[int, ...], type]]:
    """(shape, numpy dtype) of every example key of `generate`, for tf.data signatures and TFDS features."""
    t, h, w, k, l, v = (
        config.num_frames,
        config.height,
        config.width,
        keypoints.NUM_KEYPOINTS,
        keypoints.NUM_LIMBS,
        NUM_VIEW_FIELDS,
    )
    return {
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
    }


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
    out["rgb"] = tf.image.convert_image_dtype(tf.convert_to_tensor(example["rgb"]), tf.float32)
    for key in ("label", "performance_id", "camera_id", "moved"):
        if key in out:
            out[key] = tf.cast(out[key], tf.int32)
    return out


def as_dataset(config: WorldConfig, split: str, seed: int = 0):
    """The split as a `tf.data.Dataset` of contract dicts (rgb float32 in [0, 1]), generated on the fly.

    Args:
      config: the world's sizes.
      split: "pretrain", "test" or "heldout".
      seed: the world's seed.

    Returns:
      A finite tf.data.Dataset of dicts, in `generate`'s order.
    """
    import tensorflow as tf

    _split_index(split)  # fail here, not inside the iterator
    signature = {
        key: tf.TensorSpec(shape, tf.as_dtype(dtype))
        for key, (shape, dtype) in feature_shapes(config).items()
    }
    ds = tf.data.Dataset.from_generator(
        lambda: generate(config, split, seed), output_signature=signature
    )
    return ds.map(to_contract, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
