"""Tests for edge_ssl.train.loop: checkpoints and exact resume, the NaN guard, SIGTERM, workdir ownership."""

import json
import os
import signal

import numpy as np
import tensorflow as tf

from edge_ssl.configs import cross_and_learn_tiny, loader
from edge_ssl.data import augment
from edge_ssl.keras import keras
from edge_ssl.methods import cross_and_learn
from edge_ssl.train import loop

tf.config.experimental.enable_op_determinism()

BATCH = 4
CLIPS = {"rgb": np.random.default_rng(0).uniform(size=(12, 8, 32, 32, 3)).astype("float32")}


def _method(seed: int = 0) -> cross_and_learn.CrossAndLearn:
    keras.utils.set_random_seed(seed)
    config = loader.apply_overrides(cross_and_learn_tiny.get_config(), ["dropout=0.0", "steps=20"])
    return cross_and_learn.build(config)


def _dataset_fn(method):
    def dataset_fn(ctx, skip=0):
        ds = tf.data.Dataset.from_tensor_slices(CLIPS).repeat().shuffle(12, seed=1)
        return augment.with_seeds(ds, 2).skip(skip).map(method.prepare)

    return dataset_fn


def _train(method, workdir, steps, export_backbone=False, **kwargs):
    """Trains `method` in `workdir`; the backbone SavedModel (1-2 s to write) only where a test reads it."""
    options = loop.TrainOptions(
        steps=steps,
        global_batch_size=BATCH,
        checkpoint_every=3,
        log_every=2,
        export_backbone=export_backbone,
        **kwargs,
    )
    strategy = tf.distribute.get_strategy()
    tf.random.set_seed(
        0
    )  # the shuffle order depends on the global seed, as it does in a resumed CLI run (--seed)
    return loop.train(
        method, _dataset_fn(method), workdir, options, strategy, printer=lambda _: None
    )


def _weights(method):
    return [w.copy() for m in method.encoders.values() for w in m.get_weights()]


