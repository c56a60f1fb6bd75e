"""The report's "Hardware and builds" section: which CPUs, GPUs and library builds produced its numbers.

A seed reproduces a run bit for bit only on the same CPU and the same BLAS and torch builds (the kernels differ,
and training amplifies their last-bit differences: two x86 machines moved quick-suite cells by up to 2.1 J_M
points). So a report lists every combination its runs used and warns when one table mixes several.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hsbench.report.results import ReportData

__all__ = ["BUILDS_HEADER", "BUILDS_TITLE", "Build", "build_of", "builds_rows", "mixed_builds_warning"]

BUILDS_TITLE = "Hardware and builds"
BUILDS_HEADER = ["CPU", "GPU", "BLAS", "torch", "runs"]
NOT_COMPARABLE = "numbers from different CPUs or library builds are not bitwise comparable"
UNRECORDED = "not recorded"


@dataclass(frozen=True, order=True)
class Build:
    """What decides a run's last bits besides its seed (the rest of its provenance is in the database)."""

    cpu: str
    gpu: str
    blas: str
    torch: str


def build_of(provenance: Any) -> Build:
    """The combination a run's stored provenance names; runs stored before provenance was recorded share one."""
    if not isinstance(provenance, dict):
        return Build(UNRECORDED, UNRECORDED, UNRECORDED, UNRECORDED)
    blas = provenance.get("blas", {})
    torch_blas = " ".join(str(v) for v in (blas.get("torch"), blas.get("torch_mkl")) if v)
    return Build(
        cpu=str(provenance.get("cpu", {}).get("model", UNRECORDED)),
        gpu=", ".join(provenance.get("gpus") or []) or "none",
        blas=f"numpy {blas.get('numpy', UNRECORDED)}; torch {torch_blas or UNRECORDED}",
        torch=str(provenance.get("versions", {}).get("torch", UNRECORDED)),
    )


def _builds(data: ReportData, split: str | None = None) -> Counter[Build]:
    return Counter(build_of(p) for p in data.select(split=split)["provenance"])


def builds_rows(data: ReportData) -> list[list[str]]:
    """One row per combination: its CPU, GPU, BLAS, torch and how many of the report's runs used it."""
    return [[b.cpu, b.gpu, b.blas, b.torch, str(n)] for b, n in sorted(_builds(data).items())]


def mixed_builds_warning(data: ReportData) -> str | None:
    """A warning naming the splits whose table mixes combinations; ``None`` when every table has one."""
    mixed = [split for split in data.splits if len(_builds(data, split)) > 1]
    if not mixed:
        return None
    splits = f"{'splits' if len(mixed) > 1 else 'split'} {', '.join(mixed)}"
    return f"Warning: the tables of {splits} mix runs from several hardware / build combinations: {NOT_COMPARABLE}."
