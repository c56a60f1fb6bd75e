"""``hsbench report``: every table and figure of one report into ``reports/<name>/``.

Old figure files are removed first, so a folder never mixes figures of two versions of a suite; the tables are
written last, atomically, so a reader never sees a half-written leaderboard.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from hsbench._atomic import atomic_file
from hsbench.report.figures import FIGURES, FigureFile
from hsbench.report.html import render_html
from hsbench.report.leaderboard import leaderboard
from hsbench.report.results import ReportData
from hsbench.report.stats import PairedComparison, compare_best_two
from hsbench.report.tables import TABLE_FORMATS, TableInputs

__all__ = ["ReportFiles", "write_report"]

log = logging.getLogger("hsbench")

FIGURES_DIR = "figures"


@dataclass(frozen=True)
class ReportFiles:
    """What a report wrote."""

    out_dir: Path
    tables: dict[str, Path]
    figures: list[FigureFile]
    comparisons: Path


def write_report(data: ReportData, out_dir: Path) -> ReportFiles:
    """Write ``leaderboard.{md,html,tex,csv}``, ``comparisons.json`` and ``figures/*.{png,svg}``."""
    out_dir = Path(out_dir)
    figures_dir = out_dir / FIGURES_DIR
    for stale in [*figures_dir.glob("*.png"), *figures_dir.glob("*.svg")]:
        stale.unlink()
    inputs = TableInputs(data, leaderboard(data), compare_best_two(data))
    figures = [figure for build in FIGURES.values() for figure in build(data, figures_dir)]
    tables = {}
    for suffix, render in TABLE_FORMATS.items():
        tables[suffix] = out_dir / f"leaderboard.{suffix}"
        _write_utf8(tables[suffix], render(inputs))
    tables["html"] = out_dir / "leaderboard.html"
    _write_utf8(tables["html"], render_html(inputs, figures))
    comparisons = out_dir / "comparisons.json"
    _write_utf8(comparisons, json.dumps([_comparison_json(c) for c in inputs.comparisons], indent=2))
    log.info("report %s: %d runs, %d figures -> %s", data.name, len(data.runs), len(figures), out_dir)
    return ReportFiles(out_dir, tables, figures, comparisons)


def _write_utf8(path: Path, text: str) -> None:
    """Atomically, and UTF-8 whatever the locale (tables hold ± and µ)."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))


def _comparison_json(comparison: PairedComparison) -> dict:
    """JSON-safe: NaN (no interval with one seed) becomes null."""
    raw = {**asdict(comparison), "n": comparison.n, "verdict": comparison.verdict}
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in raw.items()}
