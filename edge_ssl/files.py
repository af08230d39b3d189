"""Writing files so that a crash never leaves a half-written one behind: write beside, then rename."""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ".partial") -> Iterator[str]:
    """Yields a temporary path in `path`'s folder; on success renames it onto `path`, on error removes it.

    Args:
      path: the file to write. Its folder is created when missing.
      suffix: the temporary file's ending; a writer that picks the format by extension (OpenCV's VideoWriter)
        needs the real one last, e.g. ".partial.mp4".

    Yields:
      A path to write to. `os.replace` onto `path` is atomic on POSIX file systems.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private (0600); the finished file gets the permissions any new file would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_json_atomic(path: str, data: Any) -> None:
    """Writes `data` as indented JSON to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")


def replace_directory(finished: str, directory: str) -> None:
    """Moves the whole folder `finished` to `directory`, replacing an older one only now that the new one is whole.

    The old folder is renamed aside first and removed last, so at every moment either the old or the new one is at
    `directory` (two renames: not atomic together, but never half-written).
    """
    old = directory + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(directory):
        os.replace(directory, old)
    os.replace(finished, directory)
    shutil.rmtree(old, ignore_errors=True)


def content_digest(paths: Iterable[str], base: str | None = None) -> str:
    """sha256 over the bytes of `paths`, in order, read in 1 MiB blocks: a cache key that changes when content does.

    Args:
      paths: the files.
      base: when given, each file's path relative to it is hashed too (a folder's layout is part of its content).
    """
    digest = hashlib.sha256()
    for path in paths:
        if base is not None:
            digest.update(os.path.relpath(path, base).encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
