"""Tests for tests/prebuilt.py: fixtures written to a tar file whole or not at all, and extracted or built."""

import os
from unittest import mock

from absl import app
from absl.testing import absltest

from tests import prebuilt


def _build(folder: str) -> None:
    os.makedirs(os.path.join(folder, "sub"))
    with open(os.path.join(folder, "sub", "file.txt"), "w", encoding="utf-8") as f:
        f.write("content")


def _read(folder: str) -> str:
    with open(os.path.join(folder, "sub", "file.txt"), encoding="utf-8") as f:
        return f.read()


class PrebuiltTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.temp = self.create_tempdir().full_path
        self.tar = os.path.join(
            self.temp, "x", "fixture.tar"
        )  # //x:fixture_tar's file, the workspace at temp
        os.makedirs(os.path.dirname(self.tar))
        root = mock.patch.object(prebuilt, "_ROOT", self.temp)
        root.start()
        self.addCleanup(root.stop)

    def test_the_tar_file_extracts_to_what_was_built(self):
        prebuilt.write_tar(self.tar, _build)
        never = mock.Mock(side_effect=AssertionError("built although the tar file is there"))
        out = prebuilt.extract("//x:fixture_tar", os.path.join(self.temp, "out"), never)
        self.assertEqual(_read(out), "content")
        self.assertEqual(
            os.listdir(os.path.dirname(self.tar)), ["fixture.tar"]
        )  # no partial file left

    def test_a_failed_build_leaves_no_tar_file(self):
        def fails(folder):
            _build(folder)
            raise RuntimeError("export failed")

        with self.assertRaisesRegex(RuntimeError, "export failed"):
            prebuilt.write_tar(self.tar, fails)
        self.assertEqual(os.listdir(os.path.dirname(self.tar)), [])
        # Nor does a tar file that fails half-way.
        with mock.patch.object(prebuilt.tarfile.TarFile, "add", side_effect=OSError("disk full")):
            with self.assertRaisesRegex(OSError, "disk full"):
                prebuilt.write_tar(self.tar, _build)
        self.assertEqual(os.listdir(os.path.dirname(self.tar)), [])

    def test_the_tool_main_writes_the_tar_file_it_is_given(self):
        main = prebuilt.tool_main(_build)
        with self.assertRaisesRegex(app.UsageError, "usage: tool OUTPUT.tar"):
            main(["tool"])
        main(["tool", self.tar])
        out = prebuilt.extract("//x:fixture_tar", os.path.join(self.temp, "out"), None)
        self.assertEqual(_read(out), "content")

    def test_without_the_tar_file_a_bazel_test_is_told_what_to_add_and_a_script_builds(self):
        out = os.path.join(self.temp, "out")
        with mock.patch.dict(os.environ, {"TEST_SRCDIR": self.temp}):
            with self.assertRaisesRegex(FileNotFoundError, "add //x:fixture_tar to its data"):
                prebuilt.extract("//x:fixture_tar", out, _build)
        with mock.patch.dict(os.environ):
            os.environ.pop("TEST_SRCDIR", None)
            self.assertEqual(_read(prebuilt.extract("//x:fixture_tar", out, _build)), "content")


if __name__ == "__main__":
    absltest.main()
