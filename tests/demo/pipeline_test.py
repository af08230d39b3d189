"""Tests for edge_ssl.demo.pipeline: the command line the report shows is the one that runs the demo."""

import os

import tensorflow as tf

from edge_ssl.demo import pipeline


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


if __name__ == "__main__":
    tf.test.main()
