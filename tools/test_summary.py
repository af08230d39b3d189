"""Prints the closing line of `./run.sh test`: `N passed, N failed`, from Bazel's own per-target summary.

Bazel ends `bazel test` with one line per test target (`//tests:keras_test   PASSED in 6.5s`) and a sentence
(`Executed 2 out of 2 tests: 1 test passes and 1 fails locally.`). This tool counts the per-target lines, so its
numbers agree with that sentence, adds how many test cases the targets ran (from their test.xml) and how long they
took (the test time summed over the targets that ran, not the cached ones, and Bazel's elapsed time: the figures of
benchmarks/README.md's table of the suite's time), and exits non-zero when anything failed or Bazel itself failed.
"""

import argparse
import dataclasses
import pathlib
import re
import sys
import xml.etree.ElementTree as ElementTree

# Statuses Bazel prints per target. FLAKY means it failed once and passed on a retry: Bazel counts it as passing.
_PASSING = {"PASSED", "FLAKY"}
_STATUS_LINE = re.compile(
    r"^(?P<label>//\S+)\s+(?:\(cached\)\s+)?"
    r"(?P<status>PASSED|FLAKY|FAILED TO BUILD|FAILED|TIMEOUT|NO STATUS|INCOMPLETE|REMOTE FAILURE|SKIPPED)\b"
)
_SECONDS = re.compile(r"\bin (?P<seconds>\d+(?:\.\d+)?)s$")
# A sharded or retried target's line gives its longest run; the next line gives every run's mean.
_STATS_LINE = re.compile(r"^Stats over (?P<runs>\d+) runs: .*\bavg = (?P<avg>\d+(?:\.\d+)?)s")
_ELAPSED_LINE = re.compile(r"^INFO: Elapsed time: (?P<seconds>\d+(?:\.\d+)?)s")
# Bazel's exit code when the build and all tests succeeded but there were no tests to run.
_NO_TESTS_EXIT = 4


@dataclasses.dataclass
class Summary:
    passed: list[str]
    failed: list[str]
    # Seconds each target's test processes ran in this invocation (all shards and attempts); cached targets are absent.
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    elapsed: float | None = None  # Bazel's "Elapsed time" of the whole invocation


def parse_bazel_log(text: str) -> Summary:
    """Per-target results from the output of `bazel test` (the last status printed for a label wins)."""
    status, seconds, elapsed = {}, {}, None
    previous = None  # the label of the line before, when it was a status line
    for line in text.splitlines():
        line = line.strip()
        match = _STATUS_LINE.match(line)
        stats = _STATS_LINE.match(line)
        done = _ELAPSED_LINE.match(line)
        if match:
            label = match.group("label")
            status[label] = match.group("status")
            timed = _SECONDS.search(line)
            if timed and "(cached)" not in line:
                seconds[label] = float(timed.group("seconds"))
            else:
                seconds.pop(label, None)
        elif stats and previous in seconds:
            seconds[previous] = int(stats.group("runs")) * float(stats.group("avg"))
        elif done:
            elapsed = float(done.group("seconds"))
        previous = match.group("label") if match else None
    passed = sorted(label for label, s in status.items() if s in _PASSING)
    failed = sorted(label for label, s in status.items() if s not in _PASSING)
    return Summary(passed=passed, failed=failed, seconds=seconds, elapsed=elapsed)


def timing_line(summary: Summary, slowest: int = 3) -> str | None:
    """`test time: 1,186 s summed over 83 targets that ran, Bazel 615 s; slowest: //a 125 s, ...`, or None."""
    if not summary.seconds:
        return None
    top = sorted(summary.seconds.items(), key=lambda item: -item[1])[:slowest]
    text = f"test time: {sum(summary.seconds.values()):,.0f} s summed over {len(summary.seconds)} targets that ran"
    if summary.elapsed is not None:
        text += f", Bazel {summary.elapsed:,.0f} s"
    return text + "; slowest: " + ", ".join(f"{label} {s:.0f} s" for label, s in top)


def count_test_cases(testlogs: pathlib.Path, labels: list[str]) -> tuple[int, int]:
    """(test cases run, test cases failed or errored) over the test.xml files of `labels`; missing files are skipped."""
    total = bad = 0
    for label in labels:
        package, name = label[2:].split(":", 1)
        xml_path = testlogs / package / name / "test.xml"
        if not xml_path.is_file():
            continue
        try:
            root = ElementTree.parse(xml_path).getroot()
        except ElementTree.ParseError:
            continue
        for case in root.iter("testcase"):
            if case.find("skipped") is not None:
                continue
            total += 1
            if case.find("failure") is not None or case.find("error") is not None:
                bad += 1
    return total, bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bazel_log", required=True, help="captured output of `bazel test`")
    parser.add_argument(
        "--bazel_exit_code", type=int, required=True, help="exit code of `bazel test`"
    )
    parser.add_argument("--testlogs", default="bazel-testlogs", help="Bazel's test log folder")
    args = parser.parse_args(argv)

    summary = parse_bazel_log(
        pathlib.Path(args.bazel_log).read_text(encoding="utf-8", errors="replace")
    )
    code = args.bazel_exit_code
    for label in summary.failed:
        print(f"failed: {label}")
    cases, bad_cases = count_test_cases(
        pathlib.Path(args.testlogs), summary.passed + summary.failed
    )
    if cases:
        print(
            f"test cases: {cases} run, {bad_cases} failed, in {len(summary.passed) + len(summary.failed)} targets"
        )
    timing = timing_line(summary)
    if timing:
        print(timing)
    failed = len(summary.failed)
    if code not in (0, _NO_TESTS_EXIT) and not failed:
        # Bazel stopped before it reported any test (a BUILD error, say): that is a failure of the whole suite.
        print(
            f"bazel test exited with code {code} before reporting any failed test; see the messages above"
        )
        failed = 1
    print(f"{len(summary.passed)} passed, {failed} failed")
    return 1 if failed or code not in (0, _NO_TESTS_EXIT) else 0


if __name__ == "__main__":
    sys.exit(main())
