"""Test data for the runner: labeled video and pose folders whose classes a random tiny model tells apart, and a
tiny student's artifact directory."""

import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np

from tests import prebuilt

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


_TINY_ARTIFACT = "//tests/fewshot:tiny_artifact_tar"


def _export_tiny_student(output_dir: str) -> None:
    from tests.fewshot import tiny_artifact  # pylint: disable=g-import-not-at-top  (TensorFlow)

    tiny_artifact.export_tiny_student(output_dir)


def tiny_student_artifact(output_dir: str) -> str:
    """A random tiny student's artifact directory (fp32, int8 and ONNX) at output_dir, built once by Bazel for every
    test that reads it (tests/prebuilt.py); returns output_dir."""
    return prebuilt.extract(_TINY_ARTIFACT, output_dir, _export_tiny_student)


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
