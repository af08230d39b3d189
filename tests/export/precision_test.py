"""Tests for export.runtime.precision: the fastest form picked by timing, remembered per machine and artifact."""

import os
import time
from unittest import mock

from absl.testing import absltest

from export.runtime import precision


def _sleeper(seconds: float):
    return lambda: (lambda: time.sleep(seconds))


class PrecisionTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.folder = self.create_tempdir().full_path
        self.files = {}
        for name in ("fp32", "int8"):
            path = os.path.join(self.folder, f"model_{name}.tflite")
            with open(path, "wb") as f:
                f.write(name.encode())
            self.files[name] = [path]

    def _choose(self, fp32_seconds=0.004, int8_seconds=0.001, what="litert step, 1 thread"):
        return precision.choose(
            {"fp32": _sleeper(fp32_seconds), "int8": _sleeper(int8_seconds)},
            self.files,
            what,
            self.folder,
            budget_seconds=0.1,
        )

    def test_the_faster_form_is_picked_and_the_reason_names_both(self):
        choice = self._choose(fp32_seconds=0.001, int8_seconds=0.004)
        self.assertEqual(choice.precision, "fp32")
        self.assertFalse(choice.cached)
        self.assertLess(choice.timings_ms["fp32"], choice.timings_ms["int8"])
        self.assertRegex(
            choice.reason, r"^fp32: the fastest litert step, 1 thread on .*: fp32 .* ms, int8 .* ms"
        )
        self.assertIn("measured now", choice.reason)

    def test_a_second_call_reads_the_cache_and_a_changed_file_measures_again(self):
        first = self._choose()
        self.assertTrue(os.path.exists(os.path.join(self.folder, precision.CACHE_FILE)))
        # Were it measured again it would pick fp32; the cache keeps int8.
        second = self._choose(fp32_seconds=0.0, int8_seconds=0.004)
        self.assertTrue(second.cached)
        self.assertEqual(second.precision, first.precision)
        self.assertIn("measured earlier on this machine", second.reason)
        with open(self.files["int8"][0], "ab") as f:
            f.write(b"re-exported")
        third = self._choose(fp32_seconds=0.0, int8_seconds=0.004)
        self.assertFalse(third.cached)
        self.assertEqual(third.precision, "fp32")

    def test_another_thread_count_or_cpu_is_another_entry(self):
        self._choose()
        self.assertFalse(self._choose(what="litert step, 2 threads").cached)
        other = {"model": "Cortex-A78AE", "arch": "aarch64", "features": {}, "flags_digest": "x"}
        with mock.patch.object(precision.machine, "cpu_info", return_value=other):
            self.assertFalse(self._choose().cached)

    def test_a_read_only_artifact_folder_caches_in_the_user_cache(self):
        cache_home = self.create_tempdir().full_path
        with (
            mock.patch.dict(os.environ, {"XDG_CACHE_HOME": cache_home}),
            mock.patch.object(precision.os, "access", return_value=False),
        ):
            self.assertEqual(
                precision.cache_path(self.folder),
                os.path.join(cache_home, "edge_ssl", precision.CACHE_FILE),
            )
            self._choose()
            self.assertTrue(self._choose().cached)
        self.assertFalse(os.path.exists(os.path.join(self.folder, precision.CACHE_FILE)))

    def test_a_single_form_is_taken_without_timing(self):
        choice = precision.choose(
            {"fp32": _sleeper(10.0)}, {"fp32": self.files["fp32"]}, "x", self.folder
        )
        self.assertEqual((choice.precision, choice.timings_ms), ("fp32", {}))

    def test_measurement_stays_within_a_few_hundred_milliseconds(self):
        start = time.perf_counter()
        precision.measure({"a": _sleeper(0.0005), "b": _sleeper(0.0002)}, budget_seconds=0.3)
        self.assertLess(time.perf_counter() - start, 0.6)


if __name__ == "__main__":
    absltest.main()
