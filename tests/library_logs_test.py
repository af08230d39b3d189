"""Tests for edge_ssl.library_logs: the binaries hide the libraries' log lines unless --tf_logs asks for them."""

import logging
import os
import re
import subprocess
import sys
import sysconfig

from absl.testing import absltest

from edge_ssl import library_logs

# A line of TensorFlow's C++ logging: severity, date, time, thread, file:line].
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]", re.M)


def _run(*command: str) -> subprocess.CompletedProcess:
    """`python -m ...` as a user runs it: no log settings inherited from the test's environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", "TQDM_DISABLE", library_logs.ENV)
    }
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    return subprocess.run(
        [sys.executable, "-m", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _record(pathname: str, level: int) -> logging.LogRecord:
    return logging.LogRecord("absl", level, pathname, 1, "message", None, None)


class LibraryLogsTest(absltest.TestCase):

    def test_shown_by_the_flag_or_by_a_parent_binary(self):
        self.assertFalse(library_logs.shown(["prog"], {}))
        self.assertTrue(library_logs.shown(["prog", "--steps=3", "--tf_logs"], {}))
        self.assertTrue(library_logs.shown(["prog", "-tf_logs=true"], {}))
        self.assertFalse(library_logs.shown(["prog", "--tf_logs=false"], {}))
        self.assertFalse(library_logs.shown(["prog", "--tf_logs", "--notf_logs"], {}))
        self.assertFalse(library_logs.shown(["prog", "--", "--tf_logs"], {}))
        self.assertFalse(library_logs.shown(["prog", "--tf_logs_dir=x"], {}))
        # The demo's stages follow the demo, unless their own command line says otherwise.
        self.assertTrue(library_logs.shown(["prog"], {library_logs.ENV: "1"}))
        self.assertFalse(library_logs.shown(["prog", "--notf_logs"], {library_logs.ENV: "1"}))
        self.assertFalse(library_logs.shown(["prog"], {library_logs.ENV: "0"}))

    def test_filter_drops_library_lines_below_error_only(self):
        keep = library_logs.LibraryFilter().filter
        library = os.path.join(sysconfig.get_paths()["purelib"], "tensorflow", "saving_utils.py")
        self.assertFalse(keep(_record(library, logging.INFO)))
        self.assertFalse(keep(_record(library, logging.WARNING)))
        self.assertTrue(keep(_record(library, logging.ERROR)))
        # The project's own lines show, whatever their level.
        self.assertTrue(keep(_record(library_logs.__file__, logging.INFO)))
        self.assertTrue(keep(_record(library_logs.__file__, logging.WARNING)))

    def test_a_binary_hides_tensorflow_lines_unless_asked(self):
        # The pretraining CLI imports TensorFlow at its top, before absl parses flags; without its required flags it
        # stops with a usage error right after.
        hidden = _run("edge_ssl.cli.pretrain")
        self.assertIn("Flag --method must have a value", hidden.stderr)
        for noise in ("cudart_stub", "oneDNN", "absl::InitializeLog"):
            self.assertNotIn(noise, hidden.stderr)
        self.assertNotRegex(hidden.stderr, CPP_LOG_LINE)

        shown = _run("edge_ssl.cli.pretrain", "--tf_logs")
        self.assertIn("Flag --method must have a value", shown.stderr)
        self.assertRegex(shown.stderr, CPP_LOG_LINE)

    def test_export_hides_tensorflow_lines_and_keeps_its_own(self):
        # Export loads TensorFlow in `main`, to read the model, after hide_unless_asked in its __main__ block.
        result = _run(
            "export", "--model=/nonexistent/edge_ssl_model", "--output_dir=/nonexistent/out"
        )
        self.assertIn("is neither a distillation workdir", result.stderr)
        self.assertNotRegex(result.stderr, CPP_LOG_LINE)


if __name__ == "__main__":
    absltest.main()
