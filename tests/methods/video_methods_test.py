"""Tests for the video methods' contracts: Cross and Learn and MoDist build, prepare, step and serialise."""

import dataclasses

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.configs import cross_and_learn_tiny, modist_paper, modist_small, modist_tiny
from edge_ssl.data import augment
from edge_ssl.data import motion as motion_lib
from edge_ssl.keras import keras
from edge_ssl.losses import contrastive, cross_modal
from edge_ssl.methods import cross_and_learn, modist, views

BATCH = 4


def _clips(n: int = BATCH, seed: int = 0) -> dict[str, np.ndarray]:
    return {"rgb": np.random.default_rng(seed).uniform(size=(n, 8, 32, 32, 3)).astype("float32")}


def _batch(method, n: int = BATCH, seed: int = 0) -> dict[str, tf.Tensor]:
    dataset = tf.data.Dataset.from_tensor_slices(_clips(n, seed))
    return next(iter(augment.with_seeds(dataset, seed).map(method.prepare).batch(n)))


def _batch_nce(query, key, temperature: float) -> float:
    """InfoNCE of each query against its own key, the batch's other keys its negatives (numpy)."""
    logits = np.matmul(query, np.transpose(key)) / temperature
    return -np.mean(np.diag(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))))


def _traceable_cross_and_learn(**overrides):
    """Cross and Learn whose `prepare` output can be traced back to the clip: no channel split, no time flip, no
    resize; the window picked at random rather than for its motion."""
    fields = dict(channel_split=False, time_flip=False, scale_size=None, high_motion=False)
    return _build("cross_and_learn", **{**fields, **overrides})


def _build(name, **overrides):
    if name == "cross_and_learn":
        config = cross_and_learn_tiny.get_config()
        return cross_and_learn.build(
            cross_and_learn.CrossAndLearnConfig(**{**config.__dict__, **overrides})
        )
    config = modist_tiny.get_config()
    # No warm-up, so that the first step already moves the weights.
    overrides = {"warmup_fraction": 0.0, **overrides}
    return modist.build(modist.MoDistConfig(**{**config.__dict__, **overrides}))


METHODS = (("cross_and_learn", "cross_and_learn"), ("modist", "modist"))


class VideoMethodsTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(*METHODS)
    def test_step_changes_every_trainable_variable_and_no_key_encoder_gets_gradients(self, name):
        method = _build(name)
        batch = _batch(method)
        trained = [v for m in method.encoders.values() for v in m.trainable_variables]
        before = [v.numpy().copy() for v in trained]
        # Two steps: MoDist's residual branches start behind a zero BN scale, so their first gradient is zero.
        method.train_step(batch, BATCH)
        losses = method.train_step(batch, BATCH)
        self.assertIn("total", losses)
        self.assertTrue(all(np.isfinite(float(v)) for v in losses.values()))
        unchanged = [v.name for v, b in zip(trained, before) if np.array_equal(v.numpy(), b)]
        self.assertEqual(unchanged, [])
        # Momentum (key) encoders are never trained by an optimizer.
        for item in method.checkpoint_items().values():
            if isinstance(item, keras.Model) and item.name.endswith("_key"):
                self.assertEqual(item.trainable_variables, [])

    @parameterized.named_parameters(*METHODS)
    def test_weight_decay_is_coupled_l2_on_the_papers_variables(self, name):
        # The same first step from the same weights, with and without decay: the gradients are equal, so the runs
        # differ by the decay alone. Coupled, it is part of the gradient the momentum accumulates: the momentum
        # buffer differs by -lr * wd * w and the weights by -lr * wd * w (Nesterov: (1 + momentum) times that), on
        # every variable for Cross and Learn and on all but BN's for MoDist. (Keras's decoupled decay moves the
        # weights alike on a first step, but never enters the momentum.)
        decay = 0.5
        no_dropout = (
            {"dropout": 0.0} if name == "cross_and_learn" else {}
        )  # the same masks in both runs
        methods = [_build(name, weight_decay=wd, **no_dropout) for wd in (decay, 0.0)]
        models = [
            [m for m in method.checkpoint_items().values() if isinstance(m, keras.Model)]
            for method in methods
        ]
        for source, target in zip(*models):
            target.set_weights(source.get_weights())
        config = methods[0].config
        batch = _batch(methods[0])
        trained = [[v for m in x.encoders.values() for v in m.trainable_variables] for x in methods]
        before = [v.numpy().copy() for v in trained[0]]
        for method in methods:
            method.train_step(batch, BATCH)
        slots = [{v.name: v for v in x.optimizers["sgd"].variables} for x in methods]
        lr = config.learning_rate
        step = lr * (1.0 + config.momentum if name == "modist" else 1.0)  # MoDist's SGD is Nesterov
        decayed = 0
        for with_decay, without, w0 in zip(*trained, before):
            exempt = name == "modist" and with_decay.name.split("/")[-1] in ("gamma:0", "beta:0")
            decayed += int(not exempt)
            momentum = [x[f"SGD/m/{with_decay.name}"].numpy() for x in slots]
            self.assertAllClose(
                momentum[0] - momentum[1],
                np.zeros_like(w0) if exempt else -lr * decay * w0,
                atol=1e-5,
                msg=f"momentum of {with_decay.name}",
            )
            self.assertAllClose(
                with_decay.numpy() - without.numpy(),
                np.zeros_like(w0) if exempt else -step * decay * w0,
                atol=1e-5,
                msg=with_decay.name,
            )
        self.assertGreater(decayed, 0)

    def test_modist_key_encoders_move_only_by_the_exact_momentum_update(self):
        method = _build("modist", key_momentum=0.9)
        batch = _batch(method)
        pairs = method._momentum_pairs  # pylint: disable=protected-access
        query_before = [v.numpy().copy() for v in pairs[0][1]]
        key_before = [v.numpy().copy() for v in pairs[0][0]]
        self.assertEqual(method.visual_key.trainable_variables, [])
        method.train_step(batch, BATCH)
        queries = [v.numpy() for v in pairs[0][1]]
        for key, k0, q1 in zip(pairs[0][0], key_before, queries):
            self.assertAllClose(key.numpy(), 0.9 * k0 + 0.1 * q1, rtol=1e-6, atol=1e-7)
        self.assertNotAllClose(queries[0], query_before[0])

    def test_modist_key_encoders_normalise_with_batch_statistics_like_the_queries(self):
        # Keys and queries start with the same weights, so in training mode they must give the same codes. A frozen
        # Keras BN would use its never-updated moving statistics instead and the codes would differ.
        method = _build("modist")
        batch = _batch(method)
        self.assertAllClose(
            method.visual_key(batch["rgb1"], training=True),
            method.visual_query(batch["rgb1"], training=True),
            atol=1e-5,
        )
        self.assertAllClose(
            method.motion_key(batch["motion1"], training=True),
            method.motion_query(batch["motion1"], training=True),
            atol=1e-5,
        )

    def test_modist_queues_receive_the_keys_of_the_step(self):
        method = _build("modist")
        batch = _batch(method)
        before = method.visual_queue.keys.numpy().copy()
        method.train_step(batch, BATCH)
        after = method.visual_queue.keys.numpy()
        self.assertNotAllClose(after[:BATCH], before[:BATCH])
        self.assertAllEqual(after[BATCH:], before[BATCH:])
        self.assertAllClose(np.linalg.norm(after[:BATCH], axis=1), np.ones(BATCH), atol=1e-5)
        self.assertEqual(int(method.visual_queue.pointer.numpy()), BATCH)

    @parameterized.named_parameters(*METHODS)
    def test_backbone_gives_l2_normalised_embeddings_and_round_trips(self, name):
        method = _build(name)
        frames = method.backbone.input_shape[1]
        clips = _clips(2)["rgb"][:, :frames]
        emb = method.embed(clips).numpy()
        self.assertEqual(emb.ndim, 2)
        self.assertAllClose(np.linalg.norm(emb, axis=1), [1.0, 1.0], atol=1e-5)
        clone = keras.Model.from_config(method.backbone.get_config())
        clone.set_weights(method.backbone.get_weights())
        self.assertAllClose(clone(clips, training=False), emb, atol=1e-6)

    @parameterized.named_parameters(*METHODS)
    def test_prepare_is_seeded(self, name):
        method = _build(name)
        a, b = _batch(method, seed=3), _batch(method, seed=3)
        for key in a:
            self.assertAllEqual(a[key], b[key])
        c = _batch(method, seed=4)
        self.assertNotAllClose(
            a["rgb" if name == "cross_and_learn" else "rgb1"],
            c["rgb" if name == "cross_and_learn" else "rgb1"],
        )

    def test_cross_and_learn_prepare_pairs_the_centre_frame_with_its_motion_stack(self):
        method = _traceable_cross_and_learn()
        clip = _clips(1)["rgb"][0]
        out = method.prepare({"rgb": tf.constant(clip)}, tf.constant([0, 0], tf.int64))
        rgb, motion = out["rgb"].numpy(), out["motion"].numpy()
        self.assertEqual(motion.shape, (32, 32, 12))
        # Find the window: the RGB frame is the window's centre (start + 2), possibly mirrored.
        for start in range(4):
            for flip in (False, True):
                frames = clip[start : start + 5, :, ::-1] if flip else clip[start : start + 5]
                if np.allclose(rgb, frames[2]):
                    self.assertAllClose(motion[..., :3], frames[1] - frames[0], atol=1e-6)
                    self.assertAllClose(motion[..., 9:], frames[4] - frames[3], atol=1e-6)
                    return
        self.fail("the RGB input is no window's centre frame")

    def test_cross_and_learn_grey_differences_without_mean_feed_the_motion_net_as_they_are(self):
        method = _traceable_cross_and_learn(differences="grey", subtract_motion_mean=False)
        self.assertEqual(method.config.motion_channels, 4)
        self.assertEqual(method.motion_net.input_shape[-1], 4)
        self.assertNotIn("submean", " ".join(l.name for l in method.motion_net.layers))
        self.assertIn(
            "submean", " ".join(l.name for l in _build("cross_and_learn").motion_net.layers)
        )
        clip = _clips(1)["rgb"][0]
        out = method.prepare({"rgb": tf.constant(clip)}, tf.constant([0, 0], tf.int64))
        rgb, stack = out["rgb"].numpy(), out["motion"].numpy()
        self.assertEqual(stack.shape, (32, 32, 4))
        luma = lambda x: x @ np.float32([0.299, 0.587, 0.114])
        for start in range(4):
            for flip in (False, True):
                frames = clip[start : start + 5, :, ::-1] if flip else clip[start : start + 5]
                if np.allclose(rgb, frames[2]):
                    self.assertAllClose(stack[..., 0], luma(frames[1]) - luma(frames[0]), atol=2e-3)
                    self.assertAllClose(stack[..., 3], luma(frames[4]) - luma(frames[3]), atol=2e-3)
                    return
        self.fail("the RGB input is no window's centre frame")

    def test_modist_grey_differences_are_the_luma_differences_of_the_frames(self):
        method = _build("modist", motion="diff", differences="grey", jitter_prob=0.0)
        self.assertEqual(method.motion.input_shape[-1], 1)
        self.assertEqual(_build("modist", motion="diff").motion.input_shape[-1], 3)
        # Frames of one colour each, so that neither the crop nor the flip changes what a difference is.
        colours = np.random.default_rng(1).uniform(size=(8, 1, 1, 3)).astype(np.float32)
        clip = np.broadcast_to(colours, (8, 32, 32, 3)).copy()
        out = method.prepare({"rgb": tf.constant(clip)}, tf.constant([0, 0], tf.int64))
        motion = out["motion1"].numpy()
        self.assertEqual(motion.shape[-1], 1)
        luma = (colours[:, 0, 0] @ np.float32([0.299, 0.587, 0.114])).ravel()
        steps = np.concatenate([[0.0], np.diff(luma)])
        # Each value is one of the clip's luma steps (0 for a window's first frame).
        for value in motion[:, 0, 0, 0]:
            self.assertLess(np.min(np.abs(steps - value)), 2e-3)
        self.assertGreater(np.abs(motion).max(), 0.01)
        with self.assertRaisesRegex(ValueError, "differences must be one of"):
            modist.MoDistConfig(differences="hsv")

    def test_strided_clips_sample_at_the_training_stride_spread_over_the_window(self):
        window = tf.range(16)[:, None]  # [T, 1]: each frame holds its own index
        picked = views.strided_clips(window, frames=4, stride=2, clips=4)[..., 0].numpy()
        self.assertAllEqual(picked, [[0, 2, 4, 6], [3, 5, 7, 9], [6, 8, 10, 12], [9, 11, 13, 15]])
        self.assertAllEqual(views.strided_clips(window, 4, 2, 1)[..., 0], [[4, 6, 8, 10]])
        # A window shorter than one clip's span (7 frames): the clip's frames spread uniformly over it.
        self.assertAllEqual(views.strided_clips(window[:5], 4, 2, 2)[..., 0], [[0, 1, 3, 4]] * 2)

    def test_modist_views_average_the_pathways_over_clips_at_their_training_strides(self):
        method = _build(
            "modist", stride=2, flow_stride=2, eval_clips=2, motion="diff", differences="grey"
        )
        clip = tf.constant(_clips(1, seed=3)["rgb"][0])  # [8, 32, 32, 3]
        teacher = method.teacher_views()
        visual = teacher["visual"].model(teacher["visual"].inputs({"rgb": clip})[None]).numpy()[0]
        # Two clips of 4 frames 2 apart in 8 frames: frames 0, 2, 4, 6 and 1, 3, 5, 7.
        size = method.config.input_size
        frames = tf.image.resize(clip, (size, size))
        per_clip = method.backbone(tf.stack([frames[0::2], frames[1::2]]), training=False).numpy()
        mean = per_clip.mean(axis=0)
        self.assertAllClose(visual, mean / np.linalg.norm(mean), atol=1e-5)
        differences = motion_lib.frame_differences(frames, grey=True)
        codes = method.motion(tf.stack([differences[0::2], differences[1::2]]), training=False)
        mean = codes.numpy().mean(axis=0)
        motion = teacher["motion"].model(teacher["motion"].inputs({"rgb": clip})[None]).numpy()[0]
        self.assertAllClose(motion, mean / np.linalg.norm(mean), atol=1e-5)
        with self.assertRaisesRegex(ValueError, "eval_clips must be >= 1"):
            modist.MoDistConfig(eval_clips=0)

    def test_cross_and_learn_independent_crops_place_the_frame_and_the_motion_stack_apart(self):
        method = _traceable_cross_and_learn(rgb_crop="independent")
        clip = np.random.default_rng(0).uniform(size=(8, 48, 48, 3)).astype(np.float32)
        size = method.config.input_size
        offsets = range(clip.shape[1] - size + 1)

        def placed(target, image):  # the crop offset at which `image` shows `target`, or None
            for top in offsets:
                for left in offsets:
                    if np.allclose(target, image[top : top + size, left : left + size], atol=1e-6):
                        return top, left
            return None

        apart = 0
        for seed in range(4):
            out = method.prepare({"rgb": tf.constant(clip)}, tf.constant([seed, 1], tf.int64))
            rgb, motion = out["rgb"].numpy(), out["motion"].numpy()
            found = None
            for start in range(len(clip) - 4):
                for flip in (False, True):
                    frames = clip[start : start + 5, :, ::-1] if flip else clip[start : start + 5]
                    rgb_at = placed(rgb, frames[2])
                    if rgb_at is not None:
                        # The motion stack: the same window and flip, at a crop of its own.
                        motion_at = placed(motion[..., :3], frames[1] - frames[0])
                        self.assertIsNotNone(motion_at, "the motion stack is of another window")
                        self.assertIsNotNone(placed(motion[..., 9:], frames[4] - frames[3]))
                        found = rgb_at, motion_at
            self.assertIsNotNone(found, "the RGB input is no window's centre frame")
            apart += found[0] != found[1]
        self.assertGreater(apart, 0)  # (one shared crop would place them together every time)
        with self.assertRaisesRegex(ValueError, "rgb_crop must be one of"):
            cross_and_learn.CrossAndLearnConfig(rgb_crop="random")

    def test_cross_and_learn_moments_tuples_are_two_windows_of_one_clip_under_one_crop(self):
        method = _build(
            "cross_and_learn",
            channel_split=False,
            time_flip=False,
            scale_size=None,
            tuples_from="moments",
            global_batch_size=4,
        )
        clip = _clips(1)["rgb"][0]
        out = method.prepare({"rgb": tf.constant(clip)}, tf.constant([3, 1], tf.int64))
        rgb, motion = out["rgb"].numpy(), out["motion"].numpy()
        self.assertEqual((rgb.shape, motion.shape), ((2, 32, 32, 3), (2, 32, 32, 12)))
        centres = []
        for pair in range(2):
            for centre in range(2, len(clip) - 2):
                for flip in (False, True):
                    frame = clip[centre, :, ::-1] if flip else clip[centre]
                    if np.allclose(rgb[pair], frame):
                        centres.append((centre, flip))
        self.assertLen(centres, 2, "each pair's RGB is a centre frame of the clip")
        (a, flip_a), (b, flip_b) = centres
        self.assertEqual(flip_a, flip_b)  # one crop and flip for the tuple
        # Motion frames that do not overlap when the clip is long enough, else at least another window.
        window = method.config.window
        self.assertGreaterEqual(abs(a - b), min(window - 1, len(clip) - window))
        self.assertGreater(abs(a - b), 0)
        # A batch of tuples is one loss per tuple: the two pairs of a clip are each other's negatives.
        batch = {k: tf.stack([v, v]) for k, v in out.items()}
        losses = method.losses(batch, global_batch_size=2, training=False)
        r = method.rgb_net(out["rgb"], training=False)
        o = method.motion_net(out["motion"], training=False)
        cos = lambda x, y: float(
            cross_modal.cosine_similarity(x[None], y[None], method.config.epsilon)[0]
        )
        expected = 0.5 * (cos(r[0], r[1]) + cos(o[0], o[1])) - 0.5 * (
            cos(r[0], o[0]) + cos(r[1], o[1])
        )
        self.assertAllClose(losses["total"], expected, atol=1e-4)
        with self.assertRaisesRegex(ValueError, "needs negatives"):
            cross_and_learn.CrossAndLearnConfig(tuples_from="moments", negatives="batch")

    def test_configs_reject_bad_values(self):
        with self.assertRaisesRegex(ValueError, "differences must be one of"):
            cross_and_learn.CrossAndLearnConfig(differences="hsv")
        with self.assertRaisesRegex(ValueError, "motion must be one of"):
            cross_and_learn.CrossAndLearnConfig(motion="audio")
        with self.assertRaisesRegex(ValueError, "even"):
            cross_and_learn.CrossAndLearnConfig(global_batch_size=7)
        with self.assertRaisesRegex(ValueError, "optimizer must be one of"):
            cross_and_learn.CrossAndLearnConfig(optimizer="lamb")
        with self.assertRaisesRegex(ValueError, "temperature"):
            modist.MoDistConfig(temperature=0.0)
        with self.assertRaisesRegex(ValueError, "variant"):
            modist.MoDistConfig(variant="r152")
        with self.assertRaisesRegex(ValueError, "motion_width_divisor"):
            modist.MoDistConfig(motion_width_divisor=0)
        with self.assertRaisesRegex(ValueError, "must be >= 0"):
            modist.MoDistConfig(visual_weight=-1.0)
        with self.assertRaisesRegex(ValueError, "cannot both be 0"):
            modist.MoDistConfig(visual_weight=0.0, flow_weight=0.0)
        with self.assertRaisesRegex(ValueError, "optimizer must be one of"):
            modist.MoDistConfig(optimizer="lamb")
        with self.assertRaisesRegex(ValueError, "negatives must be one of"):
            modist.MoDistConfig(negatives="memory_bank")

    def test_modist_total_weighs_the_visual_term_and_the_cross_modal_terms(self):
        method = _build("modist", visual_weight=0.25, flow_weight=2.0)
        losses, _ = method.losses(_batch(method), BATCH, training=False)
        cross = losses["visual_motion"] + losses["motion_visual"]
        self.assertAllClose(losses["total"], 0.25 * losses["visual_visual"] + 2.0 * cross)
        alone = _build("modist", visual_weight=0.0)  # the cross-modal terms alone
        losses, _ = alone.losses(_batch(alone), BATCH, training=False)
        self.assertAllClose(losses["total"], losses["visual_motion"] + losses["motion_visual"])

    def test_modist_batch_negatives_are_the_other_keys_of_the_batch_not_the_queue(self):
        method = _build("modist", negatives="batch")
        batch = _batch(method)
        losses, _ = method.losses(batch, BATCH, training=False)
        queries = {
            "visual": method.visual_query(batch["rgb1"], training=False),
            "motion": method.motion_query(batch["motion1"], training=False),
        }
        keys = {
            "visual": method.visual_key(batch["rgb2"], training=False),
            "motion": method.motion_key(batch["motion2"], training=False),
        }
        for name in ("visual_visual", "visual_motion", "motion_visual"):
            query, key = name.split("_")
            expected = _batch_nce(queries[query], keys[key], method.config.temperature)
            self.assertAllClose(losses[name], expected, rtol=1e-5, msg=name)
        # The same networks against their queues give other values: the option is what changed the negatives.
        queued = modist.build(dataclasses.replace(method.config, negatives="queue"))
        for net in ("visual_query", "motion_query", "visual_key", "motion_key"):
            getattr(queued, net).set_weights(getattr(method, net).get_weights())
        losses_queue, _ = queued.losses(batch, BATCH, training=False)
        self.assertNotAllClose(losses["visual_visual"], losses_queue["visual_visual"])

    def test_modist_same_view_cross_modal_keys_come_from_the_query_view(self):
        method = _build("modist", negatives="batch", cross_modal_keys="same")
        batch = _batch(method)
        losses, _ = method.losses(batch, BATCH, training=False)

        def nce(query, key):
            return _batch_nce(query, key, method.config.temperature)

        q_v = method.visual_query(batch["rgb1"], training=False)
        q_m = method.motion_query(batch["motion1"], training=False)
        same_m = method.motion_key(batch["motion1"], training=False)
        same_v = method.visual_key(batch["rgb1"], training=False)
        self.assertAllClose(losses["visual_motion"], nce(q_v, same_m), rtol=1e-5)
        self.assertAllClose(losses["motion_visual"], nce(q_m, same_v), rtol=1e-5)
        # L_vv still pairs the two views, and the paper's keys (the other view's) give other cross-modal values.
        other_v = method.visual_key(batch["rgb2"], training=False)
        self.assertAllClose(losses["visual_visual"], nce(q_v, other_v), rtol=1e-5)
        other_m = method.motion_key(batch["motion2"], training=False)
        self.assertNotAllClose(losses["visual_motion"], nce(q_v, other_m))
        with self.assertRaisesRegex(ValueError, "cross_modal_keys must be one of"):
            modist.MoDistConfig(cross_modal_keys="both")

    def test_modist_moment_views_are_other_times_of_the_clip_and_the_key_view_the_querys(self):
        # Frame t is a flat grey of level t / 16 and nothing changes colours: each view's mean names its first frame.
        fields = dict(frames=2, stride=1, flow_frames=2, flow_stride=1, jitter_prob=0.0)
        method = _build("modist", moment_negatives=2, moment_gap=3, grayscale_prob=0.0, **fields)
        levels = np.arange(12, dtype=np.float32) / 16.0
        example = {"rgb": np.broadcast_to(levels[:, None, None, None], (12, 32, 32, 3)).copy()}
        starts = set()
        for seed in range(8):
            out = method.prepare(example, tf.constant([seed, 5], tf.int64))
            query = round(float(out["rgb1"][0].numpy().mean()) * 16)
            self.assertEqual(round(float(out["rgb2"][0].numpy().mean()) * 16), query)
            self.assertEqual(out["rgb_moments"].shape, (2, 2, 32, 32, 3))
            self.assertEqual(out["motion_moments"].shape[:2], (2, 2))
            moments = [round(float(m[0].mean()) * 16) for m in out["rgb_moments"].numpy()]
            self.assertLen(set(moments), 2, moments)
            self.assertTrue(all(abs(m - query) >= 3 for m in moments), (query, moments))
            # Each moment's motion is its own frames' differences: none into its first frame, 1/16 after.
            self.assertAllClose(out["motion_moments"][:, 0], np.zeros((2, 32, 32, 3)))
            self.assertAllClose(out["motion_moments"][:, 1], np.full((2, 32, 32, 3), 1 / 16))
            starts.add(query)
        self.assertGreater(len(starts), 2)
        # Without the option the key view is another time of the clip, as in the paper.
        paper = _build("modist", grayscale_prob=0.0, **fields)
        keys = {
            round(
                float(
                    paper.prepare(example, tf.constant([s, 5], tf.int64))["rgb2"][0].numpy().mean()
                )
                * 16
            )
            - round(
                float(
                    paper.prepare(example, tf.constant([s, 5], tf.int64))["rgb1"][0].numpy().mean()
                )
                * 16
            )
            for s in range(8)
        }
        self.assertNotEqual(keys, {0})
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "positions at least 3"):
            short = {"rgb": example["rgb"][:4]}
            method.prepare(short, tf.constant([0, 5], tf.int64))

    def test_modist_moment_negatives_join_every_term_as_each_querys_own_keyed_with_the_positives(
        self,
    ):
        method = _build("modist", moment_negatives=2, moment_gap=2)
        batch = _batch(method)
        # In training mode, so that the key encoders' batch statistics take part: the moments and the positives
        # go through each key encoder in one pass.
        losses, (k_v, k_m) = method.losses(batch, BATCH, training=True)
        tau = method.config.temperature

        def keys(key, views, moments):
            codes = key(
                tf.concat([views, tf.reshape(moments, [-1, *moments.shape[2:]])], 0), training=True
            )
            return codes[:BATCH], tf.reshape(codes[BATCH:], [BATCH, 2, -1])

        q_v = method.visual_query(batch["rgb1"], training=True)
        q_m = method.motion_query(batch["motion1"], training=True)
        key_v, own_v = keys(method.visual_key, batch["rgb2"], batch["rgb_moments"])
        key_m, own_m = keys(method.motion_key, batch["motion2"], batch["motion_moments"])
        self.assertAllClose(k_v, key_v, atol=1e-5)
        self.assertAllClose(k_m, key_m, atol=1e-5)
        terms = {
            "visual_visual": (q_v, key_v, method.visual_queue, own_v),
            "visual_motion": (q_v, key_m, method.motion_queue, own_m),
            "motion_visual": (q_m, key_v, method.visual_queue, own_v),
        }
        for name, (query, key, queue, own) in terms.items():
            expected = contrastive.info_nce_queue(query, key, queue.keys, tau, own_negatives=own)
            self.assertAllClose(losses[name], tf.reduce_mean(expected), atol=1e-5, msg=name)
            queue_only = contrastive.info_nce_queue(query, key, queue.keys, tau)
            self.assertGreater(float(losses[name]), float(tf.reduce_mean(queue_only)), name)
        # A step trains and enqueues the positives' keys only.
        method.train_step(batch, BATCH)
        self.assertEqual(int(method.visual_queue.pointer.numpy()), BATCH)
        for overrides in ({"negatives": "batch"}, {"cross_modal_keys": "same"}):
            with self.assertRaisesRegex(ValueError, "moment_negatives needs"):
                modist.MoDistConfig(moment_negatives=1, **overrides)
        with self.assertRaisesRegex(ValueError, "moment_negatives must be >= 0"):
            modist.MoDistConfig(moment_negatives=-1)

    def test_modist_head_batch_norm_centres_the_codes_and_the_key_follows_it(self):
        plain = _build("modist")
        method = _build("modist", head_batch_norm=True)
        batch = _batch(method, n=8)

        def mean_cosine(codes):
            cosines = np.matmul(codes, np.transpose(codes))
            return float(np.mean(cosines[~np.eye(len(codes), dtype=bool)]))

        # A random encoder's codes of different clips point one way; centred on the batch, they do not.
        for net, inputs in (("visual_query", "rgb1"), ("motion_query", "motion1")):
            self.assertGreater(mean_cosine(getattr(plain, net)(batch[inputs], training=True)), 0.5)
            self.assertLess(
                abs(mean_cosine(getattr(method, net)(batch[inputs], training=True))), 0.2
            )
        head = [l.name for l in method.visual_query.layers if "_head_" in l.name]
        self.assertIn("visual_head_bn2", head)
        # The key's head BN runs on batch statistics too, and its first BN's scale and offset are momentum targets.
        self.assertLess(abs(mean_cosine(method.visual_key(batch["rgb2"], training=True))), 0.2)
        keys, _ = method._momentum_pairs[0]  # pylint: disable=protected-access
        names = [k.name for k in keys]
        self.assertTrue(any("visual_head_bn1" in n and "gamma" in n for n in names), names)

    @parameterized.named_parameters(*METHODS)
    def test_adam_moves_each_weight_by_the_learning_rate_on_its_first_step(self, name):
        # Adam's first update is lr * g / (|g| + eps): a step of lr on every weight with a gradient, where SGD's
        # would be lr * g. Without decay, so that the gradient is the loss's alone.
        lr = 1e-3
        method = _build(name, optimizer="adam", learning_rate=lr, weight_decay=0.0)
        self.assertEqual(list(method.optimizers), ["adam"])  # the checkpoint's key says which
        self.assertIsInstance(method.optimizers["adam"], keras.optimizers.Adam)
        trained = [v for m in method.encoders.values() for v in m.trainable_variables]
        before = [v.numpy().copy() for v in trained]
        method.train_step(_batch(method), BATCH)
        moved = np.concatenate([np.abs(v.numpy() - b).ravel() for v, b in zip(trained, before)])
        moved = moved[moved > 0]
        self.assertGreater(moved.size, 1000)
        self.assertLessEqual(moved.max(), lr * 1.001)
        self.assertAllClose(np.median(moved), lr, rtol=0.01)

    def test_modist_small_learning_rate_is_the_papers_scaled_linearly_to_its_batch(self):
        paper, small = modist_paper.get_config(), modist_small.get_config()
        scaled = paper.learning_rate * small.global_batch_size / paper.global_batch_size
        self.assertAllClose(small.learning_rate, scaled)

    def test_modist_motion_pathway_keeps_the_papers_stem_width_in_every_size(self):
        """The paper's motion pathway (R50 / 8) has an 8-channel stem; so do the smaller sizes' (at 1/8 their stems
        had 2 and 1 channels)."""
        for config in (
            modist.MoDistConfig(variant="paper"),
            modist_small.get_config(),
            modist_tiny.get_config(),
        ):
            with self.subTest(variant=config.variant):
                motion = modist.build(config).motion
                self.assertEqual(motion.get_layer("motion_conv1").filters, 8)
                self.assertEqual(motion.output_shape[-1], 256 if config.variant != "tiny" else 128)


if __name__ == "__main__":
    tf.test.main()
