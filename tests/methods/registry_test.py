"""Tests for edge_ssl.methods.registry: one table of methods that the configs, the CLIs and the distiller read."""

import tensorflow as tf

from edge_ssl.configs import loader
from edge_ssl.distill import teacher
from edge_ssl.methods import base, registry


class RegistryTest(tf.test.TestCase):

    def test_every_method_declares_what_it_learns_from_and_builds_as_that(self):
        for name, module in registry.METHODS.items():
            with self.subTest(method=name):
                self.assertIn(module.MODALITY, base.MODALITIES)
                method = module.build(loader.load(name, "tiny"))
                self.assertEqual((method.name, method.modality), (name, module.MODALITY))
        self.assertEqual(registry.VIDEO_METHODS, ("cross_and_learn", "modist", "muscles"))
        self.assertEqual(registry.METHODS["cv_mim"].MODALITY, "pose")

    def test_configs_and_teachers_come_from_the_one_table(self):
        self.assertEqual(loader.CONFIGS_METHODS, tuple(registry.METHODS))
        self.assertEqual(
            set(loader.CONFIGS), {(m, s) for m in registry.METHODS for s in loader.SIZES}
        )
        self.assertEqual(teacher.TEACHERS, tuple(registry.METHODS))
        self.assertEqual(set(teacher.VIEWS), set(registry.METHODS))
        with self.assertRaisesRegex(ValueError, "unknown method 'simclr'; choose one of"):
            registry.get("simclr")


if __name__ == "__main__":
    tf.test.main()
