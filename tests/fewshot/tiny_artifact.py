"""The random tiny student's artifact directory that the runner's, the finetune CLI's and the recognize CLI's tests
read (`fixtures.tiny_student_artifact`): `//tests/fewshot:tiny_artifact_tar` runs this once into a tar file
(`tests/prebuilt.py`)."""

import numpy as np
from absl import app

from edge_ssl.keras import keras
from edge_ssl.models import student as student_lib
from export import artifacts
from tests import prebuilt
from tests.fewshot import fixtures


def export_tiny_student(output_dir: str) -> dict:
    """Exports a random tiny student (seeded) with its parity checks into output_dir; returns its card."""
    keras.utils.set_random_seed(0)
    student = student_lib.build_student("tiny")
    rng = np.random.default_rng(1)
    levels = np.array([0.15, 0.5, 0.85])[np.array([0, 0, 1, 1, 2, 2])][:, None, None, None, None]
    clips = np.clip(
        levels + rng.uniform(-0.1, 0.1, (6, fixtures.FRAMES, fixtures.SIZE, fixtures.SIZE, 3)), 0, 1
    ).astype("float32")
    options = artifacts.ExportOptions(quantizations=("fp32", "int8"), onnx=True)
    return artifacts.export_student(student, output_dir, list(clips[:4]), clips, None, options)


main = prebuilt.tool_main(export_tiny_student)


if __name__ == "__main__":
    app.run(main)
