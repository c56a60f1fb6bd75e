"""``hsbench evaluate``: a run's stored model on another dataset or split, stored as an evaluation of the run.

Example: ``hsbench evaluate --run 3f2a9c --dataset synthetic_drive:seed=1``; with ``--class-map map.yaml`` for a
dataset with other class names (:mod:`hsbench.class_map`). ``hsbench report`` then shows a cross-dataset matrix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hsbench.cli.stored_runs import add_stored_run_options

__all__ = ["NAME", "add_parser", "run"]

NAME = "evaluate"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` to the ``hsbench`` parser's sub-commands."""
    p = subparsers.add_parser(
        "evaluate", help="evaluate a run's stored model on another dataset or split",
        description="Evaluate the model a completed run stored on a dataset's split part (default: the run's split "
                    "spec and seed, part test) and store the metrics as an evaluation of the run; evaluating the "
                    "same thing again replaces it. Another dataset must have the model's bands; its classes must "
                    "have the model's names, or be matched with --class-map.",
        epilog="Example: hsbench evaluate --run 3f2a9c --dataset synthetic_drive:seed=1")
    p.add_argument("--run", required=True, action="append", metavar="RUN",
                   help="run id (or a unique prefix); repeat or comma-separate to evaluate several runs (seeds)")
    p.add_argument("--dataset", required=True, help="dataset to evaluate on, NAME[:key=value,...]")
    p.add_argument("--split", help="split spec on that dataset, drawn with the run's seed (default the run's split)")
    p.add_argument("--part", default="test", choices=("test", "val", "train"), help="split part (default test)")
    p.add_argument("--class-map", type=Path, metavar="FILE",
                   help="YAML/JSON mapping model class names to the dataset's class names (or null: counted wrong); "
                        "dataset classes no model class maps to are left out of the metrics")
    add_stored_run_options(p)


def run(args: argparse.Namespace) -> int:
    from hsbench.class_map import read_class_map
    from hsbench.cross_evaluation import evaluate_run
    from hsbench.data.paths import data_root_from
    from hsbench.provenance import resolve_device
    from hsbench.report import format_run_table, summarize_runs
    from hsbench.store import ResultsStore, default_database

    class_map = read_class_map(args.class_map) if args.class_map is not None else None  # before any heavy work
    runs = [r.strip() for text in args.run for r in text.split(",") if r.strip()]
    store = ResultsStore(default_database(args.results, args.db))
    device = resolve_device(args.device or "auto")
    rows, results = [], []
    for run_id in runs:
        result = evaluate_run(store, run_id, args.dataset, split=args.split, part=args.part, class_map=class_map,
                              data_root=data_root_from(args.data_root), device=device,
                              progress=not args.no_progress)
        results.append(result)
        print(f"evaluation {result.evaluation_id}: run {result.run_id} ({result.label}, trained on "
              f"{result.trained_on}) on {result.dataset} ({result.split.spec}, seed {result.split.seed}, "
              f"{result.part}): mIoU {100 * result.metrics['miou']:.2f}%")
        rows.append({"dataset": result.dataset, "split": f"{result.split.spec} ({result.part})",
                     "label": f"{result.label} <- {result.trained_on}", **result.metrics})
    last = results[-1]
    if last.mapping.given is not None:
        counted_wrong = [m for m, t in last.mapping.resolved().items() if t is None]
        print("class map: " + ", ".join(f"{m} -> {t or 'nothing'}" for m, t in last.mapping.resolved().items()))
        if counted_wrong:
            print(f"model classes counted as wrong (they map to nothing): {', '.join(counted_wrong)}")
    if last.excluded_names:
        print(f"classes of {last.dataset} left out of the metrics: {', '.join(last.excluded_names)}")
    print()
    print(f"{args.part.capitalize()} metrics (%, mean ± std over runs; stored as evaluations in {args.results}):")
    print(format_run_table(summarize_runs(rows)))
    return 0
