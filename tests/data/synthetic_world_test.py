"""Tests for the synthetic_world TFDS builder: it builds offline, matches the generator, and reloads elsewhere."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
from unittest import mock

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from edge_ssl.data import synthetic
from edge_ssl.data.datasets import synthetic_world

# Run in a fresh interpreter that must never import the builder module: a prepared dataset stands on its own.
_FRESH_PROCESS = textwrap.dedent("""
    import json, socket, sys
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")
    socket.socket.connect = no_network
    import tensorflow_datasets as tfds
    data_dir = sys.argv[1]
    builder = tfds.builder_from_directory(f"{data_dir}/synthetic_world/tiny/{sys.argv[2]}")
    out = {"splits": {k: v.num_examples for k, v in builder.info.splits.items()}}
    out["labels"] = builder.info.features["label"].names
    heldout = list(builder.as_dataset(split="heldout").as_numpy_iterator())
    out["rgb_dtype"] = str(heldout[0]["rgb"].dtype)
    out["checksum"] = sum(float(e["pose2d"].sum()) + int(e["rgb"].sum()) for e in heldout)
    by_name = tfds.load("synthetic_world/tiny", data_dir=data_dir, split="pretrain", download=False)
    out["pretrain_by_name"] = sum(1 for _ in by_name)
    out["builder_imported"] = any(m.startswith("edge_ssl.data.datasets") for m in sys.modules)
    print(json.dumps(out))
    """)


def _inverse_countdown(index: int) -> float:
    """Distinct values in order, then ZeroDivisionError at index 39 (module level, so worker processes can run it)."""
    return 1.0 / (39 - index)


class SyntheticWorldTest(tf.test.TestCase):

    _data_dir = None
    _pretrain = None

    def setUp(self):
        super().setUp()
        cls = type(self)
        if cls._data_dir is None:
            # Built once for all tests (get_temp_dir is shared within the process): the real `tiny` config, through
            # tfds.load by name, as a user would.
            cls._data_dir = os.path.join(self.get_temp_dir(), "tfds")
            with mock.patch.object(
                socket.socket, "connect", side_effect=OSError("network disabled")
            ):
                cls._pretrain = list(
                    tfds.load(
                        "synthetic_world/tiny", split="pretrain", data_dir=cls._data_dir
                    ).as_numpy_iterator()
                )
        self.data_dir, self.pretrain = cls._data_dir, cls._pretrain

    def test_splits_have_the_configured_sizes(self):
        builder = tfds.builder("synthetic_world/tiny", data_dir=self.data_dir)
        world = synthetic.get_config("tiny")
        sizes = {k: v.num_examples for k, v in builder.info.splits.items()}
        self.assertEqual(
            sizes, {s: world.num_performances(s) * world.num_cameras for s in synthetic.SPLITS}
        )
        self.assertEqual(builder.info.features["label"].names, list(synthetic.ACTIONS))
        self.assertEqual(builder.info.features["rgb"].shape, (8, 32, 32, 3))

    def test_examples_equal_the_generator(self):
        expected = {
            (int(e["performance_id"]), int(e["camera_id"])): e
            for e in synthetic.generate(synthetic.get_config("tiny"), "pretrain", seed=0)
        }
        self.assertLen(self.pretrain, len(expected))
        for example in self.pretrain:
            want = expected[(int(example["performance_id"]), int(example["camera_id"]))]
            for key, value in want.items():
                np.testing.assert_array_equal(example[key], value, err_msg=key)

    def test_load_gives_the_contract(self):
        ds = synthetic_world.load("tiny", "heldout", data_dir=self.data_dir, download=False)
        heldout = {synthetic.ACTIONS.index(a) for a in synthetic.HELDOUT_ACTIONS}
        count = 0
        for example in ds.as_numpy_iterator():
            count += 1
            self.assertEqual(example["rgb"].dtype, np.float32)
            self.assertEqual(example["rgb"].shape, (8, 32, 32, 3))
            self.assertTrue(0.0 <= example["rgb"].min() and example["rgb"].max() <= 1.0)
            self.assertEqual(example["label"].dtype, np.int32)
            self.assertEqual(example["moved"].dtype, np.int32)
            self.assertIn(int(example["label"]), heldout)
        self.assertEqual(count, 20 * 3)

    def test_loads_in_a_fresh_process_without_the_builder_module(self):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("PYTHONPATH", None)  # edge_ssl must not be importable there
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                _FRESH_PROCESS,
                self.data_dir,
                str(synthetic_world.SyntheticWorld.VERSION),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.get_temp_dir(),
            timeout=120,
        )
        self.assertEqual(run.returncode, 0, run.stderr[-3000:])
        out = json.loads(run.stdout.strip().splitlines()[-1])
        self.assertFalse(out["builder_imported"])
        self.assertEqual(out["splits"], {"pretrain": 120, "test": 60, "heldout": 60})
        self.assertEqual(out["labels"], list(synthetic.ACTIONS))
        self.assertEqual(out["rgb_dtype"], "uint8")
        self.assertEqual(out["pretrain_by_name"], 120)
        here = tfds.builder("synthetic_world/tiny", data_dir=self.data_dir).as_dataset(
            split="heldout"
        )
        checksum = sum(
            float(e["pose2d"].sum()) + int(e["rgb"].sum()) for e in here.as_numpy_iterator()
        )
        self.assertAllClose(out["checksum"], checksum)

    def test_a_build_leaves_nothing_in_the_temporary_folder(self):
        temp = self.create_tempdir().full_path
        config = synthetic_world.make_config(
            "tiny", seed=7, config_name="tiny_no_litter", performances=(0, 0, 1)
        )
        with mock.patch.object(tempfile, "tempdir", temp):
            builder = synthetic_world.SyntheticWorld(
                config=config, data_dir=os.path.join(self.get_temp_dir(), "litter")
            )
            builder.download_and_prepare()
        self.assertEqual(builder.info.splits["heldout"].num_examples, config.world.num_cameras)
        self.assertEqual(os.listdir(temp), [])

    def test_custom_config_and_validation(self):
        config = synthetic_world.make_config(
            "tiny", seed=5, config_name="tiny_seed5", performances=(1, 0, 1)
        )
        builder = synthetic_world.SyntheticWorld(config=config, data_dir=self.data_dir)
        builder.download_and_prepare()
        got = list(builder.as_dataset(split="heldout").as_numpy_iterator())
        want = list(synthetic.generate(config.world, "heldout", seed=5))
        self.assertLen(got, len(want))
        self.assertEqual(set(builder.info.splits), {"pretrain", "heldout"})  # no empty "test"
        self.assertEqual(
            sorted(e["view"].tobytes() for e in got), sorted(e["view"].tobytes() for e in want)
        )
        with self.assertRaisesRegex(ValueError, "WorldConfig"):
            synthetic_world.SyntheticWorldConfig(world={"num_frames": 8})
        with self.assertRaisesRegex(ValueError, "seed"):
            synthetic_world.SyntheticWorldConfig(world=synthetic.get_config("tiny"), seed=-1)
        with self.assertRaisesRegex(ValueError, "unknown synthetic world size"):
            synthetic_world.make_config("huge")

    def test_worker_processes_store_the_same_examples(self):
        # Any split renders in worker processes once the threshold is 0; what is stored must not change with it.
        config = synthetic_world.make_config(
            "tiny", seed=3, config_name="tiny_workers", performances=(0, 0, 2)
        )
        with mock.patch.object(synthetic_world, "PARALLEL_MIN_PIXELS", 0):
            self.assertEqual(
                synthetic_world._workers(config.world, "heldout"),
                min(len(os.sched_getaffinity(0)), 2),
            )
            with mock.patch.object(synthetic_world, "_workers", return_value=2) as workers:
                builder = synthetic_world.SyntheticWorld(config=config, data_dir=self.data_dir)
                builder.download_and_prepare()
        workers.assert_called_once_with(
            config.world, "heldout"
        )  # the one split went through the workers
        for split in ("heldout",):
            got = {
                (int(e["performance_id"]), int(e["camera_id"])): e
                for e in builder.as_dataset(split=split).as_numpy_iterator()
            }
            want = list(synthetic.generate(config.world, split, seed=3))
            self.assertLen(got, len(want))
            for example in want:
                stored = got[(int(example["performance_id"]), int(example["camera_id"]))]
                for key, value in example.items():
                    np.testing.assert_array_equal(stored[key], value, err_msg=f"{split} {key}")

    def test_workers_follow_the_split_size(self):
        tiny = synthetic.get_config("tiny")
        self.assertEqual(
            synthetic_world._workers(tiny, "pretrain"), 1
        )  # tests' worlds stay in-process
        small = synthetic.get_config("small")
        self.assertEqual(
            synthetic_world._workers(small, "pretrain"), min(len(os.sched_getaffinity(0)), 2000)
        )
        one = synthetic.get_config("small", performances=(1, 0, 0))
        with mock.patch.object(synthetic_world, "PARALLEL_MIN_PIXELS", 0):
            self.assertEqual(
                synthetic_world._workers(one, "pretrain"), 1
            )  # never more than the performances

    def test_in_order_keeps_order_and_propagates_errors(self):
        want = [_inverse_countdown(i) for i in range(39)]
        for workers in (1, 2):
            got = []
            with self.assertRaises(ZeroDivisionError):  # raised by the worker for index 39
                for value in synthetic_world._in_order(_inverse_countdown, 40, workers):
                    got.append(value)
            self.assertEqual(got, want, f"workers={workers}")


if __name__ == "__main__":
    tf.test.main()
