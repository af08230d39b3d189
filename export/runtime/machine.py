"""The machine a model runs on: the CPU's model and the features that decide which precision is fastest, and the
process's peak memory.

int8's gain depends on the CPU: with AVX-512 VNNI (or AVX-VNNI, AMX) the int8 kernels of LiteRT/XNNPACK beat fp32,
on an AVX2-only x86 they can lose to it, and on ARM the NEON dot-product instructions (`asimddp`, ARMv8.2) and i8mm
are what make int8 fast (a Jetson Orin's Cortex-A78AE has both). `cpu_info` reads them from /proc/cpuinfo; the
benchmark prints them beside its tables and `export.runtime.precision` keys its timing cache on them.

No TensorFlow here: the recognizer and the runner use it on the device.
"""

import hashlib
import os
import platform
import resource

# Flag names as /proc/cpuinfo spells them, in the order they are printed, per architecture family.
X86_FEATURES = (
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
)
ARM_FEATURES = ("asimd", "asimdhp", "asimddp", "i8mm", "sve", "bf16")
FEATURE_NOTES = {
    "avx512_vnni": "AVX-512 VNNI (int8 dot products)",
    "avx_vnni": "AVX-VNNI (int8 dot products on 256-bit vectors)",
    "amx_int8": "AMX int8 tiles",
    "asimd": "NEON",
    "asimddp": "NEON dot product (int8)",
    "i8mm": "int8 matrix multiply",
}


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def cpu_info(cpuinfo_path: str = "/proc/cpuinfo") -> dict:
    """The CPU's model, architecture and int8-relevant features.

    Args:
      cpuinfo_path: where to read the kernel's CPU description (Linux); elsewhere the features are unknown.

    Returns:
      {"model": str, "arch": str, "features": {name: bool} for the architecture's relevant flags (empty when
      unknown), "flags_digest": sha256 of every flag the CPU reports (so two CPUs that differ in any flag differ)}.
    """
    text = _read(cpuinfo_path)
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    arch = platform.machine() or "unknown"
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    model = fields.get("model name") or fields.get("Model") or fields.get("Hardware")
    if not model:
        # ARM kernels often name no model in /proc/cpuinfo; the device tree names the board (a Jetson's, say).
        model = _read("/proc/device-tree/model").strip("\x00\n ") or platform.processor() or arch
    relevant = (
        ARM_FEATURES if arch.startswith(("aarch64", "arm")) or "asimd" in flags else X86_FEATURES
    )
    return {
        "model": model,
        "arch": arch,
        "features": {name: name in flags for name in relevant} if flags else {},
        "flags_digest": hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:16],
    }


def describe_cpu(info: dict | None = None) -> str:
    """One line: the CPU's model, its core count and which int8-relevant features it has and lacks."""
    info = info or cpu_info()
    features = info["features"]
    if not features:
        listed = "features unknown (no /proc/cpuinfo)"
    else:
        has = [FEATURE_NOTES.get(n, n.upper()) for n, on in features.items() if on]
        lacks = [FEATURE_NOTES.get(n, n.upper()) for n, on in features.items() if not on]
        listed = f"has {', '.join(has) or 'none of them'}; lacks {', '.join(lacks) or 'none'}"
    return f"CPU: {info['model']} ({info['arch']}, {os.cpu_count()} logical cores); {listed}"


def peak_memory_mib() -> float:
    """The process's peak resident memory so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
