"""Augmentations as `dict -> dict` TensorFlow ops, consistent across the modalities of one example.

Every random function takes an explicit `seed` (int32/int64 [2], for TensorFlow's stateless random ops), so the same
seed gives the same augmentation eagerly and inside `Dataset.map`, and a clip's modalities share one draw: the same
crop for `rgb`, `diff` and `flow`; a horizontal flip that also negates flow x, mirrors 2D keypoints and swaps their
left and right, swaps left and right limb signals and mirrors the gaze target; a temporal reversal that reverses every
per-frame key and negates the per-frame increments (`flow`, `diff`). `with_seeds` pairs a dataset with seeds.

Keys and layouts follow DESIGN.md: spatial keys [T, H, W, C]; `pose2d` [T, 17, 2] in pixels of this image;
`signals`/`moved` [T, L] in `keypoints.LIMBS` order; `gaze` [T, 2] in [0, 1] with -1 where missing. Keys an
augmentation does not know are passed through unchanged. `pose3d`, `view` and the other camera's `pose2d_pair` are
left alone by image-space augmentations, which do not move the world or the other camera.
"""

from collections.abc import Callable

import tensorflow as tf

from edge_ssl.data import keypoints

Example = dict[str, tf.Tensor]

SPATIAL_KEYS = ("rgb", "diff", "flow")
# Keys whose frame t holds the change from frame t-1 to frame t (zero at t=0); reversal negates and re-aligns them.
INCREMENT_KEYS = ("diff", "flow")
# Per-frame keys that reversal simply reverses. `signals` (angular speed) and `moved` describe the change into each
# frame, so reversal re-aligns them like increments but keeps their sign.
FRAME_KEYS = ("rgb", "pose2d", "pose2d_pair", "pose3d", "gaze", "confidence")


def _image_size(example: Example) -> tuple[tf.Tensor, tf.Tensor]:
    for key in SPATIAL_KEYS:
        if key in example:
            shape = tf.shape(example[key])
            return shape[-3], shape[-2]
    raise ValueError(f"example has no spatial key ({', '.join(SPATIAL_KEYS)}): {sorted(example)}")


def _shift_gaze(
    gaze: tf.Tensor, offset_xy: tf.Tensor, old_wh: tf.Tensor, new_wh: tf.Tensor
) -> tf.Tensor:
    valid = tf.reduce_all(gaze >= 0.0, axis=-1, keepdims=True)
    moved = (gaze * old_wh - offset_xy) / new_wh
    inside = tf.reduce_all((moved >= 0.0) & (moved <= 1.0), axis=-1, keepdims=True)
    return tf.where(valid & inside, moved, -tf.ones_like(gaze))


def crop(example: Example, top: tf.Tensor, left: tf.Tensor, size: tuple[int, int]) -> Example:
    """Crops every spatial key at (top, left) to `size` and moves the keypoints and gaze with the image.

    A gaze target that leaves the crop becomes missing (-1).
    """
    height, width = size
    old_h, old_w = _image_size(example)
    out = dict(example)
    for key in SPATIAL_KEYS:
        if key in out:
            out[key] = out[key][..., top : top + height, left : left + width, :]
    offset = tf.cast(tf.stack([left, top]), tf.float32)
    if "pose2d" in out:
        out["pose2d"] = out["pose2d"] - offset
    if "gaze" in out:
        old_wh = tf.cast(tf.stack([old_w, old_h]), tf.float32)
        out["gaze"] = _shift_gaze(
            out["gaze"], offset, old_wh, tf.constant([width, height], tf.float32)
        )
    return out


def resize(example: Example, size: tuple[int, int]) -> Example:
    """Resizes every spatial key to `size` (bilinear); flow vectors, keypoints scale with the image.

    Gaze is in [0, 1] of the image and does not change.
    """
    height, width = _image_size(example)
    scale_x = tf.cast(size[1], tf.float32) / tf.cast(width, tf.float32)
    scale_y = tf.cast(size[0], tf.float32) / tf.cast(height, tf.float32)
    out = dict(example)
    for key in SPATIAL_KEYS:
        if key in out:
            out[key] = tf.image.resize(out[key], size, method="bilinear")
    if "flow" in out:
        out["flow"] = out["flow"] * tf.stack([scale_x, scale_y])
    if "pose2d" in out:
        # Pixel centres at integers: x' + 0.5 = (x + 0.5) * scale.
        out["pose2d"] = (out["pose2d"] + 0.5) * tf.stack([scale_x, scale_y]) - 0.5
    return out


