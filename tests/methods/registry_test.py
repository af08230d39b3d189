"""Tests for edge_ssl.methods.registry: one table of methods that the configs, the CLIs and the distiller read."""

import dataclasses
import json

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
            set(loader.CONFIGS), {(m, s) for m in registry.METHODS for s in loader.PRESETS}
        )
        self.assertEqual(teacher.TEACHERS, tuple(registry.METHODS))
        for (
            name,
            module,
        ) in registry.METHODS.items():  # every method declares the views it teaches with
            views = module.build(loader.load(name, "tiny")).teacher_views()
            self.assertIn("visual", views, name)
        with self.assertRaisesRegex(ValueError, "unknown method 'simclr'; choose one of"):
            registry.get("simclr")

    def test_a_run_s_config_is_rebuilt_from_its_record(self):
        current = loader.load("modist", "tiny")
        record = {
            "method": "modist",
            "preset": "tiny",
            "config": {**dataclasses.asdict(current), "seed": 5, "removed_field": 1},
        }
        record["config"].pop(
            "motion_width_divisor"
        )  # a field added after the run: its default, not the preset's
        rebuilt = loader.from_run(
            json.loads(json.dumps(record))
        )  # through JSON: tuples come back as lists
        self.assertEqual(rebuilt.seed, 5)
        self.assertEqual(rebuilt.motion_width_divisor, 8)
        self.assertEqual(
            dataclasses.replace(
                rebuilt, seed=current.seed, motion_width_divisor=current.motion_width_divisor
            ),
            current,
        )
        self.assertEqual(loader.from_run({"method": "modist", "preset": "tiny"}), current)
        with self.assertRaisesRegex(ValueError, "unknown method 'simclr'"):
            loader.from_run({"method": "simclr", "preset": "tiny"})

    def test_a_run_recorded_before_the_preset_had_its_name_is_read(self):
        small = loader.load("modist", "small")
        stored = dataclasses.asdict(small)
        stored["size"] = stored.pop("preset")
        old = {"method": "modist", "size": "small", "config": stored}
        self.assertEqual(loader.from_run(json.loads(json.dumps(old))), small)
        self.assertEqual(loader.from_run({"method": "modist", "size": "small"}).preset, "small")


if __name__ == "__main__":
    tf.test.main()
