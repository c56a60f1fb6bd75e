"""Where a number came from: package version, git commit, device, and the hardware and library builds.

A fixed seed gives identical numbers only on the same CPU and the same BLAS / oneDNN builds: kernels chosen at run
time (AVX2 vs AVX-512, OpenBLAS's per-CPU kernels) sum floating-point numbers in different orders, and training
amplifies the last-bit differences. So every run records what it ran on (:func:`hardware_and_builds`).
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import torch

import hsbench

__all__ = ["git_commit", "hardware_and_builds", "resolve_device"]

NUMERIC_CPU_FLAGS = ("sse4_2", "avx", "fma", "f16c", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                     "amx_tile", "amx_bf16", "amx_int8", "neon", "asimd", "sve")
"""CPU features that select different math kernels (and so different rounding) in torch, oneDNN and OpenBLAS."""


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the hsbench checkout (``+dirty`` when it has local changes), or ``unknown``."""
    root = Path(hsbench.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a user error."""
    from hsbench.errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")
    return torch.device(name)


def hardware_and_builds() -> dict[str, Any]:
    """What a run's numbers depend on beyond its seed: CPU, GPU, library versions and builds, threads, determinism.

    The machine and builds are read once per process (cached); threads and deterministic flags are read on every
    call, since a worker sets its thread count after start-up. The result is plain JSON.
    """
    return {
        **_machine_and_builds(),
        "threads": {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads()},
        "deterministic": {
            "torch_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        },
    }


@functools.lru_cache(maxsize=1)
def _machine_and_builds() -> dict[str, Any]:
    import numpy

    cpuinfo = _cpuinfo()
    flags = set(cpuinfo.get("flags", cpuinfo.get("Features", "")).split())
    return {
        "cpu": {
            "model": cpuinfo.get("model name") or platform.processor() or platform.machine() or "unknown",
            "machine": platform.machine(),
            "flags": [flag for flag in NUMERIC_CPU_FLAGS if flag in flags],
            "logical_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        },
        "gpus": _gpus(),
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "scipy": _installed("scipy"), "sklearn": _installed("scikit-learn"), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        },
        "blas": {"numpy": _numpy_blas(), **_torch_builds(), "loaded": _loaded_blas()},
        "os": f"{platform.system()} {platform.release()}",
    }


def _installed(distribution: str) -> str | None:
    """A package's installed version, without importing it (scikit-learn takes most of a second to import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _cpuinfo() -> dict[str, str]:
    """The first processor's ``key: value`` lines of ``/proc/cpuinfo`` (empty off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


def _gpus() -> list[str]:
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _numpy_blas() -> str:
    """``name version`` of the BLAS numpy was built against."""
    import numpy

    try:
        deps = numpy.show_config(mode="dicts")["Build Dependencies"]
        return " ".join(str(deps["blas"].get(k, "")) for k in ("name", "version")).strip() or "unknown"
    except (TypeError, KeyError, ValueError):  # numpy < 1.26 has no mode="dicts"
        return "unknown"


def _torch_builds() -> dict[str, str | None]:
    """torch's BLAS, LAPACK, MKL and oneDNN builds and the CPU kernel level it dispatches to."""
    config = torch.__config__.show()

    def find(pattern: str) -> str | None:
        match = re.search(pattern, config)
        return match.group(1) if match else None

    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)()
    return {
        "torch": find(r"BLAS_INFO=([^,\s]+)") or "unknown",
        "torch_lapack": find(r"LAPACK_INFO=([^,\s]+)"),
        "torch_mkl": find(r"Math Kernel Library Version ([\d.]+)"),
        "torch_onednn": find(r"(?:MKL-DNN|oneDNN) (v[\d.]+)"),
        "torch_cpu_capability": capability or find(r"CPU capability usage: (\S+)"),
    }


def _loaded_blas() -> list[str]:
    """BLAS libraries loaded in this process with the kernel architecture picked at run time (OpenBLAS)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [" ".join(str(lib[k]) for k in ("internal_api", "version", "architecture") if lib.get(k))
            for lib in threadpool_info() if lib.get("user_api") == "blas"]
