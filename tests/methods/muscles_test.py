"""Tests for edge_ssl.methods.muscles: the MoCo branch (exact momentum, ring-buffer queue), the masked body-signal
targets, flips that relabel limbs with the pixels, the ablation objectives, serialisation and MirroredStrategy.
"""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.configs import muscles_tiny
from edge_ssl.data import keypoints
from edge_ssl.keras import keras
from edge_ssl.losses import contrastive
from edge_ssl.methods import muscles

# Two logical CPUs, configured before TensorFlow initialises its devices (tf-keras's `_mimic_two_cpus` idea).
_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

BATCH = 4
LIMBS = keypoints.NUM_LIMBS
LEFT = [i for i, n in enumerate(keypoints.LIMB_NAMES) if n.startswith("left_")]
RIGHT = [i for i, n in enumerate(keypoints.LIMB_NAMES) if n.startswith("right_")]


def _config(**overrides) -> muscles.MusclesConfig:
    return muscles.MusclesConfig(**{**muscles_tiny.get_config().__dict__, **overrides})


def _examples(n: int = BATCH, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "rgb": rng.uniform(size=(n, 8, 32, 32, 3)).astype("float32"),
        "moved": rng.integers(-1, 2, size=(n, 8, LIMBS)).astype("int32"),
        "gaze": rng.uniform(size=(n, 8, 2)).astype("float32"),
    }


def _batch(method, n: int = BATCH, seed: int = 0) -> dict[str, tf.Tensor]:
    ex = _examples(n, seed)
    out = [
        method.prepare({k: v[i] for k, v in ex.items()}, tf.constant([seed, i], tf.int64))
        for i in range(n)
    ]
    return {k: tf.stack([o[k] for o in out]) for k in out[0]}


def _np_huber_mean(pred, target):
    """Per example: mean Huber over frames whose gaze is present (both coordinates >= 0)."""
    present = np.all(target >= 0, axis=-1)
    err = np.abs(pred - target)
    huber = np.where(err < 1.0, 0.5 * err**2, err - 0.5).sum(-1)
    return np.array(
        [h[p].sum() / (2 * p.sum()) if p.any() else 0.0 for h, p in zip(huber, present)]
    )


def _np_bce_mean(logits, labels):
    valid = labels >= 0
    bce = np.maximum(logits, 0) - logits * np.maximum(labels, 0) + np.log1p(np.exp(-np.abs(logits)))
    return np.array([b[v].mean() if v.any() else 0.0 for b, v in zip(bce, valid)])


class MusclesTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # One method for the tests that take no training step; one strategy per process (collective keys).
        cls.shared = muscles.build(_config())
        cls.strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def test_step_changes_every_trainable_variable_and_the_key_has_none(self):
        method = muscles.build(_config())
        self.assertEqual(method.key.trainable_variables, [])
        trained = method.query.trainable_variables + method.heads.trainable_variables
        before = [v.numpy().copy() for v in trained]
        losses = method.train_step(_batch(method), BATCH)
        self.assertEqual(set(losses), {"moco", "gaze", "movement", "total"})
        self.assertTrue(all(np.isfinite(float(v)) for v in losses.values()))
        unchanged = [v.name for v, b in zip(trained, before) if np.array_equal(v.numpy(), b)]
        self.assertEqual(unchanged, [])
        self.assertEqual(method.key.trainable_variables, [])

    def test_key_moves_exactly_by_momentum_and_normalises_with_its_own_batch_statistics(self):
        method = muscles.build(_config(key_momentum=0.9))
        keys, queries = method._momentum_pairs  # pylint: disable=protected-access
        self.assertLen(keys, len(method.query.trainable_variables))
        key_before = [k.numpy().copy() for k in keys]
        query_before = [q.numpy().copy() for q in queries]
        key_bn = method.key.get_layer("frame_bn1")
        self.assertIsInstance(key_bn, muscles.layers.MomentumBatchNormalization)
        stats_before = key_bn.moving_mean.numpy().copy()
        method.train_step(_batch(method), BATCH)
        for key, k0, q in zip(keys, key_before, queries):
            self.assertAllClose(key.numpy(), 0.9 * k0 + 0.1 * q.numpy(), rtol=1e-6, atol=1e-7)
        self.assertNotAllClose(queries[0].numpy(), query_before[0])
        # In training mode the frozen key's BN uses (and tracks) batch statistics, as MoCo's key encoder does.
        self.assertNotAllClose(key_bn.moving_mean.numpy(), stats_before)

    def test_queue_is_a_ring_buffer_of_each_steps_keys(self):
        method = muscles.build(_config(queue_size=6))
        initial = method.queue.keys.numpy().copy()
        b1, b2 = _batch(method, seed=1), _batch(method, seed=2)
        # The key encoder in training mode gives the same keys as inside the step that follows.
        k1 = method.key(b1["frame2"], training=True).numpy()
        method.train_step(b1, BATCH)
        self.assertAllClose(method.queue.keys.numpy()[:4], k1, atol=1e-6)
        self.assertAllEqual(method.queue.keys.numpy()[4:], initial[4:])
        self.assertEqual(int(method.queue.pointer.numpy()), 4)
        k2 = method.key(b2["frame2"], training=True).numpy()
        method.train_step(b2, BATCH)
        after = method.queue.keys.numpy()
        self.assertAllClose(after[4:6], k2[:2], atol=1e-6)
        self.assertAllClose(after[0:2], k2[2:4], atol=1e-6)
        self.assertAllClose(after[2:4], k1[2:4], atol=1e-6)
        self.assertEqual(int(method.queue.pointer.numpy()), 2)
        self.assertAllClose(np.linalg.norm(after, axis=1), np.ones(6), atol=1e-5)

    def test_missing_gaze_and_unknown_movement_never_move_the_loss(self):
        method = self.shared
        batch = dict(_batch(method))
        moved = batch["moved"].numpy()
        moved[0] = -1  # an example with no valid label contributes nothing
        moved[1, 0] = -1  # a whole frame unknown
        batch["moved"] = tf.constant(moved)
        gaze = batch["gaze"].numpy()
        gaze[:, 0] = -1.0  # missing
        gaze[:, 1, 1] = -1.0  # half missing counts as missing
        gaze[2] = -1.0
        batch["gaze"] = tf.constant(gaze)
        signals = {k: v.numpy() for k, v in method.predict_signals(batch["clip"]).items()}
        losses = method.losses(batch, BATCH, training=False)[0]
        self.assertAllClose(
            losses["movement"], _np_bce_mean(signals["moved"], moved).sum() / BATCH, atol=1e-6
        )
        self.assertAllClose(
            losses["gaze"], _np_huber_mean(signals["gaze"], gaze).sum() / BATCH, atol=1e-6
        )
        # What is left of a missing gaze point is ignored: moving it leaves every loss as it was.
        gaze[:, 1, 0] = 1.0 - gaze[:, 1, 0]
        perturbed = method.losses({**batch, "gaze": tf.constant(gaze)}, BATCH, training=False)[0]
        self.assertAllClose(perturbed, losses, atol=0)
        # Known labels do count: turning them unknown changes the loss (so the comparison above can fail).
        moved[1] = -1
        fewer = method.losses({**batch, "moved": tf.constant(moved)}, BATCH, training=False)[0]
        self.assertNotAllClose(fewer["movement"], losses["movement"])

    def test_flipped_clips_swap_left_and_right_limb_targets_with_the_pixels(self):
        method = muscles.build(_config(sequence_flip_prob=0.5))
        rgb = np.zeros((8, 32, 32, 3), np.float32)
        rgb[:, :, :16] = (
            1.0  # bright on the image's left: colour jitter keeps left brighter than right
        )
        moved = np.zeros((8, LIMBS), np.int32)
        moved[:, LEFT] = 1  # the left limbs move, the right ones do not
        moved[:, RIGHT[0]] = -1
        gaze = np.tile(np.float32([0.2, 0.6]), (8, 1))
        gaze[3] = -1.0
        example = {"rgb": rgb, "moved": moved, "gaze": gaze}
        seen = set()
        for seed in range(24):
            out = method.prepare(example, tf.constant([seed, 7], tf.int64))
            clip = out["clip"].numpy()
            flipped = clip[..., 16:, :].mean() > clip[..., :16, :].mean()
            seen.add(bool(flipped))
            expected = moved[:5][:, keypoints.LIMB_FLIP_PERMUTATION] if flipped else moved[:5]
            self.assertAllEqual(out["moved"], expected)
            self.assertAllEqual(
                out["moved"].numpy()[:, RIGHT if flipped else LEFT], np.ones((5, 4))
            )
            x = out["gaze"].numpy()[:, 0]
            present = np.all(out["gaze"].numpy() >= 0, axis=-1)
            self.assertAllClose(x[present], np.full(present.sum(), 0.8 if flipped else 0.2))
        self.assertEqual(seen, {False, True})

    def test_moment_negatives_are_distinct_frames_of_the_clip_away_from_the_querys(self):
        # Frame t is a flat grey of level t / 16, and no colour augmentation: each view's mean names its frame.
        method = muscles.build(
            _config(moment_negatives=3, moment_gap=4, jitter_prob=0.0, grayscale_prob=0.0)
        )
        levels = np.arange(12, dtype=np.float32) / 16.0
        example = {
            "rgb": np.broadcast_to(levels[:, None, None, None], (12, 32, 32, 3)).copy(),
            "moved": np.zeros((12, LIMBS), np.int32),
            "gaze": np.zeros((12, 2), np.float32),
        }
        starts, picked = set(), set()
        for seed in range(8):
            out = method.prepare(example, tf.constant([seed, 3], tf.int64))
            query = round(float(out["frame1"].numpy().mean()) * 16)
            self.assertEqual(round(float(out["frame2"].numpy().mean()) * 16), query)
            self.assertEqual(out["moments"].shape, (3, 32, 32, 3))
            frames = [round(float(m.mean()) * 16) for m in out["moments"].numpy()]
            self.assertLen(set(frames), 3, frames)
            self.assertTrue(all(abs(f - query) >= 4 for f in frames), (query, frames))
            starts.add(query)
            picked.update(frames)
        self.assertGreater(len(starts), 2)
        self.assertGreater(len(picked), 6)
        # The paper's MoCo views are the same with or without the option.
        paper = muscles.build(_config(jitter_prob=0.0, grayscale_prob=0.0))
        seed = tf.constant([5, 3], tf.int64)
        with_moments, without = method.prepare(example, seed), paper.prepare(example, seed)
        self.assertNotIn("moments", without)
        for key in without:
            self.assertAllEqual(with_moments[key], without[key])
        # A clip without enough far frames is an error that says what it needs.
        short = {k: v[:5] for k, v in example.items()}
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, "positions at least 4 frames from"
        ):
            method.prepare(short, seed)

    def test_moment_negatives_join_the_queue_as_each_querys_own_negatives(self):
        method = muscles.build(_config(moment_negatives=2))
        batch = _batch(method)
        self.assertEqual(batch["moments"].shape, (BATCH, 2, 32, 32, 3))
        losses = method.losses(batch, BATCH, training=False)[0]
        q = method.query(batch["frame1"], training=False)
        k = method.key(batch["frame2"], training=False)
        own = tf.reshape(method.key(tf.reshape(batch["moments"], [-1, 32, 32, 3])), [BATCH, 2, -1])
        tau = method.config.temperature
        expected = contrastive.info_nce_queue(q, k, method.queue.keys, tau, own_negatives=own)
        self.assertAllClose(losses["moco"], tf.reduce_sum(expected) / BATCH, atol=1e-5)
        queue_only = contrastive.info_nce_queue(q, k, method.queue.keys, tau)
        self.assertGreater(float(losses["moco"]), float(tf.reduce_sum(queue_only)) / BATCH)
        # A step trains and enqueues the positives' keys only.
        method.train_step(batch, BATCH)
        self.assertEqual(int(method.queue.pointer.numpy()), BATCH)

    @parameterized.named_parameters(
        ("moco_gaze", "moco_gaze", {"moco": 0.10, "gaze": 0.90}, "moved"),
        ("moco_movement", "moco_movement", {"moco": 0.95, "movement": 0.5}, "gaze"),
    )
    def test_ablation_objectives_drop_the_right_terms(self, objective, weights, unused):
        method = muscles.build(_config(objective=objective))
        self.assertEqual(method.config.loss_weights, weights)
        batch = _batch(method)
        losses = method.losses(batch, BATCH, training=False)[0]
        self.assertEqual(set(losses), {*weights, "total"})
        self.assertAllClose(losses["total"], sum(w * losses[t] for t, w in weights.items()))
        self.assertNotIn(unused, method.heads.output_names)
        # The dropped target does not reach the objective.
        changed = {**batch, unused: tf.zeros_like(batch[unused])}
        self.assertAllClose(method.losses(changed, BATCH, training=False)[0], losses, atol=0)
        # Every variable still gets a gradient (no head is built for a dropped term).
        method.train_step(batch, BATCH)

    def test_full_objective_weights_are_the_papers_and_configurable(self):
        self.assertEqual(
            self.shared.config.loss_weights, {"moco": 0.09, "gaze": 0.90, "movement": 0.009}
        )
        config = _config(moco_weight=1.0)
        self.assertEqual(config.loss_weights, {"moco": 1.0, "gaze": 0.90, "movement": 0.009})
        losses = self.shared.losses(_batch(self.shared), BATCH, training=False)[0]
        self.assertAllClose(
            losses["total"],
            0.09 * losses["moco"] + 0.90 * losses["gaze"] + 0.009 * losses["movement"],
        )

    def test_config_rejects_bad_values(self):
        for overrides, message in (
            ({"objective": "moco_only"}, "objective must be one of"),
            ({"objective": "moco_gaze", "movement_weight": 1.0}, "no term for the weights"),
            ({"gaze_weight": -1.0}, "weights must be >= 0"),
            ({"variant": "resnet50"}, "variant must be one of"),
            ({"temperature": 0.0}, "temperature"),
            ({"key_momentum": 1.0}, "key_momentum"),
            ({"cell": "rnn"}, "cell must be one of"),
            ({"sequence_flip_prob": 1.5}, "probabilities"),
            ({"crop_scale": (0.5, 0.2)}, "crop_scale"),
            ({"clip_frames": 0}, "clip_frames"),
            ({"moment_negatives": -1}, "moment_negatives must be >= 0"),
            ({"moment_gap": 0}, "moment_gap >= 1"),
            ({"steps": 0}, "steps"),
        ):
            with self.subTest(overrides=overrides):
                with self.assertRaisesRegex(ValueError, message):
                    _config(**overrides)

    def test_backbone_gives_l2_normalised_embeddings_and_round_trips(self):
        method = self.shared
        clips = _examples(2)["rgb"][:, :5]
        emb = method.embed(clips).numpy()
        self.assertEqual(emb.shape, (2, 64))
        self.assertAllClose(np.linalg.norm(emb, axis=1), [1.0, 1.0], atol=1e-5)
        # The backbone is the trained frame encoder, not a copy.
        frame_ids = {id(v) for v in method.frame.weights}
        self.assertTrue(all(id(v) in frame_ids for v in method.backbone.weights))
        clone = keras.Model.from_config(method.backbone.get_config())
        clone.set_weights(method.backbone.get_weights())
        self.assertAllClose(clone(clips, training=False), emb, atol=1e-6)
        self.assertIn("key", method.checkpoint_items())
        self.assertIn("queue", method.checkpoint_items())

    def test_mirrored_step_in_a_tf_function(self):
        strategy = self.strategy
        with strategy.scope():
            method = muscles.build(_config(key_momentum=0.9))
        batch = _batch(method)
        dataset = tf.data.Dataset.from_tensor_slices(batch).batch(BATCH)
        dist_batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
        keys, queries = method._momentum_pairs  # pylint: disable=protected-access
        key_before = [k.numpy().copy() for k in keys]

        @tf.function
        def step(b):
            per_replica = strategy.run(method.train_step, args=(b, BATCH))
            return {
                k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()
            }

        losses = step(dist_batch)
        self.assertTrue(all(np.isfinite(float(v)) for v in losses.values()))
        self.assertEqual(
            int(method.queue.pointer.numpy()), BATCH
        )  # keys gathered from both replicas
        for key, k0, q in zip(keys, key_before, queries):
            for local in strategy.experimental_local_results(key):
                self.assertAllClose(local, 0.9 * k0 + 0.1 * q.numpy(), rtol=1e-6, atol=1e-7)


if __name__ == "__main__":
    tf.test.main()
