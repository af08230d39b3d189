"""Tests for the pretrain CLI: bad flags fail before training, SIGKILL and resume, a NaN run, two workers.

The process-level tests run the CLI as a user does (`python -m edge_ssl.cli.pretrain`), on the tiny synthetic world
built once into a shared data directory.
"""

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from unittest import mock

import numpy as np
import tensorflow as tf
from absl import app
from absl.testing import flagsaver, parameterized

from edge_ssl.cli import pretrain
from edge_ssl.train import loop
from edge_ssl.train import strategy as strategy_lib
from tests.data import tiny_world

strategy_lib.split_cpu(2)  # so that --strategy=mirrored --num_cpu_replicas=2 works in this process

TIMEOUT = 240  # seconds any one CLI process may take before the test fails


@functools.cache
def _data_dir() -> str:
    """The TFDS folder with the tiny world that every test of this file shares."""
    return tiny_world.tiny_world(os.path.join(tf.compat.v1.test.get_temp_dir(), "tfds"))


def _env(**extra) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TF_CPP_MIN_LOG_LEVEL="2", **extra)


def _command(workdir: str, data_dir: str, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "edge_ssl.cli.pretrain",
        "--method=cross_and_learn",
        "--config=tiny",
        f"--workdir={workdir}",
        f"--data_dir={data_dir}",
        "--global_batch_size=8",
        "--config_override=dropout=0.0",
        *flags,
    ]


def _run(command: list[str], **env) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=_env(**env), capture_output=True, text=True, timeout=TIMEOUT)


