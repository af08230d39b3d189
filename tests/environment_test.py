"""Tests for edge_ssl.environment (the demo prints it; the demo itself is tests/integration/demo_test.py)."""

import tensorflow as tf

from edge_ssl import environment


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


if __name__ == "__main__":
    tf.test.main()
