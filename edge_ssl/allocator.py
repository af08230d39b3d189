"""The memory allocator that TensorFlow's training binaries run on: tcmalloc where it is installed.

TensorFlow allocates and frees every intermediate tensor of a training step. Under glibc's malloc, on some machines
those buffers go back to the kernel after each step and come back as fresh pages, one page fault per 4 KiB: on a
2-core AMD EPYC (AVX2, KVM) distilling the demo's student took 270,000 page faults a second and 41% of the CPU in the
kernel, at 10.5 clips/s; with tcmalloc 600 faults a second, 3% in the kernel, 18.2 clips/s (benchmarks/README.md,
"Kernel time while distilling"). glibc's own settings (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_ARENA_MAX`,
`glibc.malloc.hugetlb`) and jemalloc helped less or not at all.

An allocator has to be chosen before a process starts, through `LD_PRELOAD`: `./run.sh` sets it for every command
(and Bazel's tests), and the demo for the stages it starts. Anywhere else, start Python as
`LD_PRELOAD=libtcmalloc_minimal.so.4 python -m edge_ssl.cli.pretrain ...`. Install it with
`apt-get install libtcmalloc-minimal4` (Debian, Ubuntu, JetPack); `EDGE_SSL_MALLOC=system` keeps glibc's malloc.

No TensorFlow here: the demo imports this before it starts anything.
"""

import ctypes.util
import os
from collections.abc import Mapping

# The library's soname: LD_PRELOAD finds a name without a slash on the dynamic loader's search path.
TCMALLOC = "libtcmalloc_minimal.so.4"
# "system" keeps glibc's malloc; anything else (or unset) uses tcmalloc where it is installed.
ENV = "EDGE_SSL_MALLOC"
# tcmalloc prints a line for every allocation above this many bytes (1 GiB by default); a training step's batch can
# pass that legitimately, so the threshold goes out of the way.
_REPORT_THRESHOLD = {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}
INSTALL_HINT = "apt-get install libtcmalloc-minimal4"


def _opted_out(environ: Mapping[str, str]) -> bool:
    """Whether `environ` asks for glibc's malloc (`EDGE_SSL_MALLOC=system`)."""
    return environ.get(ENV, "").strip().lower() == "system"


def tcmalloc_installed() -> bool:
    """Whether the dynamic loader can find tcmalloc (Linux; elsewhere False)."""
    return ctypes.util.find_library("tcmalloc_minimal") is not None


def in_use(maps_path: str = "/proc/self/maps") -> str:
    """The allocator this process runs on: "tcmalloc", "jemalloc" or "system" (also where it cannot be told)."""
    try:
        with open(maps_path, encoding="utf-8", errors="replace") as maps:
            text = maps.read()
    except OSError:
        return "system"
    for name in ("tcmalloc", "jemalloc"):
        if f"lib{name}" in text:
            return name
    return "system"


def preload_environment(
    environ: Mapping[str, str], installed: bool | None = None
) -> dict[str, str]:
    """`environ` for a child process that should run on tcmalloc: LD_PRELOAD gains tcmalloc when it is installed
    and `EDGE_SSL_MALLOC` is not "system"; otherwise a copy of `environ` as it is.

    Args:
      environ: the environment to start from (usually os.environ).
      installed: whether tcmalloc is installed; None looks it up.
    """
    env = dict(environ)
    if _opted_out(env):
        return env
    if installed is None:
        installed = tcmalloc_installed()
    preloaded = env.get("LD_PRELOAD", "").replace(":", " ").split()
    if not installed or any("tcmalloc" in entry for entry in preloaded):
        return env
    env["LD_PRELOAD"] = " ".join([TCMALLOC, *preloaded])
    for key, value in _REPORT_THRESHOLD.items():
        env.setdefault(key, value)
    return env


def describe() -> str:
    """One line for the terminal and the report: which allocator runs, and what to do where it is glibc's."""
    current = in_use()
    if current != "system":
        return current
    if _opted_out(os.environ):
        return f"system malloc ({ENV}=system)"
    if tcmalloc_installed():
        return f"system malloc (tcmalloc is installed: start with LD_PRELOAD={TCMALLOC}, as ./run.sh does)"
    return f"system malloc (training can be much faster with tcmalloc: {INSTALL_HINT})"
