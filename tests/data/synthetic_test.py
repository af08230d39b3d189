"""Tests for edge_ssl.data.synthetic: determinism, the example contract, geometry, splits, and motion-only classes."""

import math

import numpy as np
from absl.testing import absltest

from edge_ssl.data import keypoints, synthetic
from edge_ssl.fewshot import metrics

_CONFIG = synthetic.get_config("tiny")


def _nearest_centroid_accuracy(x_train, y_train, x_test, y_test):
    """Accuracy of a nearest-centroid classifier on standardised features."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-8
    classes = np.unique(y_train)
    centroids = np.stack([((x_train - mean) / std)[y_train == c].mean(0) for c in classes])
    d = ((((x_test - mean) / std)[:, None] - centroids[None]) ** 2).sum(-1)
    return float(np.mean(classes[d.argmin(1)] == y_test))


def _reference_projection(points, view):
    """A plain pinhole camera built from rotation matrices, independent of synthetic.project's look-at code."""
    az, el, roll, dist, focal, cx, cy = (float(v) for v in view[:7])
    target = np.asarray(view[7:10], np.float64)
    rot_y = np.array([[math.cos(az), 0, math.sin(az)], [0, 1, 0], [-math.sin(az), 0, math.cos(az)]])
    rot_x = np.array(
        [[1, 0, 0], [0, math.cos(-el), -math.sin(-el)], [0, math.sin(-el), math.cos(-el)]]
    )
    m = rot_y @ rot_x
    # At azimuth = elevation = 0 the camera sits on +z looking at -z, image x along +x, image y along -y.
    right, down, fwd = m @ [1.0, 0, 0], m @ [0, -1.0, 0], m @ [0, 0, -1.0]
    right, down = (
        math.cos(roll) * right + math.sin(roll) * down,
        -math.sin(roll) * right + math.cos(roll) * down,
    )
    centre = target + dist * (m @ [0, 0, 1.0])
    p = np.asarray(points, np.float64) - centre
    z = p @ fwd
    return np.stack([focal * (p @ right) / z + cx, focal * (p @ down) / z + cy], -1)


class SyntheticTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.splits = {s: list(synthetic.generate(_CONFIG, s, seed=0)) for s in synthetic.SPLITS}

    def test_same_seed_gives_identical_arrays_and_other_seeds_differ(self):
        config = synthetic.get_config("tiny", performances=(3, 0, 1))
        first = list(synthetic.generate(config, "pretrain", seed=7))
        again = list(synthetic.generate(config, "pretrain", seed=7))
        other = list(synthetic.generate(config, "pretrain", seed=8))
        self.assertLen(first, 3 * config.num_cameras)
        for a, b, c in zip(first, again, other):
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
            for key in ("rgb", "pose3d", "view", "signals"):
                self.assertFalse(np.array_equal(a[key], c[key]), key)

    def test_a_performance_alone_equals_its_place_in_the_split(self):
        config = synthetic.get_config("tiny", performances=(3, 0, 1))
        split = list(synthetic.generate(config, "pretrain", seed=7))
        last = synthetic.performance(config, "pretrain", 2, seed=7)  # without drawing 0 and 1 first
        self.assertLen(last, config.num_cameras)
        for a, b in zip(split[2 * config.num_cameras :], last):
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        for index in (-1, 3):
            with self.assertRaisesRegex(ValueError, r"performance index must be in \[0, 3\)"):
                synthetic.performance(config, "pretrain", index)

    def test_every_key_has_its_shape_and_dtype(self):
        t, h, w = _CONFIG.num_frames, _CONFIG.height, _CONFIG.width
        expected = {
            "rgb": ((t, h, w, 3), np.uint8),
            "pose2d": ((t, 17, 2), np.float32),
            "pose3d": ((t, 17, 3), np.float32),
            "view": ((len(synthetic.VIEW_FIELDS),), np.float32),
            "shake": ((t, 2), np.float32),
            "pose2d_pair": ((t, 17, 2), np.float32),
            "view_pair": ((len(synthetic.VIEW_FIELDS),), np.float32),
            "signals": ((t, keypoints.NUM_LIMBS), np.float32),
            "moved": ((t, keypoints.NUM_LIMBS), np.int32),
            "gaze": ((t, 2), np.float32),
            "label": ((), np.int32),
            "performance_id": ((), np.int32),
            "camera_id": ((), np.int32),
            "room_id": ((), np.int32),
        }
        self.assertEqual(
            {k: (s, np.dtype(d)) for k, (s, d) in synthetic.feature_shapes(_CONFIG).items()},
            {k: (s, np.dtype(d)) for k, (s, d) in expected.items()},
        )
        for example in self.splits["pretrain"][:6] + self.splits["heldout"][:3]:
            self.assertEqual(set(example), set(expected))
            for key, (shape, dtype) in expected.items():
                value = np.asarray(example[key])
                self.assertEqual(value.shape, shape, key)
                self.assertEqual(value.dtype, dtype, key)
                if value.dtype.kind == "f":
                    self.assertTrue(np.all(np.isfinite(value)), key)

    def test_pose2d_is_the_projection_of_pose3d_with_the_view(self):
        for example in self.splits["pretrain"][:9]:
            pose3d, view, shake = example["pose3d"], example["view"], example["shake"]
            reference = _reference_projection(pose3d, view)
            np.testing.assert_allclose(example["pose2d"], reference + shake[:, None], atol=1e-2)
            np.testing.assert_allclose(
                example["pose2d_pair"],
                _reference_projection(pose3d, example["view_pair"]),
                atol=1e-2,
            )
            np.testing.assert_allclose(
                synthetic.project(pose3d, view, shake), example["pose2d"], atol=1e-4
            )
            self.assertTrue(np.all(synthetic.camera_depth(pose3d, view) > 0))
            # The camera frames the whole person.
            self.assertTrue(
                np.all((example["pose2d"] > -2) & (example["pose2d"] < _CONFIG.width + 2))
            )

    def test_views_of_one_performance_share_pose3d_and_differ_in_pose2d(self):
        examples = self.splits["pretrain"][: 2 * _CONFIG.num_cameras]
        by_perf = {}
        for example in examples:
            by_perf.setdefault(int(example["performance_id"]), []).append(example)
        self.assertLen(by_perf, 2)
        for views in by_perf.values():
            self.assertLen(views, _CONFIG.num_cameras)
            self.assertLen({int(v["camera_id"]) for v in views}, _CONFIG.num_cameras)
            for a in views[1:]:
                np.testing.assert_array_equal(a["pose3d"], views[0]["pose3d"])
                self.assertEqual(a["label"], views[0]["label"])
                self.assertGreater(
                    np.abs(a["pose2d"] - views[0]["pose2d"]).mean(), 0.02 * _CONFIG.width
                )
                self.assertGreater(np.abs(a["rgb"].astype(int) - views[0]["rgb"]).mean(), 5.0)
            for a in views:
                # The pair is another camera of the same performance, seen without shake.
                self.assertFalse(np.array_equal(a["view_pair"], a["view"]))
                partner = [b for b in views if np.array_equal(b["view"], a["view_pair"])]
                self.assertLen(partner, 1)
                np.testing.assert_allclose(
                    a["pose2d_pair"], partner[0]["pose2d"] - partner[0]["shake"][:, None], atol=1e-3
                )
        self.assertFalse(
            np.array_equal(by_perf[0][0]["pose3d"], by_perf[1][0]["pose3d"]),
            "different performances must differ",
        )

    def test_the_person_covers_a_tenth_of_the_frame_and_the_keypoints_fall_on_them(self):
        config = synthetic.get_config("tiny", performances=(10, 0, 5))
        examples = [
            e
            for split in ("pretrain", "heldout")
            for e in synthetic.generate(config, split, mask=True)
        ]
        cover = np.array([e["mask"].mean() for e in examples])
        self.assertGreaterEqual(cover.mean(), 0.10)
        self.assertGreaterEqual(cover.min(), 0.05)
        on, inside = 0, 0
        for e in examples:
            self.assertEqual(e["mask"].shape, (*e["rgb"].shape[:3], 1))
            self.assertEqual(e["mask"].dtype, np.uint8)
            # A keypoint's pixel, or one of its 8 neighbours (anti-aliased edges), is the person's.
            padded = np.pad(e["mask"][..., 0], ((0, 0), (1, 1), (1, 1)))
            xy = np.rint(e["pose2d"]).astype(int)
            for t, k in np.ndindex(*xy.shape[:2]):
                x, y = xy[t, k]
                if 0 <= x < config.width and 0 <= y < config.height:
                    inside += 1
                    on += padded[t, y : y + 3, x : x + 3].any()
        self.assertGreater(on / inside, 0.98)

    def test_the_person_stands_out_from_the_background(self):
        config = synthetic.get_config("tiny", performances=(6, 0, 0))
        for e, bare in zip(
            synthetic.generate(config, "pretrain", mask=True),
            synthetic.generate(config, "pretrain", person=False),
        ):
            # Everything but the person is identical without them.
            person = e["mask"][..., 0].astype(bool)
            np.testing.assert_array_equal(e["rgb"][~person], bare["rgb"][~person])
            grey = synthetic.luminance(e["rgb"].astype(np.float32))
            behind = synthetic.luminance(bare["rgb"].astype(np.float32))
            # Lighting scales both; at the darkest gain (0.7) the clothes' 40-level margin is 28.
            self.assertGreater(np.abs(grey - behind)[person].mean(), 20.0)

    def test_every_clutter_level_renders_and_rooms_come_from_one_shared_pool(self):
        for clutter in synthetic.CLUTTER_LEVELS:
            config = synthetic.get_config("tiny", performances=(2, 0, 1), clutter=clutter)
            examples = list(synthetic.generate(config, "pretrain", person=False))
            with self.subTest(clutter=clutter):
                self.assertLen(examples, 2 * config.num_cameras)
                rooms = {int(e["room_id"]) for e in examples}
                self.assertEqual(rooms == {-1}, clutter != 1)
                spatial = np.mean(
                    [e["rgb"][0].astype(np.float32).std(axis=(0, 1)).mean() for e in examples]
                )
                # Flat backgrounds hold only lighting ramps and noise; rooms and textures have structure.
                if clutter == 0:
                    self.assertLess(spatial, 15.0)
                else:
                    self.assertGreater(spatial, 5.0)
        config = synthetic.get_config("tiny", performances=(30, 0, 15), rooms=4)
        seen = {}
        for split in ("pretrain", "heldout"):
            for e in synthetic.generate(config, split, seed=3):
                seen.setdefault(int(e["room_id"]), set()).add((split, int(e["label"])))
        self.assertEqual(set(seen), {0, 1, 2, 3})
        for room, uses in seen.items():
            # Every room stands behind both splits and several actions: it says nothing about either.
            self.assertEqual({split for split, _ in uses}, {"pretrain", "heldout"}, room)
            self.assertGreater(len({label for _, label in uses}), 3, room)
        self.assertIs(synthetic.room_pool(3, 4), synthetic.room_pool(3, 4))
        self.assertNotEqual(synthetic.room_pool(3, 4)[0].back, synthetic.room_pool(4, 4)[0].back)

    def test_cameras_sit_in_a_frontal_arc_unless_asked_for_all_around(self):
        def relative_azimuths(config):
            out = []
            for e in synthetic.generate(config, "pretrain"):
                pose = e["pose3d"][0].astype(np.float64)
                left = pose[keypoints.INDEX["left_hip"]] - pose[keypoints.INDEX["right_hip"]]
                facing = np.cross(left, [0.0, 1.0, 0.0])
                az = float(e["view"][0])
                towards_camera = np.array([math.sin(az), 0.0, math.cos(az)])
                cos = facing @ towards_camera / np.linalg.norm(facing)
                out.append(math.degrees(math.acos(np.clip(cos, -1.0, 1.0))))
            return np.array(out)

        frontal = relative_azimuths(synthetic.get_config("tiny", performances=(20, 0, 0)))
        # The hips' facing carries the posture noise (a few degrees) on top of the arc's +-60.
        self.assertLess(frontal.max(), 70.0)
        around = relative_azimuths(
            synthetic.get_config("tiny", performances=(20, 0, 0), camera_arc_deg=360.0)
        )
        self.assertGreater(around.max(), 120.0)

    def test_every_action_moves_at_least_fifteen_percent_of_the_frame(self):
        config = synthetic.get_config("tiny", performances=(40, 0, 20))
        excursion = {}
        for split in ("pretrain", "heldout"):
            for e in synthetic.generate(config, split):
                pose = e["pose2d"] - e["shake"][:, None, :]
                largest = (pose.max(axis=0) - pose.min(axis=0)).max() / config.height
                excursion.setdefault(synthetic.ACTIONS[e["label"]], []).append(largest)
        self.assertEqual(set(excursion), set(synthetic.ACTIONS))
        for action, values in excursion.items():
            self.assertGreaterEqual(np.median(values), 0.15, action)

    def test_action_flip_is_an_involution_that_mirrors_left_and_right_actions(self):
        flip = synthetic.ACTION_FLIP
        np.testing.assert_array_equal(flip[flip], np.arange(synthetic.NUM_ACTIONS))
        name = {a: synthetic.ACTIONS[flip[i]] for i, a in enumerate(synthetic.ACTIONS)}
        self.assertEqual(name["wave_left"], "wave_right")
        self.assertEqual(name["kick_right"], "kick_left")
        self.assertEqual(name["clap"], "clap")
        config = synthetic.get_config("tiny", performances=(30, 0, 0))
        idx = keypoints.INDEX
        checked = 0
        for e in synthetic.generate(config, "pretrain"):
            action = synthetic.ACTIONS[e["label"]]
            if action not in ("wave_left", "wave_right", "kick_left", "kick_right"):
                continue
            part = "wrist" if action.startswith("wave") else "ankle"

            def moving_side(pose):
                speed = {
                    s: np.abs(np.diff(pose[:, idx[f"{s}_{part}"]], axis=0)).sum()
                    for s in ("left", "right")
                }
                return max(speed, key=speed.get)

            pose = e["pose2d"] - e["shake"][:, None, :]
            self.assertEqual(moving_side(pose), action.split("_")[1])
            mirrored = pose[:, keypoints.FLIP_PERMUTATION].copy()
            mirrored[..., 0] = config.width - 1 - mirrored[..., 0]
            self.assertEqual(
                moving_side(mirrored), synthetic.ACTIONS[flip[e["label"]]].split("_")[1]
            )
            checked += 1
        self.assertGreaterEqual(checked, 30)

    def test_time_reversed_pairs_share_their_frames_but_not_their_order(self):
        config = synthetic.get_config("tiny", performances=(200, 0, 100))
        idx = keypoints.INDEX
        trends, levels = {}, {}
        for split in ("pretrain", "heldout"):
            for e in synthetic.generate(config, split, render=False):  # the poses alone
                if e["camera_id"] != 0:
                    continue
                action = synthetic.ACTIONS[e["label"]]
                pose = e["pose3d"]
                # Hip height for the squat pair, wrist height for the arms pair.
                joint = "left_hip" if "squat" in action or "stand" in action else "left_wrist"
                y = pose[:, idx[joint], 1]
                trends.setdefault(action, []).append(y[-1] - y[0])
                levels.setdefault(action, []).append(y)
        for first, second in synthetic.TIME_REVERSED:
            with self.subTest(pair=(first, second)):
                # Opposite directions in time...
                self.assertLess(np.median(trends[first]) * np.median(trends[second]), 0.0)
                # ...through the same poses: a single frame's height has the same distribution.
                a, b = np.concatenate(levels[first]), np.concatenate(levels[second])
                spread = max(a.std(), b.std())
                self.assertLess(abs(a.mean() - b.mean()), 0.25 * spread)
                self.assertLess(abs(np.median(a) - np.median(b)), 0.3 * spread)

    def test_heldout_classes_never_appear_in_pretrain(self):
        self.assertGreaterEqual(len(synthetic.HELDOUT_ACTIONS), 5)
        self.assertGreaterEqual(synthetic.NUM_ACTIONS, 12)
        self.assertEmpty(set(synthetic.SEEN_ACTIONS) & set(synthetic.HELDOUT_ACTIONS))
        heldout = {synthetic.ACTIONS.index(a) for a in synthetic.HELDOUT_ACTIONS}
        labels = {s: {int(e["label"]) for e in examples} for s, examples in self.splits.items()}
        self.assertEmpty(labels["pretrain"] & heldout)
        self.assertEmpty(labels["test"] & heldout)
        self.assertEqual(labels["heldout"], heldout)
        self.assertEqual(labels["pretrain"], set(range(len(synthetic.SEEN_ACTIONS))))

    def test_actions_differ_by_motion_not_by_colour(self):
        def features(examples):
            signals = np.stack(
                [
                    np.concatenate([e["signals"][1:].mean(0), e["signals"][1:].max(0)])
                    for e in examples
                ]
            )
            colour = np.stack([e["rgb"].reshape(-1, 3).mean(0) for e in examples])
            return signals, colour, np.array([e["label"] for e in examples])

        train_signals, train_colour, train_y = features(self.splits["pretrain"])
        test_signals, test_colour, test_y = features(self.splits["test"])
        chance = 1.0 / len(synthetic.SEEN_ACTIONS)
        motion = _nearest_centroid_accuracy(train_signals, train_y, test_signals, test_y)
        colour = _nearest_centroid_accuracy(train_colour, train_y, test_colour, test_y)
        self.assertGreater(motion, 5 * chance)
        self.assertLess(colour, 3 * chance)
        # Mirrored actions move mirrored limbs.
        mean = {
            a: np.mean(
                [
                    e["signals"]
                    for e in self.splits["pretrain"]
                    if e["label"] == synthetic.ACTIONS.index(a)
                ],
                axis=(0, 1),
            )
            for a in ("wave_left", "wave_right", "kick_left", "kick_right")
        }
        limb = keypoints.LIMB_NAMES.index
        self.assertGreater(
            mean["wave_left"][limb("left_forearm")], 3 * mean["wave_left"][limb("right_forearm")]
        )
        self.assertGreater(
            mean["wave_right"][limb("right_forearm")], 3 * mean["wave_right"][limb("left_forearm")]
        )
        self.assertGreater(
            mean["kick_left"][limb("left_shin")], 3 * mean["kick_left"][limb("right_shin")]
        )
        self.assertGreater(
            mean["kick_right"][limb("right_thigh")], 3 * mean["kick_right"][limb("left_thigh")]
        )

    def test_moved_follows_the_two_signal_thresholds(self):
        still_below, moving_above = _CONFIG.moved_thresholds
        self.assertLess(still_below, moving_above)
        counts = np.zeros(3, int)
        for example in self.splits["pretrain"]:
            signals, moved = example["signals"], example["moved"]
            self.assertTrue(np.all(np.isin(moved, (-1, 0, 1))))
            np.testing.assert_array_equal(signals[0], 0.0)
            np.testing.assert_array_equal(moved[0], -1)
            self.assertTrue(np.all(signals >= 0))
            s, m = signals[1:], moved[1:]
            np.testing.assert_array_equal(m == 1, s > moving_above)
            np.testing.assert_array_equal(m == 0, s < still_below)
            counts += [np.sum(m == v) for v in (-1, 0, 1)]
        self.assertTrue(np.all(counts > 0), f"every flag value should occur: {counts}")

    def test_signals_are_limb_angular_speeds(self):
        example = self.splits["pretrain"][0]
        pose = example["pose3d"].astype(np.float64)
        a, b = keypoints.LIMB_ENDPOINTS[2]  # left forearm
        d = pose[:, b] - pose[:, a]
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        angle = np.arccos(np.clip(np.sum(d[1:] * d[:-1], -1), -1, 1))
        np.testing.assert_allclose(example["signals"][1:, 2], angle, atol=1e-3)

    def test_gaze_is_in_the_image_or_minus_one(self):
        valid = 0
        for example in self.splits["pretrain"] + self.splits["heldout"]:
            gaze = example["gaze"]
            outside = np.all(gaze == -1.0, axis=-1)
            self.assertTrue(np.all((gaze[~outside] >= 0.0) & (gaze[~outside] <= 1.0)))
            valid += int(np.sum(~outside))
            if example["label"] == synthetic.ACTIONS.index("wave_left"):
                # A waving person looks at the waving hand.
                wrist = example["pose2d"][:, keypoints.INDEX["left_wrist"]] / [
                    _CONFIG.width,
                    _CONFIG.height,
                ]
                np.testing.assert_allclose(gaze[~outside], wrist[~outside], atol=0.1)
        self.assertGreater(valid, 0.5 * len(self.splits["pretrain"]) * _CONFIG.num_frames)

    def test_rgb_shows_a_moving_person_over_a_textured_background(self):
        for example in self.splits["pretrain"][:6]:
            rgb = example["rgb"].astype(np.float32)
            self.assertGreater(rgb.std(), 10.0)
            # The person moves, so consecutive frames differ beyond noise at the limbs.
            self.assertGreater(np.abs(np.diff(rgb, axis=0)).max(), 60.0)

    def test_camera_shake_is_a_smooth_drift_with_the_same_spread_at_every_size(self):
        rng = np.random.default_rng(0)
        for name in ("tiny", "small", "base"):
            config = synthetic.get_config(name)
            side, t = min(config.height, config.width), config.num_frames
            drifts = np.stack([synthetic.camera_shake(rng, config) for _ in range(2000)])
            with self.subTest(size=name):
                self.assertEqual(drifts.shape[1:], (t, 2))
                self.assertEqual(drifts.dtype, np.float32)
                np.testing.assert_array_equal(drifts[:, 0], 0.0)
                spread = synthetic.SHAKE_FRACTION * side
                # Frame to frame the camera moves a little; over the clip it drifts by about `spread`.
                np.testing.assert_allclose(
                    np.diff(drifts, axis=1).std(), spread / math.sqrt(t), rtol=0.05
                )
                np.testing.assert_allclose(
                    drifts[:, -1].std(), spread * math.sqrt((t - 1) / t), rtol=0.1
                )

    def test_held_out_actions_show_in_frame_differences(self):
        # A hand-made motion-energy map (mean |frame difference| per pixel) finds clips of the same held-out action
        # across performers, cameras and backgrounds; with a fresh shake offset every frame it found 0.40.
        config = synthetic.get_config("tiny", performances=(0, 0, 60))
        examples = list(synthetic.generate(config, "heldout", seed=0))
        rgb = np.stack([e["rgb"] for e in examples]).astype(np.float32)
        energy = np.abs(np.diff(rgb, axis=1)).mean(axis=(1, 4)).reshape(len(rgb), -1)
        energy -= energy.mean(0)
        labels = [e["label"] for e in examples]
        # Grouped by performance: a clip's nearest neighbour is never another camera of its own performance.
        performance = [e["performance_id"] for e in examples]
        accuracy = metrics.knn_accuracy(energy, labels, performance, k=1)
        self.assertGreater(accuracy, 0.5)  # chance: 0.2

    def test_config_validates_sizes_names_and_splits(self):
        self.assertEqual(
            (synthetic.get_config("small").num_frames, synthetic.get_config("small").height),
            (16, 112),
        )
        self.assertEqual(synthetic.get_config("base").num_frames, 32)
        for bad in (
            dict(num_frames=1),
            dict(height=8),
            dict(width=0),
            dict(num_cameras=1),
            dict(performances=(1, 2)),
            dict(performances=(1, -1, 2)),
            dict(moved_min_deg_per_s=50.0, moved_max_deg_per_s=40.0),
        ):
            with self.assertRaises(ValueError, msg=str(bad)):
                synthetic.get_config("tiny", **bad)
        with self.assertRaisesRegex(ValueError, "unknown synthetic world size"):
            synthetic.get_config("huge")
        with self.assertRaisesRegex(ValueError, "unknown WorldConfig fields"):
            synthetic.get_config("tiny", frames=8)
        with self.assertRaisesRegex(ValueError, "unknown split"):
            next(synthetic.generate(_CONFIG, "train"))

    def test_as_dataset_gives_the_contract(self):
        config = synthetic.get_config("tiny", performances=(1, 0, 0))
        expected = list(synthetic.generate(config, "pretrain", seed=3))
        got = list(synthetic.as_dataset(config, "pretrain", seed=3).as_numpy_iterator())
        self.assertLen(got, len(expected))
        for a, b in zip(got, expected):
            self.assertEqual(a["rgb"].dtype, np.float32)
            self.assertBetween(float(a["rgb"].min()), 0.0, 1.0)
            self.assertBetween(float(a["rgb"].max()), 0.0, 1.0)
            np.testing.assert_allclose(a["rgb"], b["rgb"] / 255.0, atol=1e-6)
            self.assertEqual(a["label"].dtype, np.int32)
            np.testing.assert_array_equal(a["pose2d"], b["pose2d"])

    def test_a_split_stacks_into_arrays_in_its_order(self):
        examples = self.splits["heldout"]
        stacked = synthetic.stack_examples(iter(examples), ("pose2d", "label"))
        self.assertEqual(stacked["pose2d"].shape, (len(examples),) + examples[0]["pose2d"].shape)
        np.testing.assert_array_equal(stacked["label"], [e["label"] for e in examples])
        np.testing.assert_array_equal(stacked["pose2d"][-1], examples[-1]["pose2d"])
        with self.assertRaisesRegex(ValueError, "an example has no 'flow'"):
            synthetic.stack_examples(examples, ("rgb", "flow"))
        with self.assertRaisesRegex(ValueError, "no examples"):
            synthetic.stack_examples([], ("rgb",))

    def test_a_pose_world_draws_no_pixels_and_keeps_the_performances_and_cameras(self):
        config = synthetic.get_config("tiny", performances=(3, 0, 2))
        for split in ("pretrain", "heldout"):
            rendered = list(synthetic.generate(config, split, seed=4))
            poses = list(synthetic.generate(config, split, seed=4, render=False))
            self.assertLen(poses, len(rendered))
            for a, b in zip(poses, rendered):
                self.assertNotIn("rgb", a)
                self.assertEqual(set(a), set(b) - {"rgb"})
                for key in ("pose3d", "view", "label", "performance_id", "camera_id", "signals"):
                    np.testing.assert_array_equal(a[key], b[key])
                # Its own shake, and pose2d is still the projection with it.
                np.testing.assert_allclose(
                    a["pose2d"], synthetic.project(a["pose3d"], a["view"], a["shake"]), atol=1e-4
                )
        dataset = synthetic.as_dataset(config, "heldout", seed=4, render=False)
        first = next(dataset.as_numpy_iterator())
        self.assertNotIn("rgb", first)
        self.assertEqual(first["label"].dtype, np.int32)


if __name__ == "__main__":
    absltest.main()
