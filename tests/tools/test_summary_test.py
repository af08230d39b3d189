"""Tests for tools.test_summary: the closing line agrees with Bazel's per-target summary."""

import contextlib
import io
import pathlib
import tempfile
import unittest

from tools import test_summary

_LOG = """\
INFO: Build completed, 2 tests FAILED, 13 total actions
//tests/tools:lint_test                                         (cached) PASSED in 0.4s
//tests:keras_test                                                       FAILED in 0.5s
  /root/.cache/bazel/execroot/bazel-out/k8-fastbuild/testlogs/tests/keras_test/test.log
//tests:slow_test                                                        TIMEOUT in 60.0s
//tests:flaky_test                                                       FLAKY, failed in 1 out of 2 in 3.0s
//tests/data:broken_test                                                 FAILED TO BUILD
//tests/data:other_test                                                  NO STATUS

Executed 3 out of 6 tests: 2 tests pass and 4 fail locally.
"""

_XML = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="T" tests="3">
<testcase name="a"/><testcase name="b"><failure message="x"/></testcase><testcase name="c"><skipped/></testcase>
</testsuite></testsuites>
"""


class TestSummaryTest(unittest.TestCase):

    def test_counts_every_status_bazel_prints(self):
        summary = test_summary.parse_bazel_log(_LOG)
        self.assertEqual(summary.passed, ["//tests/tools:lint_test", "//tests:flaky_test"])
        self.assertEqual(
            summary.failed,
            [
                "//tests/data:broken_test",
                "//tests/data:other_test",
                "//tests:keras_test",
                "//tests:slow_test",
            ],
        )

    def _run(self, log: str, code: int, testlogs: pathlib.Path | None = None) -> tuple[int, str]:
        tmp = pathlib.Path(tempfile.mkdtemp())
        (tmp / "log").write_text(log, encoding="utf-8")
        out = io.StringIO()
        args = ["--bazel_log", str(tmp / "log"), "--bazel_exit_code", str(code)]
        args += ["--testlogs", str(testlogs or tmp / "none")]
        with contextlib.redirect_stdout(out):
            rc = test_summary.main(args)
        return rc, out.getvalue()

    def test_closing_line_and_exit_code_on_failures(self):
        rc, out = self._run(_LOG, 3)
        self.assertEqual(out.splitlines()[-1], "2 passed, 4 failed")
        self.assertEqual(rc, 1)

    def test_all_passing_exits_zero(self):
        rc, out = self._run("//a:b_test   PASSED in 1.0s\n", 0)
        self.assertEqual(out.splitlines()[-1], "1 passed, 0 failed")
        self.assertEqual(rc, 0)

    def test_bazel_failure_without_test_lines_counts_as_failed(self):
        rc, out = self._run("ERROR: no such package 'x'\n", 1)
        self.assertEqual(out.splitlines()[-1], "0 passed, 1 failed")
        self.assertEqual(rc, 1)

    def test_test_time_sums_the_targets_that_ran_with_every_shard_and_bazel_s_elapsed_time(self):
        log = (
            "INFO: Elapsed time: 12.4s, Critical Path: 3.0s\n"
            "//a:x_test      PASSED in 2.0s\n"
            "  Stats over 2 runs: max = 2.0s, min = 1.0s, avg = 1.5s, dev = 0.5s\n"
            "//a:y_test      (cached) PASSED in 9.0s\n"
            "//a:z_test      FAILED in 4.0s\n"
        )
        rc, out = self._run(log, 3)
        self.assertIn(
            "test time: 7 s summed over 2 targets that ran, Bazel 12 s; slowest: //a:z_test 4 s, //a:x_test 3 s",
            out,
        )
        self.assertEqual(out.splitlines()[-1], "2 passed, 1 failed")
        self.assertEqual(rc, 1)

    def test_no_test_time_when_every_result_is_cached(self):
        _, out = self._run("//a:b_test   (cached) PASSED in 1.0s\n", 0)
        self.assertNotIn("test time", out)
        self.assertEqual(out.splitlines()[-1], "1 passed, 0 failed")

    def test_counts_test_cases_from_test_xml(self):
        testlogs = pathlib.Path(tempfile.mkdtemp())
        (testlogs / "a" / "b_test").mkdir(parents=True)
        (testlogs / "a" / "b_test" / "test.xml").write_text(_XML, encoding="utf-8")
        _, out = self._run("//a:b_test   PASSED in 1.0s\n", 0, testlogs)
        self.assertIn("test cases: 2 run, 1 failed, in 1 targets", out)


if __name__ == "__main__":
    unittest.main()
