"""Tests for edge_ssl.gc_freeze: an absl program that imports edge_ssl runs `main` with its imports frozen."""

import gc
import json
import os
import subprocess
import sys
import textwrap

from absl.testing import absltest

import edge_ssl
from edge_ssl import gc_freeze

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(edge_ssl.__file__)))

# An absl program: a cycle of garbage made before `app.run` must be collected by the freeze, not kept in it.
_PROGRAM = textwrap.dedent("""
    import gc, json, weakref
    {early_import}
    from absl import app

    class Node:
        pass

    node = Node()
    node.self = node
    dead = weakref.ref(node)
    del node

    def main(argv):
        {late_import}
        print(json.dumps({{"frozen": gc.get_freeze_count(), "garbage_kept": dead() is not None}}))

    app.run(main)
""")


def _python(code: str, **env) -> str:
    """The last line a fresh Python prints running `code` with edge_ssl importable (and `env` added)."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=ROOT, **env),
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    return result.stdout.strip().splitlines()[-1]


def _run(early_import: str, late_import: str = "pass", **env) -> dict:
    program = _PROGRAM.format(early_import=early_import, late_import=late_import)
    return json.loads(_python(program, **env))


class GcFreezeTest(absltest.TestCase):

    def test_this_test_program_runs_with_its_imports_frozen(self):
        # absltest.main is an absl program, and this file imported edge_ssl before it started.
        self.assertGreater(gc.get_freeze_count(), 1000)

    def test_absl_program_importing_edge_ssl_freezes_before_main_after_collecting(self):
        got = _run("import edge_ssl")
        self.assertGreater(got["frozen"], 1000)
        self.assertFalse(got["garbage_kept"])

    def test_import_from_inside_main_freezes_nothing(self):
        got = _run("pass", late_import="import edge_ssl")
        self.assertEqual(got["frozen"], 0)

    def test_turned_off_by_the_environment(self):
        got = _run("import edge_ssl", **{gc_freeze.ENV: "0"})
        self.assertEqual(got["frozen"], 0)

    def test_not_an_absl_program_is_left_alone(self):
        self.assertEqual(_python("import gc, edge_ssl; print(gc.get_freeze_count())"), "0")

    def test_enabled_reads_the_variable(self):
        self.assertTrue(gc_freeze.enabled({}))
        self.assertTrue(gc_freeze.enabled({gc_freeze.ENV: "1"}))
        self.assertFalse(gc_freeze.enabled({gc_freeze.ENV: " 0 "}))

    def test_freeze_before_main_reports_when_absl_already_runs(self):
        # Inside this test, absl's main is running: nothing can be arranged for before it.
        before = gc.get_freeze_count()
        self.assertFalse(gc_freeze.freeze_before_main())
        self.assertFalse(gc_freeze.freeze_before_main({gc_freeze.ENV: "0"}))
        self.assertEqual(gc.get_freeze_count(), before)


if __name__ == "__main__":
    absltest.main()
