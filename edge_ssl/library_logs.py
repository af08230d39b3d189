"""The binaries' terminal shows the project's own lines: the libraries' log lines are hidden unless `--tf_logs`.

TensorFlow and the libraries around it print pages of their own around our progress lines: C++ lines when TensorFlow
loads (oneDNN, `cudart_stub`, CPU features) and while it runs (`cuda_platform`, SavedModel readers, the converter),
Python INFO and WARNING lines through the logging module (`functional_saver`, `saving_utils`, untraced functions,
TFDS, tf2onnx), Python warnings, and TFDS's progress bars. `hide_unless_asked()`, called once by every binary before
TensorFlow is imported (`edge_ssl/cli/__init__.py` for `python -m edge_ssl.cli.*`, the `__main__` blocks of
`python -m export` and `python -m export.benchmark`), hides them:
- `TF_CPP_MIN_LOG_LEVEL=3` for TensorFlow's C++ logs (a value already in the environment is kept);
- TensorFlow's first import runs with the process's stderr set aside: the lines it prints while loading come before
  the C++ logging is set up, so `TF_CPP_MIN_LOG_LEVEL` cannot hide them (if the import fails, they are shown);
- log records below ERROR, and Python warnings, that come from installed packages (site-packages) are dropped: the
  project's own lines and the libraries' ERROR records still show;
- `TQDM_DISABLE=1`: no TFDS progress bars.
The decision goes into the environment (`EDGE_SSL_TF_LOGS`), so the binaries the demo starts follow the demo's flag.
Two one-line notices of the TFLite runtime stay ("Created TensorFlow Lite XNNPACK delegate", the int8 converter's
"fully_quantize: ..."): they are printed by C++ outside any logging that a setting reaches.

Why a flag of our own and not absl's `--verbosity`: absl binaries already run at verbosity 0 (INFO) by default, and
`--verbosity` sets the level of every logger, ours included; the library lines are a separate question (whose lines,
not how detailed), and they must be decided before TensorFlow loads, before absl has parsed any flag. So
`--tf_logs` is read from the command line itself (not from a `--flagfile`), and it is defined here so that every
binary that calls this accepts it.
"""

import importlib.abc
import importlib.util
import logging
import os
import site
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Mapping, Sequence

from absl import flags
from absl import logging as absl_logging

FLAG = "tf_logs"
ENV = "EDGE_SSL_TF_LOGS"
flags.DEFINE_bool(
    FLAG,
    False,
    "Show the log lines of TensorFlow and the other libraries (C++ logs, their INFO and WARNING lines, TFDS progress "
    "bars), which are hidden by default. Read from the command line before TensorFlow loads, not from a --flagfile.",
)

_TRUE = ("1", "true", "t", "yes", "y")
_shown: bool | None = None  # what hide_unless_asked decided in this process


def shown(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether the libraries' log lines show: `--tf_logs` or `--notf_logs` on the command line (the last one wins),
    else what a parent binary decided (`EDGE_SSL_TF_LOGS=1`), else not."""
    show = environ.get(ENV) == "1"
    for arg in argv[1:]:
        if arg == "--":
            break
        if not arg.startswith("-"):
            continue
        name, _, value = arg.lstrip("-").partition("=")
        if name == FLAG:
            show = not value or value.lower() in _TRUE
        elif name == "no" + FLAG and not value:
            show = False
    return show


def _prefixes(dirs) -> tuple[str, ...]:
    """Folders as path prefixes, each as given and resolved (the virtual environment may be a symbolic link)."""
    dirs = set(dirs) | {os.path.realpath(d) for d in dirs}
    return tuple(os.path.join(d, "") for d in sorted(dirs))


# Where installed packages live (this interpreter's site-packages and the user's), and this project's packages, which
# stay the project's when it is installed there too.
LIBRARY_DIRS = _prefixes(
    {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], site.getusersitepackages()}
    | set(site.getsitepackages())
)
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT_DIRS = _prefixes({os.path.join(_ROOT, "edge_ssl"), os.path.join(_ROOT, "export")})


def from_library(path: str) -> bool:
    """Whether the source file `path` belongs to an installed package other than this project."""
    return path.startswith(LIBRARY_DIRS) and not path.startswith(PROJECT_DIRS)


class LibraryFilter(logging.Filter):
    """Drops log records below ERROR that an installed package logged; keeps the project's and every error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not from_library(record.pathname)


class _QuietLoader(importlib.abc.Loader):
    """Runs a module's first import with file descriptor 2 (stderr) sent to a temporary file, which is written out
    only when the import fails."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            failed = True
            try:
                self._loader.exec_module(module)
                failed = False
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                if failed:
                    # What TensorFlow printed may say why it did not load.
                    captured.seek(0)
                    sys.stderr.write(captured.read().decode(errors="replace"))

    def __getattr__(self, name):
        # Everything else (get_source, is_package, resource readers) is the real loader's.
        return getattr(self._loader, name)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow`, once, with `_QuietLoader` around its loader."""

    def find_spec(self, fullname, path=None, target=None):
        del path, target
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def hide_unless_asked(argv: Sequence[str] | None = None) -> bool:
    """Hides the libraries' log lines in this process unless they are asked for; returns whether they show.

    Call it before TensorFlow is imported; later calls return the first answer.

    Args:
      argv: the command line (default `sys.argv`).
    """
    global _shown
    if _shown is not None:
        return _shown
    _shown = shown(sys.argv if argv is None else argv, os.environ)
    os.environ[ENV] = "1" if _shown else "0"
    if _shown:
        return True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TQDM_DISABLE", "1")
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    # TensorFlow's Python logger holds only TensorFlow's lines (it has its own handler when it loads before absl's).
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    for handler in (absl_logging.get_absl_handler(), logging.lastResort):
        if handler is not None:
            handler.addFilter(LibraryFilter())
    show_warning = warnings.showwarning

    def show_unless_from_library(message, category, filename, lineno, file=None, line=None):
        if not from_library(filename):
            show_warning(message, category, filename, lineno, file, line)

    warnings.showwarning = show_unless_from_library
    return False