def _checkpoint_values(path: str) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(path)
    return {
        key: reader.get_tensor(key)
        for key in reader.get_variable_to_shape_map()
        if "save_counter" not in key and not key.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PretrainFlagsTest(tf.test.TestCase, parameterized.TestCase):
    """Every bad flag is a usage error before any training: no checkpoint is written."""

    def setUp(self):
        super().setUp()
        self.workdir = os.path.join(self.get_temp_dir(), self._testMethodName)

    def _usage_error(self, pattern: str, **flags):
        values = dict(
            method="cross_and_learn",
            config="tiny",
            workdir=self.workdir,
            steps=2,
            global_batch_size=4,
        )
        values.update(flags)
        with flagsaver.flagsaver(**values):
            with self.assertRaisesRegex(app.UsageError, pattern):
                pretrain.main(["pretrain"])
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "checkpoints")))

    def test_missing_data_folder(self):
        self._usage_error(r"data folder '/no/such/folder' does not exist", data="/no/such/folder")

    def test_unknown_tfds_name(self):
        self._usage_error(
            r"'no_such_dataset' is not an existing folder, and TFDS cannot load it",
            data="no_such_dataset",
        )

    def test_multi_worker_without_tf_config(self):
        with mock.patch.dict(os.environ):
            os.environ.pop("TF_CONFIG", None)
            self._usage_error(r"multi_worker needs TF_CONFIG", strategy="multi_worker")

    def test_global_batch_not_divisible_by_replicas(self):
        self._usage_error(
            r"--global_batch_size: a global batch of 5 does not divide among 2 replicas",
            method="modist",
            global_batch_size=5,
            strategy="mirrored",
            num_cpu_replicas=2,
        )

    def test_workdir_of_another_method(self):
        os.makedirs(self.workdir)
        with open(os.path.join(self.workdir, loop.RUN_FILE), "w", encoding="utf-8") as f:
            json.dump({"method": "modist", "preset": "tiny"}, f)
        self._usage_error(
            r"--workdir: .* holds a 'modist' run; 'cross_and_learn' needs another workdir"
        )

    def test_unknown_config_field(self):
        self._usage_error(r"has no field 'no_such_field'", config_override=["no_such_field=1"])

    def test_bad_config_value(self):
        self._usage_error(
            r"learning_rate='fast': not a valid", config_override=["learning_rate=fast"]
        )

    def test_resuming_with_networks_of_another_shape_is_a_usage_error(self):
        values = dict(
            method="cross_and_learn",
            config="tiny",
            workdir=self.workdir,
            data_dir=_data_dir(),
            steps=1,
            global_batch_size=4,
        )
        with flagsaver.flagsaver(**values):
            self.assertEqual(pretrain.main(["pretrain"]), 0)
        # Four frame differences became two: the motion stream's first kernel no longer fits the checkpoint's.
        values.update(steps=2, config_override=["num_differences=2"])
        with flagsaver.flagsaver(**values):
            with self.assertRaisesRegex(app.UsageError, "networks of another shape"):
                pretrain.main(["pretrain"])

    def test_stray_argument(self):
        with flagsaver.flagsaver(method="cross_and_learn", workdir=self.workdir, steps=1):
            with self.assertRaisesRegex(app.UsageError, "unexpected arguments: extra"):
                pretrain.main(["pretrain", "extra"])

    def test_unknown_method_through_the_binary(self):
        result = _run(_command(self.workdir, self.get_temp_dir(), "--steps=1", "--method=simclr"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--method", result.stderr)
        self.assertIn("cross_and_learn|modist|cv_mim|muscles", result.stderr)


class PretrainProcessTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Prepared, so the CLI processes (and the workers of a cluster) only read it.
        cls.data_dir = _data_dir()

    def test_sigkill_mid_training_then_resume_ends_like_an_uninterrupted_run(self):
        steps, every = 40, 5  # killed after ckpt-10, with 30 steps to go
        flags = (
            f"--steps={steps}",
            f"--checkpoint_every={every}",
            "--log_every=5",
            "--deterministic",
        )
        straight = self.get_temp_dir() + "/straight"
        result = _run(_command(straight, self.data_dir, *flags))
        self.assertEqual(result.returncode, 0, result.stderr)

        killed = self.get_temp_dir() + "/killed"
        # A killed process cannot remove its temporary files (autograph's generated modules): they stay in the test's
        # folder, not in the system's.
        temp = self.get_temp_dir() + "/killed_tmp"
        os.makedirs(temp)
        process = subprocess.Popen(
            _command(killed, self.data_dir, *flags),
            env=_env(TMPDIR=temp),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + TIMEOUT
        first = os.path.join(killed, "checkpoints", f"ckpt-{2 * every}.index")
        while not os.path.exists(first) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        self.assertEqual(
            process.returncode, -signal.SIGKILL, "the run ended before it could be killed"
        )
        at_kill = tf.train.latest_checkpoint(os.path.join(killed, "checkpoints"))
        self.assertLess(int(at_kill.rsplit("-", 1)[1]), steps)

        result = _run(_command(killed, self.data_dir, *flags))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("resumed from", result.stdout)
        self.assertIn(f"finished at step {steps}/{steps}", result.stdout)
        want = _checkpoint_values(os.path.join(straight, "checkpoints", f"ckpt-{steps}"))
        got = _checkpoint_values(os.path.join(killed, "checkpoints", f"ckpt-{steps}"))
        self.assertEqual(sorted(want), sorted(got))
        for key in want:
            self.assertAllClose(want[key], got[key], rtol=1e-6, atol=1e-7, msg=key)

    def test_nan_loss_exits_3_naming_the_step_and_keeping_the_last_good_checkpoint(self):
        workdir = self.get_temp_dir() + "/nan"
        result = _run(
            _command(
                workdir,
                self.data_dir,
                "--steps=50",
                "--checkpoint_every=1",
                "--config_override=learning_rate=1e30",
            )
        )
        self.assertEqual(result.returncode, pretrain.NAN_EXIT, result.stderr)
        self.assertRegex(result.stderr, r"error: step (\d+): loss '\w+' is (nan|inf)")
        bad_step = int(result.stderr.split("error: step ", 1)[1].split(":", 1)[0])
        latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
        self.assertTrue(latest.endswith(f"ckpt-{bad_step - 1}"), latest)
        self.assertIn(f"the last good checkpoint is {latest}", result.stderr)

    def test_two_workers_on_localhost_train_and_agree(self):
        workdir = self.get_temp_dir() + "/multi"
        cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
        processes = [
            subprocess.Popen(
                _command(
                    workdir, self.data_dir, "--steps=4", "--checkpoint_every=2", "--log_every=1"
                )
                + ["--strategy=multi_worker"],
                env=_env(
                    TF_CONFIG=json.dumps(
                        {"cluster": cluster, "task": {"type": "worker", "index": i}}
                    )
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        outputs = []
        try:
            for process in processes:
                out, err = process.communicate(timeout=TIMEOUT)
                self.assertEqual(process.returncode, 0, err[-3000:])
                outputs.append(out)
        finally:
            for process in processes:
                process.kill()
        losses = [
            [line for line in out.splitlines() if line.startswith("step ")] for out in outputs
        ]
        self.assertLen(losses[0], 4)
        strip_rate = [[line.split("|")[0] for line in worker] for worker in losses]
        self.assertEqual(strip_rate[0], strip_rate[1])
        self.assertIn("finished at step 4/4", outputs[0])
        self.assertIn("finished (worker_1) at step 4/4", outputs[1])
        self.assertTrue(os.path.exists(os.path.join(workdir, "checkpoints", "ckpt-4.index")))
        self.assertTrue(os.path.exists(os.path.join(workdir, "backbone", "saved_model.pb")))
        self.assertFalse(os.path.exists(os.path.join(workdir, "workers")))


if __name__ == "__main__":
    tf.test.main()
