"""Tests for edge_ssl.environment and the demo CLI that prints it."""

import json
import os

import tensorflow as tf
from absl.testing import flagsaver

from edge_ssl import environment
from edge_ssl.cli import demo


class EnvironmentTest(tf.test.TestCase):

    def test_reports_pinned_stack_and_keras_2(self):
        facts = environment.describe()
        self.assertEqual(facts["tensorflow"], tf.__version__)
        self.assertTrue(facts["keras (in use)"].startswith("2."), facts)
        self.assertIn("tf_keras", facts["keras (in use)"])

    def test_missing_package_is_reported_not_raised(self):
        self.assertEqual(environment.package_version("no-such-package-edge-ssl"), "not installed")

    def test_tf_trt_matches_tensorflow_build_info(self):
        built_with_trt = bool(tf.sysconfig.get_build_info().get("is_tensorrt_build", False))
        self.assertEqual(environment.tf_trt_enabled(), built_with_trt)

    def test_demo_reports_the_stack_and_builds_the_world_once(self):
        out = os.path.join(self.get_temp_dir(), "demo")
        reports = []
        for _ in range(2):
            with flagsaver.flagsaver(output_dir=out, world="tiny"):
                demo.main(["demo"])
            with open(os.path.join(out, "demo.json"), encoding="utf-8") as f:
                reports.append(json.load(f))
        first, second = reports
        self.assertEqual(first["environment"]["tf-keras"], "2.21.0")
        self.assertEqual(first["world"]["splits"], {"pretrain": 120, "test": 60, "heldout": 60})
        self.assertFalse(first["world"]["reused"])
        self.assertTrue(second["world"]["reused"])
        self.assertIn("jump", first["world"]["heldout_classes"])


if __name__ == "__main__":
    tf.test.main()