class LoopTest(tf.test.TestCase):

    def test_run_writes_checkpoints_summaries_run_file_and_backbone(self):
        workdir = self.get_temp_dir() + "/run"
        result = _train(_method(), workdir, 5, export_backbone=True)
        self.assertEqual(result.step, 5)
        self.assertFalse(result.interrupted)
        self.assertTrue(result.checkpoint.endswith("ckpt-5"))
        self.assertTrue(os.path.exists(os.path.join(workdir, "checkpoints", "ckpt-3.index")))
        self.assertTrue(os.listdir(os.path.join(workdir, "tensorboard")))
        with open(os.path.join(workdir, loop.RUN_FILE), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["method"], "cross_and_learn")
        backbone = keras.models.load_model(result.backbone_dir)
        self.assertEqual(backbone(CLIPS["rgb"][:2]).shape, (2, 64))
        self.assertEqual(set(result.losses), {"cross", "div", "total"})

    def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(self):
        straight = _method()
        _train(straight, self.get_temp_dir() + "/straight", 6)
        workdir = self.get_temp_dir() + "/resumed"
        _train(_method(), workdir, 3)  # as if killed right after its checkpoint at step 3
        resumed = _method(
            seed=123
        )  # different initial weights: everything must come from the checkpoint
        result = _train(resumed, workdir, 6)
        self.assertEqual(result.step, 6)
        for a, b in zip(_weights(straight), _weights(resumed)):
            self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)

    def test_nan_loss_stops_naming_step_and_term_and_keeps_the_last_good_checkpoint(self):
        method = _method()
        inner = method.train_step
        calls = tf.Variable(0)

        def poisoned(batch, global_batch_size):
            losses = inner(batch, global_batch_size)
            calls.assign_add(1)
            losses["div"] = tf.where(calls >= 5, tf.constant(np.nan, tf.float32), losses["div"])
            return losses

        method.train_step = poisoned
        workdir = self.get_temp_dir() + "/nan"
        with self.assertRaisesRegex(loop.NonFiniteLossError, r"step 5: loss 'div' is nan.*ckpt-3"):
            _train(method, workdir, 10)
        self.assertTrue(
            tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-3")
        )

    def test_sigterm_saves_a_checkpoint_and_stops_cleanly(self):
        method = _method()
        inner = method.train_step
        calls = tf.Variable(0)

        def send_sigterm_at_step_2():
            os.kill(os.getpid(), signal.SIGTERM)
            return np.int32(0)

        def with_signal(batch, global_batch_size):
            losses = inner(batch, global_batch_size)
            calls.assign_add(1)
            tf.cond(
                calls == 2,
                lambda: tf.numpy_function(send_sigterm_at_step_2, [], tf.int32),
                lambda: tf.constant(0),
            )
            return losses

        method.train_step = with_signal
        workdir = self.get_temp_dir() + "/term"
        result = _train(method, workdir, 10, export_backbone=True)
        self.assertTrue(result.interrupted)
        self.assertEqual(result.step, 2)
        self.assertTrue(result.checkpoint.endswith("ckpt-2"))
        self.assertIsNone(result.backbone_dir)

    def test_workdir_of_another_method_or_size_is_refused_before_training(self):
        workdir = self.get_temp_dir() + "/owned"
        _train(_method(), workdir, 1)
        other = loader.load("modist", "tiny")
        with self.assertRaisesRegex(loop.WorkdirError, "holds a 'cross_and_learn' run"):
            loop.check_workdir_compatible(workdir, other)
        bigger = loader.load("cross_and_learn", "small")
        with self.assertRaisesRegex(loop.WorkdirError, "preset 'tiny', not 'small'"):
            loop.check_workdir_compatible(workdir, bigger)

    def test_runs_are_recorded_by_preset_or_student_and_older_records_by_size(self):
        workdir = self.get_temp_dir() + "/recorded"
        os.makedirs(workdir)
        small = loader.load("cross_and_learn", "small")
        self.assertFalse(loop.check_workdir(workdir, small))
        with open(os.path.join(workdir, loop.RUN_FILE), encoding="utf-8") as f:
            record = json.load(f)
        self.assertEqual((record["method"], record["preset"]), ("cross_and_learn", "small"))
        self.assertNotIn("size", record)
        # a run recorded before the preset had its name
        with open(os.path.join(workdir, loop.RUN_FILE), "w", encoding="utf-8") as f:
            json.dump({"method": "cross_and_learn", "size": "small"}, f)
        self.assertTrue(loop.check_workdir(workdir, small))
        with self.assertRaisesRegex(loop.WorkdirError, "preset 'small', not 'tiny'"):
            loop.check_workdir_compatible(workdir, loader.load("cross_and_learn", "tiny"))

    def test_a_run_is_resumed_only_under_its_own_optimizer(self):
        workdir = self.get_temp_dir() + "/optimizer"
        _train(_method(), workdir, 1)  # momentum SGD, the tiny preset's
        keras.utils.set_random_seed(0)
        adam = cross_and_learn.build(
            loader.apply_overrides(
                cross_and_learn_tiny.get_config(), ["dropout=0.0", "steps=20", "optimizer=adam"]
            )
        )
        with self.assertRaisesRegex(
            loop.WorkdirError, "holds the state of optimizer_sgd, not of optimizer_adam"
        ):
            _train(adam, workdir, 2)
        self.assertEqual(_train(_method(), workdir, 2).step, 2)  # under its own it resumes

    def test_checkpoints_of_networks_of_another_shape_are_a_workdir_error(self):
        workdir = self.get_temp_dir() + "/shaped"
        _train(_method(), workdir, 1)
        keras.utils.set_random_seed(0)
        narrower = cross_and_learn.build(
            loader.apply_overrides(
                cross_and_learn_tiny.get_config(), ["dropout=0.0", "steps=20", "num_differences=2"]
            )
        )
        with self.assertRaisesRegex(loop.WorkdirError, "networks of another shape"):
            _train(narrower, workdir, 2)

    def test_options_are_validated(self):
        with self.assertRaisesRegex(ValueError, "steps must be >= 1"):
            loop.TrainOptions(steps=0, global_batch_size=4)


if __name__ == "__main__":
    tf.test.main()
