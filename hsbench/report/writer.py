"""``hsbench report``: every table and figure of one report into ``reports/<name>/``.

The writer deletes only files it wrote itself: each report lists its files in a manifest
(``.hsbench-report-manifest.json``), and a figure listed by the previous report but not written again is removed,
so a folder never mixes figures of two versions of a suite while a user's own file (or a folder a ``figures``
symlink points to) is never touched. A ``figures`` folder that leads out of the report folder is refused. The
tables are written last, atomically, so a reader never sees a half-written leaderboard.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from hsbench._atomic import atomic_file
from hsbench.errors import ConfigError
from hsbench.names import inside
from hsbench.report.figures import FIGURES, FigureFile
from hsbench.report.html import render_html
from hsbench.report.leaderboard import leaderboard
from hsbench.report.pairwise import compare_best_two, pairwise, pairwise_csv, pairwise_markdown
from hsbench.report.ranks import rank_tests, ranks_csv
from hsbench.report.results import ReportData
from hsbench.report.stats import PairedComparison
from hsbench.report.tables import TABLE_FORMATS, TableInputs
from hsbench.report.timings import timings_csv

__all__ = ["MANIFEST", "ReportFiles", "write_report"]

log = logging.getLogger("hsbench")

FIGURES_DIR = "figures"
MANIFEST = ".hsbench-report-manifest.json"
"""The files of the last report written into a folder, relative to it: the only files the writer ever deletes."""


@dataclass(frozen=True)
class ReportFiles:
    """What a report wrote."""

    out_dir: Path
    tables: dict[str, Path]
    figures: list[FigureFile]
    comparisons: Path
    timings: Path | None = None


def write_report(data: ReportData, out_dir: Path) -> ReportFiles:
    """Write ``leaderboard.{md,html,tex,csv}``, ``comparisons.json``, ``ranks.csv``, ``pairwise.{csv,md}``,
    ``timings.csv``, figures.

    Raises:
        ConfigError: ``out_dir/figures`` is a symlink (or path) leading out of ``out_dir``; nothing is written.
    """
    out_dir = Path(out_dir)
    figures_dir = out_dir / FIGURES_DIR
    inside(out_dir, figures_dir, "report figures folder")
    previous = _read_manifest(out_dir)
    pairs = pairwise(data)
    inputs = TableInputs(data, leaderboard(data), compare_best_two(data, pairs), rank_tests(data), pairs)
    figures = [figure for build in FIGURES.values() for figure in build(data, figures_dir)]
    tables = {}
    for suffix, render in TABLE_FORMATS.items():
        tables[suffix] = out_dir / f"leaderboard.{suffix}"
        _write_utf8(tables[suffix], render(inputs))
    tables["html"] = out_dir / "leaderboard.html"
    _write_utf8(tables["html"], render_html(inputs, figures))
    comparisons = out_dir / "comparisons.json"
    _write_utf8(comparisons, json.dumps([_comparison_json(c) for c in inputs.comparisons], indent=2))
    ranks = out_dir / "ranks.csv"
    _write_utf8(ranks, ranks_csv(inputs.ranks))
    pairwise_files = [out_dir / "pairwise.csv", out_dir / "pairwise.md"]
    _write_utf8(pairwise_files[0], pairwise_csv(pairs))
    _write_utf8(pairwise_files[1], pairwise_markdown(data.name, pairs))
    timings = out_dir / "timings.csv"
    _write_utf8(timings, timings_csv(data))
    written = {_relative(out_dir, p)
               for p in [*tables.values(), comparisons, ranks, *pairwise_files, timings, *_figure_paths(figures)]}
    _remove_stale(out_dir, previous - written)
    _write_utf8(out_dir / MANIFEST, json.dumps({"written_by": "hsbench report", "files": sorted(written)}, indent=1))
    log.info("report %s: %d runs, %d figures -> %s", data.name, len(data.runs), len(figures), out_dir)
    return ReportFiles(out_dir, tables, figures, comparisons, timings)


def _figure_paths(figures: list[FigureFile]) -> list[Path]:
    return [path for figure in figures for path in (figure.png, figure.svg)]


def _relative(out_dir: Path, path: Path) -> str:
    return path.relative_to(out_dir).as_posix()


def _read_manifest(out_dir: Path) -> set[str]:
    """The files the previous report wrote here; an absent or unreadable manifest lists nothing (deletes nothing)."""
    path = out_dir / MANIFEST
    if not path.is_file():
        return set()
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        return {str(f) for f in files}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("report manifest %s is unreadable (%s): no old figure is removed", path, exc)
        return set()


def _remove_stale(out_dir: Path, stale: set[str]) -> None:
    """Delete files an earlier report wrote here and this one did not; an entry leading out of the folder is kept."""
    for name in sorted(stale):
        path = out_dir / name
        try:
            inside(out_dir, path, "stale report file")
        except ConfigError as exc:
            log.warning("%s; left in place", exc)
            continue
        if path.is_file():
            path.unlink()


def _write_utf8(path: Path, text: str) -> None:
    """Atomically, and UTF-8 whatever the locale (tables hold ± and µ)."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))


def _comparison_json(comparison: PairedComparison) -> dict:
    """JSON-safe: NaN (no interval with one seed) becomes null."""
    raw = {**asdict(comparison), "n": comparison.n, "verdict": comparison.verdict}
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in raw.items()}
