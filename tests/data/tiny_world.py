"""The tiny synthetic world, prepared in a TFDS data folder, for the tests of the CLIs that read it (pretrain,
distill, export): `//tests/data:tiny_world_tar` runs this once into a tar file that `tiny_world` extracts
(`tests/prebuilt.py`). The tests of the world's own building (`synthetic_world_test`, `data_test`) build it.
"""

from absl import app

from edge_ssl.data.datasets import synthetic_world
from tests import prebuilt

_TARGET = "//tests/data:tiny_world_tar"


def _build(data_dir: str) -> None:
    synthetic_world.load("tiny", "pretrain", data_dir=data_dir)  # prepares every split


def tiny_world(data_dir: str) -> str:
    """`synthetic_world/tiny` with every split in the TFDS folder data_dir; returns data_dir."""
    return prebuilt.extract(_TARGET, data_dir, _build)


main = prebuilt.tool_main(_build)


if __name__ == "__main__":
    app.run(main)
