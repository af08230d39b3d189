"""Tests for edge_ssl.train.data: where pretraining data comes from, and the per-pipeline datasets."""

import os
import types
from unittest import mock

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from edge_ssl.configs import loader
from edge_ssl.data import synthetic
from edge_ssl.data.datasets import synthetic_world
from edge_ssl.methods import registry
from edge_ssl.train import data


def _method(name: str, *overrides: str):
    return registry.get(name).build(loader.load(name, "tiny", overrides))


def _source():
    return synthetic.as_dataset(synthetic.get_config("tiny", performances=(2, 0, 0)), "pretrain")


class DataTest(tf.test.TestCase):

    def test_skip_continues_the_stream_of_an_unskipped_pipeline(self):
        method = _method("cross_and_learn")
        dataset_fn = data.make_dataset_fn(_source(), method, shuffle_buffer=4)
        ctx = tf.distribute.InputContext()
        whole = list(dataset_fn(ctx, 0).take(9))
        resumed = list(dataset_fn(ctx, 5).take(4))
        for a, b in zip(whole[5:], resumed):
            for key in a:
                self.assertAllClose(a[key], b[key])
        self.assertNotAllClose(whole[0]["rgb"], whole[1]["rgb"])

    def test_shuffle_buffer_is_sized_to_memory(self):
        video = {"rgb": tf.TensorSpec([16, 112, 112, 3], tf.float32)}
        pose = {"pose2d": tf.TensorSpec([None, 17, 2], tf.float32)}
        self.assertEqual(
            data.shuffle_buffer_size(video, {"rgb"}), data.SHUFFLE_MEMORY // (16 * 112 * 112 * 12)
        )
        self.assertEqual(data.shuffle_buffer_size(pose, {"pose2d"}), 1024)
        self.assertEqual(data.shuffle_buffer_size(video, {"rgb"}, memory=1), 16)

    def test_a_pose_method_s_synthetic_world_has_no_pixels_and_cameras_all_around(self):
        data_dir = os.path.join(self.get_temp_dir(), "pose_world")
        source = data.source_dataset("synthetic", _method("cv_mim"), data_dir, "pretrain", None)
        self.assertFalse(os.path.exists(data_dir))  # generated on the fly, nothing built
        examples = list(source.take(60))
        self.assertNotIn("rgb", examples[0])
        self.assertEqual(examples[0]["pose2d"].dtype, tf.float32)
        # Camera azimuths relative to the way the hips face: the rendered world keeps them within +-60 degrees.
        index = synthetic.keypoints.INDEX
        relative = []
        for e in examples:
            pose3d = e["pose3d"].numpy()
            across = pose3d[0, index["left_hip"]] - pose3d[0, index["right_hip"]]
            relative.append(float(e["view"][0]) - np.arctan2(across[2], -across[0]))
        relative = np.degrees(np.angle(np.exp(1j * np.array(relative))))
        self.assertGreater(np.max(np.abs(relative)), 100.0)

    def test_the_world_by_its_tfds_name_is_built_and_given_in_the_contract(self):
        # `--data=synthetic_world/tiny`: built on first use like `--data=synthetic`, and in the contract (float32 rgb
        # in [0, 1]; TFDS stores it as uint8, which the distiller's `prepare` refused with a dtype error).
        data_dir = os.path.join(self.get_temp_dir(), "tfds_by_name")  # new: nothing prepared there
        method = _method("cross_and_learn")
        self.assertFalse(os.path.exists(data_dir))
        source = data.source_dataset("synthetic_world/tiny", method, data_dir, "heldout", None)
        self.assertTrue(os.path.isdir(os.path.join(data_dir, "synthetic_world", "tiny")))
        example = next(iter(source))
        stored = next(iter(tfds.load("synthetic_world/tiny", split="heldout", data_dir=data_dir)))
        self.assertEqual(stored["rgb"].dtype, tf.uint8)
        self.assertEqual(example["rgb"].dtype, tf.float32)
        self.assertAllClose(example["rgb"], tf.cast(stored["rgb"], tf.float32) / 255)
        self.assertBetween(float(tf.reduce_max(example["rgb"])), 0.5, 1.0)
        self.assertEqual(example["label"].dtype, tf.int32)
        self.assertEqual(int(example["label"]), int(stored["label"]))
        prepared = method.prepare(example, tf.constant([1, 2]))
        self.assertEqual(prepared["rgb"].dtype, tf.float32)

    def test_a_prepared_tfds_dataset_is_given_in_the_contract(self):
        # Any TFDS dataset read by name (here the world through TFDS alone, no edge_ssl loader): uint8 rgb becomes
        # float32 in [0, 1] and labels int32.
        data_dir = os.path.join(self.get_temp_dir(), "tfds_prepared")
        expected = next(iter(synthetic_world.load("tiny", "heldout", data_dir)))
        with mock.patch.object(synthetic_world, "load", side_effect=AssertionError("not by name")):
            source = data._tfds_dataset(
                "synthetic_world/tiny", _method("cross_and_learn"), data_dir, "heldout"
            )
            example = next(iter(source))
        self.assertEqual(example["rgb"].dtype, tf.float32)
        self.assertAllClose(example["rgb"], expected["rgb"])
        self.assertEqual(example["label"].dtype, tf.int32)

    def test_bad_sources_are_clear_errors(self):
        method = _method("muscles")
        with self.assertRaisesRegex(data.DataError, "does not exist"):
            data.source_dataset("./no/such/folder", method, None, "pretrain", None)
        # A bare word that is neither a folder nor a prepared TFDS dataset: one short message, not TFDS's list of
        # every dataset it knows.
        with self.assertRaisesRegex(
            data.DataError, "the synthetic world's sizes are tiny, small, base"
        ):
            data.source_dataset(
                "synthetic_world/huge", method, self.get_temp_dir(), "pretrain", None
            )
        with self.assertRaisesRegex(data.DataError, "'folder' is not an existing folder") as raised:
            data.source_dataset("folder", method, self.get_temp_dir(), "pretrain", None)
        self.assertEqual(len(str(raised.exception).splitlines()), 1)
        self.assertIn(self.get_temp_dir(), str(raised.exception))
        folder = self.get_temp_dir() + "/videos"
        os.makedirs(folder, exist_ok=True)
        with self.assertRaisesRegex(
            data.DataError, r"muscles needs \[.*'gaze'.*\], which a video folder does not"
        ):
            data.source_dataset(folder, method, None, "pretrain", None)
        # A student of a pose teacher (CV-MIM) needs 2D keypoints beside the pixels, which videos do not carry.
        pose_taught = types.SimpleNamespace(
            name="distill", modality="video", input_keys=("rgb", "pose2d"), config=method.config
        )
        with self.assertRaisesRegex(
            data.DataError, r"distill needs \['pose2d'\], which a video folder does not"
        ):
            data.source_dataset(folder, pose_taught, None, "pretrain", None)
        with self.assertRaisesRegex(data.DataError, "needs optical flow: give a cache folder"):
            data.source_dataset(folder, _method("modist", "motion=flow"), None, "pretrain", None)

    def test_labels_come_from_the_world_or_a_dataset_s_class_label_and_flips_mirror_the_world_s(
        self,
    ):
        self.assertEqual(data.label_classes("synthetic", None), synthetic.NUM_ACTIONS)
        self.assertEqual(data.label_classes(self.get_temp_dir(), None), 0)  # a folder of videos
        self.assertEqual(data.label_classes("no_such_dataset_anywhere", self.get_temp_dir()), 0)
        flip = data.label_flip("synthetic", synthetic.NUM_ACTIONS)
        self.assertEqual(flip, tuple(int(i) for i in synthetic.ACTION_FLIP))
        self.assertEqual(data.label_flip("synthetic_world/small", synthetic.NUM_ACTIONS), flip)
        self.assertEqual(data.label_flip(self.get_temp_dir(), 0), ())
        self.assertEqual(data.label_flip("my_dataset", synthetic.NUM_ACTIONS), ())

    def test_a_queue_not_smaller_than_the_dataset_is_warned_about_with_its_numbers(self):
        method = _method("modist")  # tiny: a visual and a motion queue of 256 keys each
        queue = method.config.queue_size

        def source(n):
            return tf.data.Dataset.from_tensor_slices({"rgb": np.zeros([n, 1], np.float32)})

        with self.assertLogs(logger="absl", level="WARNING") as logs:
            data.make_dataset_fn(source(queue), method)
        self.assertLen(logs.records, 2)
        for record, name in zip(logs.records, ("motion_queue", "visual_queue")):
            self.assertRegex(
                record.getMessage(),
                f"modist's {name} holds {queue} keys, not fewer than the {queue} examples.*N < {queue}",
            )
        with self.assertNoLogs(logger="absl", level="WARNING"):
            data.make_dataset_fn(source(queue + 1), method)
            # A dataset of unknown size (a folder's, filtered) is not checked.
            data.make_dataset_fn(source(10).filter(lambda ex: True), method)
        self.assertEqual(data.check_queues(_method("cross_and_learn"), 1), [])

    def test_small_configs_keep_their_queues_below_the_small_worlds_clips(self):
        world = synthetic.get_config(synthetic.CONFIG_WORLDS["small"])
        clips = world.num_performances("pretrain") * world.num_cameras
        for name in ("modist", "muscles"):
            with self.subTest(method=name):
                self.assertLess(loader.load(name, "small", []).queue_size, clips)


if __name__ == "__main__":
    tf.test.main()
