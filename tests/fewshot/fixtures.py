"""Test data for the runner: labeled video and pose folders whose classes a random tiny model tells apart, and a
tiny student's artifact directory."""

import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np

SIZE = 32
FRAMES = 8
# Class -> base colour (BGR): a random student separates brightness and hue, so these are learnable without training.
COLOURS = {
    "bright": (220, 220, 220),
    "dark": (30, 30, 30),
    "red": (40, 40, 200),
    "green": (40, 200, 40),
}


def write_video(path: str, colour, rng: np.random.Generator, frames: int = 12) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (SIZE + 8, SIZE))
    assert writer.isOpened(), path
    for _ in range(frames):
        noise = rng.integers(-25, 25, size=(SIZE, SIZE + 8, 3))
        writer.write(np.clip(np.array(colour)[None, None] + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path


def write_video_folder(root: str, per_class: int, classes=tuple(COLOURS), seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    for name in classes:
        for i in range(per_class):
            write_video(os.path.join(root, name, f"clip{i}.mp4"), COLOURS[name], rng)
    return root


def export_tiny_student(output_dir: str, quantizations=("fp32", "int8"), onnx: bool = True) -> dict:
    """A random tiny student's artifact directory (TensorFlow needed); returns its card."""
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top
    from export import artifacts  # pylint: disable=g-import-not-at-top

    keras.utils.set_random_seed(0)
    student = student_lib.build_student("tiny")
    rng = np.random.default_rng(1)
    levels = np.array([0.15, 0.5, 0.85])[np.array([0, 0, 1, 1, 2, 2])][:, None, None, None, None]
    clips = np.clip(levels + rng.uniform(-0.1, 0.1, (6, FRAMES, SIZE, SIZE, 3)), 0, 1).astype(
        "float32"
    )
    options = artifacts.ExportOptions(quantizations=tuple(quantizations), onnx=onnx)
    return artifacts.export_student(student, output_dir, list(clips[:4]), clips, None, options)


# Runs a CLI's main in a fresh interpreter in which `import tensorflow` raises, and checks nothing loaded it.
_WITHOUT_TENSORFLOW = textwrap.dedent("""
    import importlib, sys
    sys.modules["tensorflow"] = None  # any `import tensorflow` now raises ImportError
    from absl import app
    cli = importlib.import_module(sys.argv[1])
    sys.argv = [sys.argv[1]] + sys.argv[2:]
    try:
        app.run(cli.main)
    finally:
        loaded = [m for m, v in sys.modules.items() if v is not None and m.split(".")[0] == "tensorflow"]
        assert not loaded, loaded
    """)


def run_without_tensorflow(
    module: str, args: list[str], timeout: int
) -> subprocess.CompletedProcess:
    """`python -m module args` where TensorFlow cannot be imported (the device runtime's promise), captured."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_TENSORFLOW, module, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=root),
        timeout=timeout,
        check=False,
    )
