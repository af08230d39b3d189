"""Tests for edge_ssl.distill: loading a teacher from its workdir, and distillation steps on the tiny world.

A tiny MoDist teacher (visual and motion pathways, frame differences) is pretrained for a few steps with the engine
once per test process (`_shared`: the same run is pretrained once and read by every test that needs it; none
changes it); the student is the `tiny` variant.
"""

import dataclasses
import functools
import json
import os
import shutil

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.configs import loader
from edge_ssl.data import augment, motion, pose, synthetic
from edge_ssl.distill import distiller
from edge_ssl.distill import teacher as teacher_lib
from edge_ssl.fewshot import metrics
from edge_ssl.keras import keras
from edge_ssl.losses import distillation
from edge_ssl.methods import registry, views
from edge_ssl.train import loop

BATCH = 8
# The k-NN check: the student's accuracy on held-out classes is at most KNN_MARGIN below the teacher's, over
# KNN_PERFORMANCES held-out performances (x3 cameras; 5 classes, chance 20%). On the tiny world both are near
# chance (a tiny teacher's views carry no action there), so this bounds the student's loss against the teacher,
# not a learned gain; the demo measures that on the small world. 40 performances rather than 12: at 36 clips one
# clip is 2.8 points, too coarse for a margin.
KNN_PERFORMANCES = 40
KNN_MARGIN = 0.15


def _world(split: str, performances=(4, 2, 2)):
    return synthetic.as_dataset(synthetic.get_config("tiny", performances=performances), split)


def _pretrain(method_name: str, workdir: str, steps: int = 3, overrides=()) -> str:
    keras.utils.set_random_seed(0)
    config = loader.load(
        method_name, "tiny", [f"global_batch_size={BATCH}", f"steps={steps}", *overrides]
    )
    method = registry.get(method_name).build(config)

    def dataset_fn(ctx, skip=0):
        ds = augment.with_seeds(_world("pretrain").cache().repeat(), 1).skip(skip)
        if "flow" in method.input_keys:
            ds = ds.map(lambda ex, seed: (motion.add_flow(ex), seed))
        return ds.map(method.prepare)

    options = loop.TrainOptions(steps=steps, global_batch_size=BATCH, export_backbone=False)
    # Eagerly: for a few steps tracing the step costs ten times more than running it (tiny MoDist: 5.5 s against
    # 0.4 s), and these runs are the tests' fixtures; the engine's traced step has its own tests (tests/train).
    tf.config.run_functions_eagerly(True)
    try:
        loop.train(
            method,
            dataset_fn,
            workdir,
            options,
            tf.distribute.get_strategy(),
            printer=lambda _: None,
        )
    finally:
        tf.config.run_functions_eagerly(False)
    return workdir


@functools.cache
def _shared(method_name: str, steps: int = 3, overrides: tuple[str, ...] = ()) -> str:
    """A pretraining workdir made once per test process and shared: tests read it and never write to it."""
    name = "_".join((method_name, str(steps)) + overrides).replace("=", "-")
    return _pretrain(
        method_name,
        os.path.join(tf.compat.v1.test.get_temp_dir(), "shared", name),
        steps,
        overrides,
    )


def _distiller(teacher_dir: str, **overrides) -> distiller.Distiller:
    keras.utils.set_random_seed(1)
    fields = {
        "teacher": teacher_dir,
        "student": "tiny",
        "global_batch_size": BATCH,
        "steps": 20,
        **overrides,
    }
    return distiller.build(distiller.DistillConfig(**fields))


def _batches(method, split="pretrain", count=1, seed=2):
    ds = augment.with_seeds(_world(split).cache().repeat(), seed).map(method.prepare).batch(BATCH)
    return list(ds.take(count))


class TeacherTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.teacher_dir = _shared("modist")

    def test_teacher_restores_the_pretrained_weights(self):
        teacher = teacher_lib.load_teacher(self.teacher_dir)
        reader = tf.train.load_checkpoint(teacher.checkpoint)
        keys = [k for k in reader.get_variable_to_shape_map() if k.startswith("encoder_visual/")]
        self.assertNotEmpty(keys)
        self.assertEqual(sorted(teacher.views), ["motion", "visual"])
        self.assertEqual(teacher.dims["visual"], teacher.method.backbone.output.shape[-1])
        stored = {k: reader.get_tensor(k) for k in keys}
        restored = {v.name: v.numpy() for v in teacher.method.encoders["visual"].variables}
        # every stored visual-pathway tensor equals some restored variable of the same shape
        for value in stored.values():
            self.assertTrue(
                any(r.shape == value.shape and np.array_equal(r, value) for r in restored.values())
            )

    def test_a_distillation_is_recorded_by_its_student(self):
        config = distiller.DistillConfig(teacher="/teacher", student="tiny")
        self.assertEqual((config.identity(), config.world), ({"student": "tiny"}, "tiny"))
        workdir = self.get_temp_dir() + "/recorded_student"
        os.makedirs(workdir)
        self.assertFalse(loop.check_workdir(workdir, config))
        with open(os.path.join(workdir, loop.RUN_FILE), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["student"], "tiny")
        with self.assertRaisesRegex(loop.WorkdirError, "student 'tiny', not 'small'"):
            loop.check_workdir_compatible(workdir, dataclasses.replace(config, student="small"))
        with open(os.path.join(workdir, loop.RUN_FILE), "w", encoding="utf-8") as f:
            json.dump({"method": "distill", "size": "small", "config": {"teacher": "/teacher"}}, f)
        with self.assertRaisesRegex(
            loop.WorkdirError, "student 'small', not 'tiny'"
        ):  # recorded as `size`
            loop.check_workdir_compatible(workdir, config)

    def test_bad_teacher_workdirs_are_clear_errors(self):
        with self.assertRaisesRegex(teacher_lib.TeacherError, "does not exist"):
            teacher_lib.load_teacher(self.get_temp_dir() + "/nothing")
        empty = self.get_temp_dir() + "/empty"
        os.makedirs(empty)
        with self.assertRaisesRegex(teacher_lib.TeacherError, "not a pretraining workdir"):
            teacher_lib.load_teacher(empty)
        other = self.get_temp_dir() + "/other"
        os.makedirs(other)
        with open(os.path.join(other, loop.RUN_FILE), "w", encoding="utf-8") as f:
            json.dump({"method": "simclr", "preset": "tiny"}, f)
        with self.assertRaisesRegex(
            teacher_lib.TeacherError, "'simclr' run; an RGB student learns from"
        ):
            teacher_lib.load_teacher(other)
        mismatched = self.get_temp_dir() + "/mismatched"
        shutil.copytree(self.teacher_dir, mismatched)
        with open(os.path.join(mismatched, loop.RUN_FILE), encoding="utf-8") as f:
            run = json.load(f)
        run["config"]["proj_dim"] = 7  # the checkpoint's heads project to another size
        with open(os.path.join(mismatched, loop.RUN_FILE), "w", encoding="utf-8") as f:
            json.dump(run, f)
        with self.assertRaisesRegex(
            teacher_lib.TeacherError, "does not match the modist/tiny networks"
        ):
            teacher_lib.load_teacher(mismatched)
        fresh = self.get_temp_dir() + "/fresh"
        os.makedirs(fresh)
        with open(os.path.join(fresh, loop.RUN_FILE), "w", encoding="utf-8") as f:
            json.dump({"method": "modist", "preset": "tiny"}, f)
        with self.assertRaisesRegex(teacher_lib.TeacherError, "no checkpoint yet"):
            teacher_lib.load_teacher(fresh)

    def test_a_run_from_before_a_config_field_existed_loads_with_its_default(self):
        # A MoDist run from before motion_width_divisor existed: its motion pathway was built at 1/8 width (the
        # field's default), while today's tiny preset builds it at full width.
        old = _pretrain(
            "modist", self.get_temp_dir() + "/old", steps=1, overrides=["motion_width_divisor=8"]
        )
        with open(os.path.join(old, loop.RUN_FILE), encoding="utf-8") as f:
            run = json.load(f)
        del run["config"]["motion_width_divisor"]
        with open(os.path.join(old, loop.RUN_FILE), "w", encoding="utf-8") as f:
            json.dump(run, f)
        teacher = teacher_lib.load_teacher(old)
        self.assertEqual(teacher.method.config.motion_width_divisor, 8)
        self.assertEqual(teacher.method.motion.get_layer("motion_conv1").filters, 1)


class OtherTeachersTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(
        ("cross_and_learn", {"visual", "motion"}), ("muscles", {"visual"}), ("cv_mim", {"visual"})
    )
    def test_teacher_views_feed_a_distillation_step(self, name, views):
        method = _distiller(_shared(name, steps=1))
        self.assertEqual(set(method.teacher.views), views)
        batch = _batches(method)[0]
        for view in views:
            self.assertEqual(
                batch[f"teacher_{view}"].shape[1:], method.teacher.views[view].model.input_shape[1:]
            )
        losses = tf.function(lambda b: method.train_step(b, BATCH))(batch)
        self.assertEqual("motion" in losses, "motion" in views)
        self.assertTrue(all(np.isfinite(v.numpy()) for v in losses.values()))

    def test_a_pose_teacher_embeds_the_mean_z_p_of_the_window_s_keypoints(self):
        teacher = teacher_lib.load_teacher(_shared("cv_mim", steps=1))
        self.assertTrue(teacher.needs_pose)
        example = next(iter(_world("heldout")))
        rgb = tf.convert_to_tensor(example["rgb"], tf.float32)
        with self.assertRaisesRegex(teacher_lib.TeacherError, "pose teacher.*give pose2d"):
            teacher.window(rgb)
        window = teacher.window(rgb, example["pose2d"])
        embedding = teacher.embed_clips(
            "visual", rgb.numpy()[None], example["pose2d"].numpy()[None]
        )
        frames = np.round(np.linspace(0, len(rgb) - 1, views.POSE_FRAMES)).astype(int)
        z_p = teacher.method.backbone(
            pose.normalize(tf.gather(window["pose2d"], frames)), training=False
        )
        mean = tf.reduce_mean(z_p, axis=0)
        self.assertAllClose(embedding[0], mean / tf.norm(mean), atol=1e-5)
        # It needs no pixels: the keypoints alone embed the same (a held-out pose folder, as the demo reads it).
        self.assertAllClose(
            teacher.embed_clips("visual", poses=example["pose2d"].numpy()[None]), embedding
        )
        # The distiller feeds it the keypoints of the student's window, mirrored with the pixels.
        method = _distiller(teacher.workdir)
        self.assertIn("pose2d", method.input_keys)

    def test_a_clip_becomes_each_view_s_input_with_flow_only_where_the_teacher_needs_it(self):
        flow_dir = _pretrain(
            "modist", os.path.join(self.get_temp_dir(), "flow"), steps=1, overrides=["motion=flow"]
        )
        diff_dir = _shared("cross_and_learn", steps=1)
        grey_dir = _pretrain(
            "cross_and_learn",
            os.path.join(self.get_temp_dir(), "grey"),
            steps=1,
            overrides=["differences=grey", "subtract_motion_mean=False"],
        )
        rgb = tf.convert_to_tensor(next(iter(_world("heldout")))["rgb"], tf.float32)
        for workdir, keys in (
            (flow_dir, {"rgb", "flow"}),
            (diff_dir, {"rgb"}),
            (grey_dir, {"rgb"}),
        ):
            teacher = teacher_lib.load_teacher(workdir)
            if workdir == grey_dir:  # its motion stacks are of grey differences, one channel each
                stacks = teacher.views["motion"].inputs(teacher.window(rgb))
                self.assertEqual(stacks.shape[-1], teacher.method.config.num_differences)
                luma = tf.image.rgb_to_grayscale(rgb)
                self.assertAllClose(stacks[0, ..., 0], (luma[1] - luma[0])[..., 0], atol=1e-5)
            window = teacher.window(rgb)
            self.assertEqual(set(window), keys)
            with self.assertRaisesRegex(teacher_lib.TeacherError, "embeds RGB clips"):
                teacher.window(None)
            if "flow" in keys:  # as the training pipeline computes it
                self.assertAllClose(window["flow"], motion.add_flow({"rgb": rgb})["flow"])
            for name, view in teacher.views.items():
                with self.subTest(teacher=teacher.name, view=name):
                    embedding = view.model(view.inputs(window)[None], training=False)
                    self.assertEqual(embedding.shape, (1, teacher.dims[name]))
                    self.assertTrue(np.all(np.isfinite(embedding.numpy())))

    def test_motion_stacks_spread_over_the_window_in_the_stream_s_channel_order(self):
        # Frame t of motion holds the value t everywhere, channel c adds c / 10: a stack's channels name its frames.
        frames = np.arange(16, dtype=np.float32)[:, None, None, None] + np.array([0.0, 0.1, 0.2])
        frames = np.broadcast_to(frames, (16, 2, 2, 3))
        stacks = views.motion_stacks(tf.constant(frames), count=4, stacks=4).numpy()
        self.assertEqual(stacks.shape, (4, 2, 2, 12))
        # Starts 1, 5, 8, 12: the first after the zero motion of frame 0, the last ending at frame 15.
        for stack, start in zip(stacks, (1, 5, 8, 12)):
            expected = np.concatenate([frames[start + k, 0, 0] for k in range(4)])
            self.assertAllClose(
                stack[0, 0], expected
            )  # frame-major, as CrossAndLearn.prepare stacks them
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "shorter than a 4-frame"):
            views.motion_stacks(tf.constant(frames[:4]), count=4, stacks=4)

    def test_cross_and_learn_motion_view_is_the_mean_over_stacks_of_its_motion_stream(self):
        teacher = teacher_lib.load_teacher(_shared("cross_and_learn", steps=1))
        window = next(iter(_world("pretrain")))
        window = {"rgb": tf.convert_to_tensor(window["rgb"], tf.float32)}
        stacks = teacher.views["motion"].inputs(window)
        self.assertEqual(stacks.shape[0], views.MOTION_STACKS)
        embedding = teacher.views["motion"].model(stacks[None], training=False)[0]
        per_stack = teacher.method.motion_net(stacks, training=False)
        mean = tf.reduce_mean(per_stack, axis=0)
        self.assertAllClose(embedding, mean / tf.norm(mean), atol=1e-5)
        # Different stacks see different motion: the mean is not one stack's features.
        self.assertGreater(float(tf.reduce_max(tf.abs(per_stack[0] - per_stack[-1]))), 1e-3)


class DistillerTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.teacher_dir = _shared("modist")

    def test_teacher_is_frozen_and_the_student_learns(self):
        method = _distiller(self.teacher_dir)
        teacher_before = [v.numpy().copy() for v in method.teacher.variables]
        student_before = [v.numpy().copy() for v in method.student.trainable_variables]
        method.build_optimizers()
        optimized = {id(v) for v in method.variable_groups()["adamw"]}
        self.assertFalse(optimized & {id(v) for v in method.teacher.variables})
        step = tf.function(lambda b: method.train_step(b, BATCH))
        for batch in _batches(method, count=3):
            losses = step(batch)
        self.assertEqual(
            set(losses), {"embedding", "motion", "motion_relational", "relational", "total"}
        )
        for before, after in zip(teacher_before, method.teacher.variables):
            self.assertAllEqual(
                before, after.numpy()
            )  # bit-identical, BN moving statistics included
        moved = [
            not np.array_equal(b, a.numpy())
            for b, a in zip(student_before, method.student.trainable_variables)
        ]
        self.assertTrue(all(moved))

    def test_prepare_gives_the_student_rgb_only_and_the_teacher_its_views(self):
        method = _distiller(self.teacher_dir)
        example = next(iter(_world("pretrain")))
        prepared = method.prepare(example, tf.constant([3, 4]))
        self.assertEqual(set(prepared), {"rgb", "teacher_visual", "teacher_motion"})
        self.assertEqual(prepared["rgb"].shape, method.student.input_shape[1:])
        self.assertEqual(
            prepared["teacher_visual"].shape, method.teacher.views["visual"].model.input_shape[1:]
        )
        self.assertEqual(
            prepared["teacher_motion"].shape, method.teacher.views["motion"].model.input_shape[1:]
        )

    def test_weights_make_the_total_and_motion_relational_is_infonce_on_motion_targets(self):
        weights = dict(
            weight_embedding=0.3,
            weight_motion=0.7,
            weight_relational=0.2,
            weight_motion_relational=1.5,
        )
        method = _distiller(self.teacher_dir, **weights)
        batch = _batches(method)[0]
        losses, targets = method.losses(batch, BATCH, training=False)
        total = sum(
            weights[f"weight_{name}"] * losses[name]
            for name in ("embedding", "motion", "relational", "motion_relational")
        )
        self.assertAllClose(losses["total"], total, rtol=1e-6)
        # The motion projection against the batch's motion targets, InfoNCE (not the visual ones).
        projected = method.heads["motion"](
            method.student(batch["rgb"], training=False), training=False
        )
        expected = distillation.relational_contrastive(
            projected, targets["motion"], method.config.temperature
        )
        self.assertAllClose(losses["motion_relational"], tf.reduce_mean(expected), rtol=1e-5)
        with self.assertRaisesRegex(ValueError, "loss weights must be >= 0"):
            _distiller(self.teacher_dir, weight_motion_relational=-1.0)
        with self.assertRaisesRegex(
            ValueError, r"student must be one of \['base', 'small', 'tiny'\], got 'micro'"
        ):
            distiller.DistillConfig(student="micro", teacher=self.teacher_dir)

    def test_labels_feed_the_logit_term_and_class_prototypes(self):
        method = _distiller(self.teacher_dir, num_classes=synthetic.NUM_ACTIONS)
        self.assertIn("label", method.input_keys)
        batch = _batches(method)[0]
        losses = tf.function(lambda b: method.train_step(b, BATCH))(batch)
        self.assertIn("logits", losses)
        present = np.unique(batch["label"].numpy())
        norms = np.linalg.norm(method.prototypes.numpy(), axis=-1)
        self.assertTrue(np.all(norms[present] > 0))
        absent = np.setdiff1d(np.arange(synthetic.NUM_ACTIONS), present)
        self.assertTrue(np.all(norms[absent] == 0))

    def test_a_short_run_brings_the_student_close_to_the_teacher(self):
        method = _distiller(self.teacher_dir, steps=60, warmup_fraction=0.0, learning_rate=3e-3)
        random_student = _distiller(self.teacher_dir)
        held_out = _batches(method, split="heldout", count=2, seed=9)

        def closeness(m):
            values = []
            for batch in held_out:
                target = m.teacher.embed(batch)["visual"]
                projected = m.heads["visual"](m.student(batch["rgb"], training=False))
                values.append(1.0 - distillation.cosine_regression(projected, target).numpy())
            return float(np.mean(values))

        before = closeness(random_student)
        step = tf.function(lambda b: method.train_step(b, BATCH))
        for batch in _batches(method, count=60, seed=5):
            step(batch)
        after = closeness(method)
        message = f"cosine to the teacher: random {before:.3f}, distilled {after:.3f}"
        self.assertGreater(after, 0.6, message)
        self.assertGreater(after, before + 0.4, message)

        # k-NN on the held-out classes (one performance's camera views never vote for each other).
        world = synthetic.get_config("tiny", performances=(0, 0, KNN_PERFORMANCES))
        clips = augment.with_seeds(synthetic.as_dataset(world, "heldout"), 4).map(
            lambda ex, seed: (method.prepare(ex, seed), ex["label"], ex["performance_id"])
        )
        student, teacher, labels, groups = [], [], [], []
        for inputs, label, group in clips.batch(BATCH):
            student.append(method.student(inputs["rgb"], training=False).numpy())
            teacher.append(method.teacher.embed(inputs)["visual"].numpy())
            labels.append(label.numpy())
            groups.append(group.numpy())
        labels, groups = np.concatenate(labels), np.concatenate(groups)
        student_knn = metrics.knn_accuracy(np.concatenate(student), labels, groups)
        teacher_knn = metrics.knn_accuracy(np.concatenate(teacher), labels, groups)
        print(f"k-NN on held-out classes: teacher {teacher_knn:.3f}, student {student_knn:.3f}")
        self.assertGreaterEqual(student_knn, teacher_knn - KNN_MARGIN)


if __name__ == "__main__":
    tf.test.main()
