"""Tests for edge_ssl.demo.pipeline: the command line the report shows, and the distillation flags per teacher."""

import dataclasses
import os

import tensorflow as tf

from edge_ssl.demo import pipeline, stages
from edge_ssl.distill import distiller


class OutputDirTest(tf.test.TestCase):

    def test_new_empty_and_earlier_runs_are_taken_and_anything_else_refused(self):
        root = self.get_temp_dir()
        pipeline.check_output_dir(os.path.join(root, "new"))
        os.makedirs(os.path.join(root, "empty"))
        pipeline.check_output_dir(os.path.join(root, "empty"))
        for marker in (stages.MARKER, stages.STARTED):  # a finished stage, an interrupted one
            os.makedirs(os.path.join(root, marker, "world"))
            with open(os.path.join(root, marker, "world", marker), "w", encoding="utf-8") as f:
                f.write("{}")
            pipeline.check_output_dir(os.path.join(root, marker))
        os.makedirs(os.path.join(root, "videos", "jump"))
        with self.assertRaisesRegex(pipeline.DemoError, r"holds jump and no earlier demo run"):
            pipeline.check_output_dir(os.path.join(root, "videos"))
        with self.assertRaisesRegex(pipeline.DemoError, "is a file"):
            pipeline.check_output_dir(os.path.join(root, marker, "world", marker))


class CommandLineTest(tf.test.TestCase):

    def test_command_line_names_every_flag_that_differs_from_its_default(self):
        out = os.path.join(self.get_temp_dir(), "demo")
        self.assertEqual(
            pipeline.Demo(out, pipeline.DEFAULT).command_line,
            f"python -m edge_ssl.cli.demo --output_dir={out}",
        )
        data = os.path.join(self.get_temp_dir(), "tfds")
        demo = pipeline.Demo(out, pipeline.QUICK, method="muscles", data_dir=data)
        self.assertEqual(
            demo.command_line,
            f"python -m edge_ssl.cli.demo --output_dir={out} --quick --method=muscles"
            f" --data_dir={data}",
        )
        # The default data folder, named explicitly, is still the default.
        default_data = os.path.join(out, "tensorflow_datasets")
        self.assertNotIn(
            "--data_dir", pipeline.Demo(out, pipeline.DEFAULT, data_dir=default_data).command_line
        )


class DistillFlagsTest(tf.test.TestCase):

    def _overrides(self, method: str) -> dict[str, str]:
        flags = pipeline.Demo(self.get_temp_dir(), pipeline.DEFAULT, method=method).distill_flags
        overrides = dict(f.removeprefix("--config_override=").split("=") for f in flags)
        fields = {f.name for f in dataclasses.fields(distiller.DistillConfig)}
        self.assertLessEqual(set(overrides), fields)  # a renamed field would fail the stage
        return overrides

    def test_every_teacher_s_student_distils_without_labels(self):
        # The distiller's default terms but the logit term: no teacher was pretrained with action labels, so no
        # student distils with them.
        for method in ("cross_and_learn", "modist", "muscles", "cv_mim"):
            with self.subTest(method=method):
                self.assertEqual(self._overrides(method), {"weight_logits": "0"})


if __name__ == "__main__":
    tf.test.main()
