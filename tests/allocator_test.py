"""Tests for edge_ssl.allocator: which allocator a process runs on, and the environment that gives children tcmalloc."""

import os
import subprocess
import sys
from unittest import mock

from absl.testing import absltest

from edge_ssl import allocator

_REPORT = "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"
# A child that prints the allocator it runs on; only edge_ssl.allocator is imported there.
_CHILD = "from edge_ssl import allocator; print(allocator.in_use())"


class PreloadEnvironmentTest(absltest.TestCase):

    def test_adds_tcmalloc_first_and_keeps_other_preloads(self):
        env = allocator.preload_environment({"LD_PRELOAD": "libfoo.so", "A": "1"}, installed=True)
        self.assertEqual(env["LD_PRELOAD"], f"{allocator.TCMALLOC} libfoo.so")
        self.assertEqual(env["A"], "1")
        self.assertIn(_REPORT, env)
        self.assertEqual(allocator.preload_environment(env, installed=True), env)  # idempotent

    def test_leaves_the_environment_alone_when_it_should(self):
        base = {"LD_PRELOAD": "libfoo.so", _REPORT: "5"}
        for environ, installed in (
            (base, False),  # not installed
            ({**base, allocator.ENV: "system"}, True),  # asked for glibc's malloc
            ({**base, allocator.ENV: " System "}, True),
            (
                {"LD_PRELOAD": "/opt/lib/libtcmalloc.so.4"},
                True,
            ),  # another tcmalloc already preloaded
        ):
            self.assertEqual(allocator.preload_environment(environ, installed), environ, environ)
        env = allocator.preload_environment({_REPORT: "5"}, installed=True)
        self.assertEqual(env[_REPORT], "5")  # a user's own threshold wins

    def test_does_not_modify_its_argument(self):
        environ = {"PATH": "/bin"}
        allocator.preload_environment(environ, installed=True)
        self.assertEqual(environ, {"PATH": "/bin"})


class InUseTest(absltest.TestCase):

    def _maps(self, text: str) -> str:
        return self.create_tempfile(content=text).full_path

    def test_reads_the_mapped_libraries(self):
        line = "7f00-7f01 r-xp 00000000 08:01 12 /usr/lib/x86_64-linux-gnu/{}\n"
        self.assertEqual(
            allocator.in_use(self._maps(line.format("libtcmalloc_minimal.so.4.5.10"))), "tcmalloc"
        )
        self.assertEqual(allocator.in_use(self._maps(line.format("libjemalloc.so.2"))), "jemalloc")
        self.assertEqual(allocator.in_use(self._maps(line.format("libc.so.6"))), "system")
        self.assertEqual(allocator.in_use("/no/such/maps"), "system")

    def test_describe_says_what_to_do(self):
        with mock.patch.object(allocator, "in_use", return_value="system"):
            with mock.patch.dict(os.environ, {allocator.ENV: "system"}):
                self.assertIn(f"{allocator.ENV}=system", allocator.describe())
            with mock.patch.dict(os.environ, {allocator.ENV: ""}):
                with mock.patch.object(allocator, "tcmalloc_installed", return_value=False):
                    self.assertIn(allocator.INSTALL_HINT, allocator.describe())
                with mock.patch.object(allocator, "tcmalloc_installed", return_value=True):
                    self.assertIn(f"LD_PRELOAD={allocator.TCMALLOC}", allocator.describe())
        with mock.patch.object(allocator, "in_use", return_value="tcmalloc"):
            self.assertEqual(allocator.describe(), "tcmalloc")


class ChildProcessTest(absltest.TestCase):

    def _run(self, env: dict[str, str]) -> str:
        root = os.path.dirname(os.path.dirname(os.path.abspath(allocator.__file__)))
        env = dict(env, PYTHONPATH=root)
        run = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=60
        )
        self.assertEqual(run.returncode, 0, run.stderr)
        return run.stdout.strip()

    def test_a_child_runs_on_what_the_environment_asks_for(self):
        plain = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", allocator.ENV)}
        self.assertEqual(self._run({**plain, allocator.ENV: "system"}), "system")
        if not allocator.tcmalloc_installed():
            self.skipTest(f"tcmalloc is not installed here ({allocator.INSTALL_HINT})")
        self.assertEqual(self._run(allocator.preload_environment(plain)), "tcmalloc")


if __name__ == "__main__":
    absltest.main()
