"""``hsbench benchmark``: run a suite's matrix (datasets x strategies x splits x seeds), then write its report."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hsbench.cli.executor_options import add_executor_options, executor_settings
from hsbench.cli.report import add_storage_options, report_dir, write_report_for
from hsbench.errors import ConfigError

__all__ = ["NAME", "add_parser", "run"]

NAME = "benchmark"

log = logging.getLogger("hsbench")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``benchmark`` to the ``hsbench`` parser's sub-commands."""
    bench = subparsers.add_parser(
        "benchmark", help="run a suite (datasets x strategies x splits x seeds), then write its report",
        description="Run every unfinished cell of a suite: finished cells are skipped, interrupted ones redone. "
                    "Processes and machines sharing one results database split the matrix; each cell runs once.",
        epilog="Example: hsbench benchmark --suite quick --workers 2")
    bench.add_argument("--suite", help="a shipped suite name (see --list) or the path of a suite YAML file")
    bench.add_argument("--list", action="store_true", help="list the shipped suites and exit")
    bench.add_argument("--dry-run", action="store_true", help="show the matrix and what is finished; run nothing")
    bench.add_argument("--datasets", metavar="NAME[,NAME]",
                       help="run (and report) only these datasets of the suite, e.g. the scenes you have prepared")
    bench.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    bench.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    bench.add_argument("--data-root", type=Path, help="prepared real datasets (default $HSBENCH_DATA)")
    bench.add_argument("--weights-dir", type=Path, metavar="DIR",
                       help="folder holding the weights files the suite declares (pretrained backbones, HyperSL); "
                            "every file is checked before any cell runs, and each missing one is named with where "
                            "to get it")
    bench.add_argument("--claim-timeout", type=float, default=600.0, metavar="S",
                       help="take over a cell whose worker sent no heartbeat for S seconds (default 600)")
    bench.add_argument("--heartbeat", type=float, default=30.0, metavar="S",
                       help="heartbeat interval of a running cell (default 30)")
    bench.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    bench.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    bench.add_argument("--no-save-model", action="store_true",
                       help="runs keep no model in <run folder>/model/ (as hsbench run --no-save-model); not part "
                            "of the cells' run ids")
    bench.add_argument("--tensorboard", action="store_true",
                       help="every run writes TensorBoard curves to <run folder>/tensorboard/ (as hsbench run "
                            "--tensorboard)")
    add_storage_options(bench)
    add_executor_options(bench, jobs="each cell as one job")


def _print_suites() -> None:
    from hsbench.suite import load_suite, shipped_suites

    for name in shipped_suites():
        suite = load_suite(name)
        print(f"{name}: {len(suite.cells())} cells. {suite.description.splitlines()[0] if suite.description else ''}")


def _print_matrix(args: argparse.Namespace, suite) -> None:
    from hsbench.claims import CellClaims
    from hsbench.store import ResultsStore, default_database

    cells = suite.cells()
    store = ResultsStore(default_database(args.results, args.db))
    states = CellClaims(store.engine).count_states(suite.name, {c.cell_id for c in cells})
    rows = suite.rows()
    print(f"suite {suite.name} ({suite.source}): {len(cells)} cells = {len(rows)} rows (dataset x strategy) x their "
          f"splits x {len(suite.seeds)} seeds")
    print(f"  done {states['done']}, failed {states['failed']}, running {states['running']}, "
          f"not started {len(cells) - states['done'] - states['failed'] - states['running']}")
    for entry in suite.datasets:
        resources = suite.resources.merged(entry.resources)
        where = "" if resources == type(resources)() else f"; resources per cell: {resources.describe()}"
        print(f"  {entry.name} (splits: {', '.join(suite.splits_of(entry))}{where})")
        for variant in suite.variants_of(entry):
            print(f"    {variant.label}: {variant.strategy} {variant.options}")
    used = suite.weights_used()
    if used:
        where = "" if args.weights_dir is None else f" in {args.weights_dir}"
        print(f"  weights files{where}:")
        for weights, labels in used:
            state = "" if args.weights_dir is None else \
                ("  [present]" if weights.path(args.weights_dir).is_file() else "  [MISSING]")
            print(f"    @{weights.name}: {weights.file}{state} (for {', '.join(labels)}): {weights.source}")


def run(args: argparse.Namespace) -> int:
    from hsbench.benchmark import BenchmarkConfig, run_benchmark
    from hsbench.suite import load_suite

    if args.list:
        _print_suites()
        return 0
    if not args.suite:
        raise ConfigError("no suite given: pass --suite NAME or a YAML path (see `hsbench benchmark --list`)")
    suite = load_suite(args.suite)
    if args.datasets:
        suite = suite.only_datasets([name.strip() for name in args.datasets.split(",") if name.strip()])
    if args.dry_run:
        _print_matrix(args, suite)
        return 0
    if not args.no_report:
        report_dir(args, suite)  # a report folder leading out of --reports fails now, not after the matrix ran
    suite.check_weights(args.weights_dir)
    config = BenchmarkConfig(results_dir=args.results, db=args.db, data_root=args.data_root, device=args.device,
                             workers=args.workers, stale_after_s=args.claim_timeout, heartbeat_s=args.heartbeat,
                             progress=not args.no_progress, weights_dir=args.weights_dir,
                             save_model=not args.no_save_model,
                             tensorboard=args.tensorboard, executor=executor_settings(args))
    summary = run_benchmark(suite, config)
    print(f"suite {suite.name}: {summary.states['done']} of {summary.total} cells done, "
          f"{summary.states['failed']} failed, {summary.wall_s:.0f} s", file=sys.stderr)
    for error in summary.errors:
        print(f"  failed: {error}", file=sys.stderr)
    if not args.no_report and summary.states["done"]:
        write_report_for(args, suite)
    elif not args.no_report:
        print(f"suite {suite.name}: no cell completed, so no report was written", file=sys.stderr)
    return 1 if summary.errors else 0  # failed cells, or jobs a cluster executor gave up on
