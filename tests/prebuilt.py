"""Fixtures that Bazel builds once for every test that reads them: a genrule runs a tool that writes the fixture's
folder into a tar file (`write_tar`), the tests list that file in their `data` and extract it (`extract`). Bazel keeps
the tar file until the tool's sources change, so `--nocache_test_results` reruns the tests, not the fixture's build.
A test run as a plain script (no Bazel) builds the fixture itself."""

import os
import tarfile
import tempfile
from collections.abc import Callable

from absl import app

# The workspace's root: the source tree, or the test's runfiles under Bazel, where the tar files Bazel built lie.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_tar(path: str, build: Callable[[str], object]) -> None:
    """build(folder), then the folder as a tar file at path, written whole or not at all."""
    with tempfile.TemporaryDirectory() as temp:
        folder = os.path.join(temp, "fixture")
        build(folder)
        partial = path + ".partial"
        try:
            with tarfile.open(partial, "w") as tar:
                tar.add(folder, arcname=".")
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):  # a tar file that failed half-way
                os.remove(partial)


def tool_main(build: Callable[[str], object]) -> Callable[[list[str]], None]:
    """The main of a fixture's tool (for absl's app.run): `tool OUTPUT.tar` runs write_tar(OUTPUT.tar, build)."""

    def main(argv: list[str]) -> None:
        if len(argv) != 2:
            raise app.UsageError(f"usage: {argv[0]} OUTPUT.tar")
        write_tar(argv[1], build)

    return main


def extract(target: str, output_dir: str, build: Callable[[str], object]) -> str:
    """The fixture at output_dir, returned: extracted from the tar file of `target` (a `prebuilt_tar` genrule's label,
    `//package:name_tar`, whose file is `package/name.tar`); outside Bazel, build(output_dir).

    Raises:
      FileNotFoundError: under Bazel, the test does not list `target` in its data.
    """
    package, name = target.removeprefix("//").split(":")
    tar_path = os.path.join(_ROOT, package, name.removesuffix("_tar") + ".tar")
    if os.path.isfile(tar_path):
        with tarfile.open(tar_path) as tar:
            tar.extractall(output_dir, filter="data")
    elif "TEST_SRCDIR" in os.environ:
        raise FileNotFoundError(
            f"{tar_path} is not in the test's runfiles: add {target} to its data"
        )
    else:
        build(output_dir)
    return output_dir
