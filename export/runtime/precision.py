"""`--precision=auto`: the fastest exported form on this machine, found by a short timing and remembered.

Which of a model's forms is fastest depends on the CPU (`export.runtime.machine`): on an AVX-512 VNNI machine the int8
form of the demo's student is 1.6-1.8x faster than fp32, on an AVX2-only one 1.45x slower. So `choose` times each
candidate for a few hundred milliseconds in all on first use and picks the fastest, and caches the answer in a small
JSON file keyed by the CPU (model and every flag), what was timed (engine, signature, threads) and the candidates'
files (name, size and modification time): `precision_cache.json` in the artifact's folder when it is writable, else
`~/.cache/edge_ssl/precision_cache.json` (`$XDG_CACHE_HOME` respected). Another machine, another thread count or a
re-exported model measures again. The `Choice` says which form was picked and why, to print.

No TensorFlow here.
"""

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from edge_ssl import files
from export.runtime import machine

CACHE_FILE = "precision_cache.json"
DEFAULT_BUDGET_SECONDS = 0.4
_MAX_ENTRIES = 64
_WARMUP_CALLS = 3


@dataclasses.dataclass(frozen=True)
class Choice:
    """The picked form and why.

    Attributes:
      precision: the picked candidate's name (fp32, fp16, int8).
      timings_ms: median milliseconds per call of every candidate timed.
      cached: whether the timings come from the cache (measured on this machine earlier) rather than now.
      reason: one line for the user.
    """

    precision: str
    timings_ms: dict[str, float]
    cached: bool
    reason: str


def user_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edge_ssl")


def cache_path(folder: str) -> str:
    """`folder/precision_cache.json` when `folder` is writable, else the user cache's."""
    if os.path.isdir(folder) and os.access(folder, os.W_OK):
        return os.path.join(folder, CACHE_FILE)
    return os.path.join(user_cache_dir(), CACHE_FILE)


def _file_identity(path: str) -> list:
    stat = os.stat(path)
    return [os.path.basename(path), stat.st_size, stat.st_mtime_ns]


def cache_key(
    what: str, candidate_files: Mapping[str, Sequence[str]], cpu: dict | None = None
) -> str:
    """The cache key of one decision: the CPU, what is timed, and each candidate's files as they are now."""
    cpu = cpu or machine.cpu_info()
    identity = {
        "cpu": [cpu["model"], cpu["arch"], cpu["flags_digest"]],
        "what": what,
        "files": {
            name: [_file_identity(p) for p in paths]
            for name, paths in sorted(candidate_files.items())
        },
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def measure(
    candidates: Mapping[str, Callable[[], Callable[[], object]]],
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
) -> dict[str, float]:
    """Median milliseconds per call of each candidate.

    Args:
      candidates: name -> a factory that loads the candidate and returns a call to time (loading is not timed).
      budget_seconds: the timed calls' total, shared between the candidates in two interleaved rounds (the
        machine's load then weighs on every candidate alike).

    Returns:
      name -> median ms per call (the lower of the two rounds' medians).
    """
    calls = {name: factory() for name, factory in candidates.items()}
    for call in calls.values():
        for _ in range(_WARMUP_CALLS):
            call()
    share = budget_seconds / (2 * max(1, len(calls)))
    best = {}
    for _ in range(2):
        for name, call in calls.items():
            times = []
            end = time.perf_counter() + share
            while len(times) < 3 or (time.perf_counter() < end and len(times) < 2000):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            median = 1000.0 * float(np.median(times))
            best[name] = min(best.get(name, median), median)
    return best


def _read_cache(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: str, key: str, entry: dict) -> None:
    data = _read_cache(path)
    data[key] = entry
    if len(data) > _MAX_ENTRIES:  # oldest first out
        for old in sorted(data, key=lambda k: data[k].get("measured_at", 0))[
            : len(data) - _MAX_ENTRIES
        ]:
            del data[old]
    try:
        files.write_json_atomic(path, data)
    except OSError:
        pass  # a cache that cannot be written only costs the next run a measurement


def choose(
    candidates: Mapping[str, Callable[[], Callable[[], object]]],
    candidate_files: Mapping[str, Sequence[str]],
    what: str,
    cache_folder: str,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
) -> Choice:
    """The fastest candidate, from the cache or measured now (and then cached).

    Args:
      candidates: name (fp32, fp16, int8) -> factory of the call to time (see `measure`).
      candidate_files: name -> the files that make the candidate (their identity is part of the cache key).
      what: what is timed, e.g. "litert step, 1 thread": part of the cache key and of the reason.
      cache_folder: the artifact's folder; the cache goes there when writable (see `cache_path`).
      budget_seconds: the measurement's length.

    Returns:
      The choice. A single candidate is picked without timing.
    """
    if len(candidates) == 1:
        (name,) = candidates
        return Choice(name, {}, False, f"{name}: the only form there is to run")
    cpu = machine.cpu_info()
    key = cache_key(what, candidate_files, cpu)
    path = cache_path(cache_folder)
    entry = _read_cache(path).get(key)
    cached = bool(entry) and set(entry.get("timings_ms", {})) == set(candidates)
    if cached:
        timings = {k: float(v) for k, v in entry["timings_ms"].items()}
    else:
        timings = measure(candidates, budget_seconds)
        _write_cache(
            path,
            key,
            {"timings_ms": timings, "what": what, "cpu": cpu["model"], "measured_at": time.time()},
        )
    picked = min(timings, key=timings.get)
    features = ", ".join(n for n, on in cpu["features"].items() if on) or "features unknown"
    figures = ", ".join(f"{n} {timings[n]:.3g} ms" for n in sorted(timings, key=timings.get))
    when = f"measured earlier on this machine (cache {path})" if cached else "measured now"
    return Choice(
        picked,
        timings,
        cached,
        f"{picked}: the fastest {what} on {cpu['model']} ({features}): {figures} per call, {when}",
    )