def _check_crop_size(example: Example, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    height, width = _image_size(example)
    tf.debugging.assert_greater_equal(
        height, size[0], message=f"crop height {size[0]} exceeds the image"
    )
    tf.debugging.assert_greater_equal(
        width, size[1], message=f"crop width {size[1]} exceeds the image"
    )
    return height, width


def center_crop(example: Example, size: tuple[int, int]) -> Example:
    """The evaluation crop: the centre `size` of every spatial key."""
    height, width = _check_crop_size(example, size)
    return crop(example, (height - size[0]) // 2, (width - size[1]) // 2, size)


def random_crop(example: Example, size: tuple[int, int], seed: tf.Tensor) -> Example:
    """One uniformly placed crop of `size`, the same for every spatial key of the example."""
    height, width = _check_crop_size(example, size)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    top = tf.random.stateless_uniform([], seeds[0], 0, height - size[0] + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, width - size[1] + 1, dtype=tf.int32)
    return crop(example, top, left, size)


def horizontal_flip(example: Example, label_flip=None) -> Example:
    """Mirrors the image left to right, and every key with it.

    Flow x is negated; 2D keypoints get x -> W - 1 - x (pixel centres at integers) and their left/right labels swapped;
    limb `signals` and `moved` swap left and right limbs; gaze x -> 1 - x where present. With `label_flip` (the
    label of each label's mirror image, e.g. `synthetic.ACTION_FLIP`: wave_left <-> wave_right), `label` follows;
    without it labels are taken to be mirror-symmetric and left alone.
    """
    out = dict(example)
    if label_flip is not None and "label" in out:
        out["label"] = tf.gather(tf.constant(label_flip, out["label"].dtype), out["label"])
    _, width = _image_size(example)
    for key in SPATIAL_KEYS:
        if key in out:
            out[key] = tf.reverse(out[key], axis=[-2])
    if "flow" in out:
        out["flow"] = out["flow"] * tf.constant([-1.0, 1.0], out["flow"].dtype)
    if "pose2d" in out:
        pose = tf.gather(out["pose2d"], keypoints.FLIP_PERMUTATION, axis=-2)
        x = tf.cast(width - 1, pose.dtype) - pose[..., 0:1]
        out["pose2d"] = tf.concat([x, pose[..., 1:]], axis=-1)
    if "confidence" in out:
        out["confidence"] = tf.gather(out["confidence"], keypoints.FLIP_PERMUTATION, axis=-1)
    for key in ("signals", "moved"):
        if key in out:
            out[key] = tf.gather(out[key], keypoints.LIMB_FLIP_PERMUTATION, axis=-1)
    if "gaze" in out:
        gaze = out["gaze"]
        valid = tf.reduce_all(gaze >= 0.0, axis=-1, keepdims=True)
        mirrored = tf.concat([1.0 - gaze[..., 0:1], gaze[..., 1:]], axis=-1)
        out["gaze"] = tf.where(valid, mirrored, gaze)
    return out


def _reverse_increments(x: tf.Tensor, negate: bool, first: float = 0.0) -> tf.Tensor:
    # Reversed frames r_t = f_{T-1-t}; the change into r_t is f_{T-1-t} - f_{T-t} = -(change into f_{T-t}).
    # Frame 0 has no predecessor: `first` fills it (0 for flow, diff and speeds; -1, unknown, for `moved`).
    body = tf.reverse(x[1:], axis=[0])
    head = tf.fill(tf.shape(x[:1]), tf.cast(first, x.dtype))
    return tf.concat([head, -body if negate else body], axis=0)


def temporal_reversal(example: Example) -> Example:
    """Plays the clip backwards: per-frame keys reversed, increments (`flow`, `diff`) reversed and negated."""
    out = dict(example)
    for key in FRAME_KEYS:
        if key in out:
            out[key] = tf.reverse(out[key], axis=[0])
    for key in INCREMENT_KEYS:
        if key in out:
            out[key] = _reverse_increments(out[key], negate=True)
    if "signals" in out:
        out["signals"] = _reverse_increments(out["signals"], negate=False)
    if "moved" in out:
        out["moved"] = _reverse_increments(out["moved"], negate=False, first=-1)
    return out


def _maybe(
    fn: Callable[[Example], Example], example: Example, seed: tf.Tensor, prob: float
) -> Example:
    apply = tf.random.stateless_uniform([], seed) < prob
    flipped = fn(example)
    return {key: tf.where(apply, flipped[key], example[key]) for key in example}


def random_flip(example: Example, seed: tf.Tensor, prob: float = 0.5, label_flip=None) -> Example:
    """`horizontal_flip` (with its `label_flip`) with probability `prob`."""
    return _maybe(lambda ex: horizontal_flip(ex, label_flip), example, seed, prob)


def random_reversal(example: Example, seed: tf.Tensor, prob: float = 0.5) -> Example:
    """`temporal_reversal` with probability `prob` (Cross and Learn's time flip, drawn once per example)."""
    return _maybe(temporal_reversal, example, seed, prob)


def channel_split(example: Example, seed: tf.Tensor) -> Example:
    """Cross and Learn's colour augmentation: one random channel of `rgb` copied into all three (training)."""
    channel = tf.random.stateless_uniform([], seed, 0, 3, dtype=tf.int32)
    out = dict(example)
    rgb = out["rgb"]
    out["rgb"] = tf.repeat(tf.gather(rgb, [channel], axis=-1), 3, axis=-1)
    return out


def channel_average(example: Example) -> Example:
    """The test-time counterpart of `channel_split`: the three channels of `rgb` averaged."""
    out = dict(example)
    out["rgb"] = tf.repeat(tf.reduce_mean(out["rgb"], axis=-1, keepdims=True), 3, axis=-1)
    return out


def random_grayscale(rgb: tf.Tensor, seed: tf.Tensor, prob: float) -> tf.Tensor:
    """Frames [..., 3] in grey (the luma in all three channels) with probability `prob`, drawn once for all of them
    (MoDist's and Muscles' random grayscale)."""
    grey = tf.repeat(tf.image.rgb_to_grayscale(rgb), 3, axis=-1)
    return tf.where(tf.random.stateless_uniform([], seed) < prob, grey, rgb)


def color_jitter(
    example: Example,
    seed: tf.Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
) -> Example:
    """Random brightness, contrast, saturation and hue of `rgb`, one draw for the whole clip; result in [0, 1].

    Only `rgb` changes: motion keys are not colours (MoDist: no colour jitter on flow). Compute `diff` after this.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    rgb = example["rgb"]
    if brightness:
        rgb = tf.image.adjust_brightness(
            rgb, tf.random.stateless_uniform([], seeds[0], -brightness, brightness)
        )
    if contrast:
        rgb = tf.image.adjust_contrast(
            rgb, tf.random.stateless_uniform([], seeds[1], 1.0 - contrast, 1.0 + contrast)
        )
    if saturation:
        rgb = tf.image.adjust_saturation(
            tf.clip_by_value(rgb, 0.0, 1.0),
            tf.random.stateless_uniform([], seeds[2], 1.0 - saturation, 1.0 + saturation),
        )
    if hue:
        rgb = tf.image.adjust_hue(
            tf.clip_by_value(rgb, 0.0, 1.0), tf.random.stateless_uniform([], seeds[3], -hue, hue)
        )
    out = dict(example)
    out["rgb"] = tf.clip_by_value(rgb, 0.0, 1.0)
    return out


def with_seeds(dataset: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """Pairs each element with its own stateless seed (int64 [2]), reproducibly from one integer `seed`."""
    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
    return tf.data.Dataset.zip((dataset, seeds))
