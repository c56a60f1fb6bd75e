"""``hsbench sweep``: tune a strategy with Optuna on val mIoU; ``--refit-best`` re-runs the best on test.

Examples::

    hsbench sweep --strategy in_domain --model unet --dataset synthetic_drive --split fraction=0.1 \\
        --trials 30 --study unet_drive --workers 3 --epochs 10
    hsbench sweep --refit-best --study unet_drive --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hsbench.cli.executor_options import add_executor_options, executor_settings
from hsbench.errors import ConfigError
from hsbench.names import inside

if TYPE_CHECKING:  # the CLI imports this module at start-up: optuna and torch load only when sweep runs
    from hsbench.sweep import SweepConfig, SweepSummary

__all__ = ["NAME", "add_parser", "run"]

NAME = "sweep"


def add_parser(subparsers: Any) -> None:
    """Add ``sweep`` to the CLI's sub-commands; it takes every option of ``hsbench run`` too."""
    from hsbench.cli.run import add_run_options

    p = subparsers.add_parser(
        "sweep",
        help="tune a strategy's options with Optuna (val mIoU), then --refit-best on test",
        description="Tune a strategy with Optuna: TPE sampling over the strategy's (and model's) search space, "
                    "objective val mIoU (test is never looked at), median pruning on per-epoch val scores. An "
                    "existing study resumes until it has --trials finished trials. Options fixed with "
                    "--cfg-options / --epochs / --model are not searched. Trials train with the first of --seeds.",
    )
    add_run_options(p)
    p.add_argument("--study", required=True, help="study name (resumed if it exists)")
    p.add_argument("--trials", type=int, default=20,
                   help="finished (complete or pruned) trials the study should have, over all workers (default 20)")
    p.add_argument("--storage", help="journal file path (one machine; default <results>/optuna.journal) or "
                                     "database URL (many machines), e.g. postgresql+psycopg://user@host/db")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine sharing the study")
    p.add_argument("--timeout", type=float, metavar="S", help="start no new trial after S seconds")
    p.add_argument("--refit-best", action="store_true",
                   help="run the study's best options on test for every --seeds, as ordinary runs tagged with "
                        "the study (the study's own strategy, dataset and split are used)")
    p.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler (default 0)")
    p.add_argument("--heartbeat", type=int, default=10, metavar="S",
                   help="a running trial records a heartbeat every S seconds; after 12*S seconds without one its "
                        "worker is taken for dead and the trial is failed (default 10)")
    p.add_argument("--reports", type=Path, default=Path("reports"),
                   help="sweep plots go to <reports>/sweeps/<study>/ (default ./reports)")
    add_executor_options(p, jobs="each of the --workers sweep workers as one job")


def _worker_setup(verbose: bool, data_root: Path | None) -> None:
    """What ``hsbench.cli.main`` does before a command, repeated in each spawned worker process."""
    from hsbench.cli.main import configure_logging
    from hsbench.data.scenes import register_user_datasets

    configure_logging(verbose)
    register_user_datasets(data_root)


def _definition(args: argparse.Namespace) -> Any:
    from hsbench.cli.run import resolve_run_request
    from hsbench.sweep import SweepDefinition

    request = resolve_run_request(args)
    if request["tensorboard"]:
        raise ConfigError("tensorboard: sweep trials write no TensorBoard curves; drop the key from the config file "
                          "and pass --tensorboard to `hsbench run` with the best options")
    if len(request["models"]) > 1:
        raise ConfigError("a sweep tunes one model: pass a single --model (run one sweep per model)")
    model = request["models"][0]
    options = dict(request["options"], **({"model": model} if model else {}))
    return SweepDefinition(request["strategy"], request["dataset"], str(request["split"]),
                           int(request["seeds"][0]), options)


def _sweep_config(args: argparse.Namespace) -> SweepConfig:
    from hsbench.data.paths import data_root_from
    from hsbench.sweep import Heartbeat, SweepConfig

    if args.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {args.trials}")
    data_root = data_root_from(args.data_root)
    return SweepConfig(
        study=args.study,
        storage=args.storage or str(args.results / "optuna.journal"),
        definition=None if args.refit_best else _definition(args),
        trials=args.trials,
        timeout_s=args.timeout,
        results_dir=args.results,
        db=args.db,
        data_root=data_root,
        device=args.device or "auto",
        sampler_seed=args.sampler_seed,
        heartbeat=Heartbeat(interval_s=args.heartbeat, grace_s=12 * args.heartbeat),
        setup=functools.partial(_worker_setup, bool(getattr(args, "verbose", False)), data_root),
    )


def _print_summary(summary: SweepSummary, config: SweepConfig, plots: list[Path]) -> None:
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(summary.counts.items()))
    print(f"\nStudy {summary.study} ({config.storage}): {summary.finished} finished trials ({counts or 'none'})")
    if summary.best_value is not None:
        params = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                           for key, value in summary.best_params.items())
        print(f"Best val mIoU {100 * summary.best_value:.2f}% (trial {summary.best_number}): {params}")
        print(f"Refit on test: hsbench sweep --refit-best --study {summary.study} --storage {config.storage} "
              "--seeds 0,1,2,3,4")
    if plots:
        print(f"Plots: {plots[0].parent}")
    for worker in summary.failed_workers:
        print(f"worker failed: {worker}")


def _refit(args: argparse.Namespace, config: SweepConfig) -> int:
    from hsbench.provenance import resolve_device
    from hsbench.report import format_run_table, summarize_runs
    from hsbench.runner import Runner
    from hsbench.sweep import load_definition, open_study, refit_best

    study = open_study(config)
    runner = Runner(args.results, db=args.db, data_root=config.data_root, device=resolve_device(config.device),
                    progress=not args.no_progress, force=args.force, save_model=not args.no_save_model)
    outcomes = refit_best(study, runner, list(args.seeds or [0]))
    definition = load_definition(study)
    rows = [{"dataset": definition.dataset, "split": definition.split, "label": o.label, **o.test_metrics}
            for o in outcomes if o.status != "failed"]
    print(f"\nTest metrics of study {study.study_name}'s best options (%, mean ± std over seeds; "
          f"results in {args.results}):")
    print(format_run_table(summarize_runs(rows)))
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def run(args: argparse.Namespace) -> int:
    """Run (or resume) a sweep and write its plots; with ``--refit-best``, refit the best options on test."""
    from hsbench.sweep import open_study, run_sweep, write_sweep_plots

    config = _sweep_config(args)
    if args.refit_best:
        return _refit(args, config)
    plots_dir = inside(args.reports, args.reports / "sweeps" / config.study, "sweep plots folder")  # before any trial
    summary = run_sweep(config, workers=args.workers, executor=executor_settings(args))
    study = open_study(replace(config, definition=None))
    plots = write_sweep_plots(study, plots_dir)
    _print_summary(summary, config, plots)
    return 1 if summary.failed_workers else 0
