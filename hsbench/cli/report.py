"""``hsbench report``: leaderboards (md, html, tex, csv) and figures from the results database.

``hsbench benchmark`` ends with the same report (:func:`write_report_for`), with the same storage options.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hsbench.names import inside

__all__ = ["NAME", "add_parser", "add_storage_options", "run", "report_dir", "write_report_for"]

NAME = "report"


def add_storage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default ./results)")
    p.add_argument("--db", help="results database URL or SQLite path (default <results>/hsbench.db); "
                                "several machines share one matrix through one PostgreSQL URL")
    p.add_argument("--reports", type=Path, default=Path("reports"),
                   help="reports folder; a report goes to <reports>/<suite>/ (default ./reports)")
    p.add_argument("--sweep-storage", help="Optuna storage with sweeps to plot: journal file or URL "
                                           "(default <results>/optuna.journal when it exists)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report`` to the ``hsbench`` parser's sub-commands."""
    p = subparsers.add_parser(
        "report", help="write leaderboards (md, html, tex, csv) and figures from the results database",
        description="Write reports/<suite>/ from stored results only: HS3-Bench leaderboards, a paired "
                    "best-vs-runner-up comparison, and figures (PNG + SVG). Without --suite: every completed run, "
                    "into reports/all/.")
    p.add_argument("--suite", help="a shipped suite name or a suite YAML path")
    p.add_argument("--out", type=Path, help="output folder (default <reports>/<suite or all>)")
    add_storage_options(p)


def _sweep_storage(args: argparse.Namespace) -> str | None:
    if args.sweep_storage:
        return str(args.sweep_storage)
    journal = Path(args.results) / "optuna.journal"
    return str(journal) if journal.is_file() else None


def report_dir(args: argparse.Namespace, suite) -> Path:
    """``--out`` as given, or ``<reports>/<suite or all>``, which must not lead out of ``--reports`` (a symlink)."""
    if getattr(args, "out", None):
        return Path(args.out)
    out_dir = Path(args.reports) / (suite.name if suite is not None else "all")
    inside(Path(args.reports), out_dir, "report folder")
    return out_dir


def write_report_for(args: argparse.Namespace, suite) -> Path:
    from hsbench.report import load_all_results, load_suite_results, write_report
    from hsbench.store import ResultsStore, default_database

    out_dir = report_dir(args, suite)  # checked before anything is read or written
    store = ResultsStore(default_database(args.results, args.db))
    if suite is None:
        data = load_all_results(store, sweep_storage=_sweep_storage(args))
    else:
        data = load_suite_results(store, suite, sweep_storage=_sweep_storage(args))
    files = write_report(data, out_dir)
    print(files.tables["md"].read_text(encoding="utf-8"))
    print(f"Report: {out_dir}/leaderboard.{{md,html,tex,csv}}, {len(files.figures)} figures in {out_dir}/figures")
    return out_dir


def run(args: argparse.Namespace) -> int:
    from hsbench.suite import load_suite

    suite = load_suite(args.suite) if args.suite else None
    write_report_for(args, suite)
    return 0
