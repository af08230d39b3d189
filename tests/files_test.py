"""Tests for edge_ssl.files: a failed write leaves neither a partial file nor a temporary one."""

import json
import os

from absl.testing import absltest

from edge_ssl import files


class FilesTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path

    def test_write_json_atomic_creates_folder_and_file(self):
        path = os.path.join(self.tmp, "new", "card.json")
        files.write_json_atomic(path, {"b": 1, "a": [1, 2]})
        with open(path, encoding="utf-8") as f:
            self.assertEqual(json.load(f), {"a": [1, 2], "b": 1})
        self.assertEqual(os.listdir(os.path.dirname(path)), ["card.json"])

    def test_failed_write_keeps_the_old_file_and_no_temporary(self):
        folder = self.create_tempdir().full_path
        path = os.path.join(folder, "card.json")
        files.write_json_atomic(path, {"version": 1})
        with self.assertRaises(TypeError):
            files.write_json_atomic(
                path, {"version": object()}
            )  # not JSON-serialisable, fails mid-write
        with open(path, encoding="utf-8") as f:
            self.assertEqual(json.load(f), {"version": 1})
        self.assertEqual(os.listdir(folder), ["card.json"])

    def test_replace_directory_swaps_a_whole_folder_and_leaves_nothing_aside(self):
        root = self.tmp + "/swap"
        target, new = os.path.join(root, "model"), os.path.join(root, "model.partial")
        os.makedirs(target)
        with open(os.path.join(target, "old.txt"), "w", encoding="utf-8") as f:
            f.write("old")
        os.makedirs(new)
        with open(os.path.join(new, "new.txt"), "w", encoding="utf-8") as f:
            f.write("new")
        files.replace_directory(new, target)
        self.assertEqual(os.listdir(target), ["new.txt"])
        self.assertEqual(sorted(os.listdir(root)), ["model"])
        fresh = os.path.join(root, "fresh.partial")
        os.makedirs(fresh)
        files.replace_directory(fresh, os.path.join(root, "fresh"))
        self.assertEqual(sorted(os.listdir(root)), ["fresh", "model"])


if __name__ == "__main__":
    absltest.main()
