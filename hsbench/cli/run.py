"""``hsbench run``: run a strategy on a dataset split for one or more seeds, then print the test table.

Its options (:func:`add_run_options`) and the config-file merge (:func:`resolve_run_request`) are shared with
``hsbench sweep``.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from hsbench.errors import ConfigError

__all__ = ["NAME", "RUN_CONFIG_KEYS", "add_parser", "add_run_options", "resolve_run_request", "run"]

log = logging.getLogger("hsbench")

NAME = "run"

def _split_csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in _split_csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text!r}") from None


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategy", help="strategy name (see `hsbench list strategies`)")
    p.add_argument("--dataset", help="dataset name (default synthetic_drive)")
    p.add_argument("--split", help="official[:name] | fraction=p | kshot=k | kshot=k,disjoint, plus comma-separated "
                                   "options val=full|matched (fraction, kshot), guard=N (kshot=k,disjoint), "
                                   "min_test=N or cap=half (kshot); e.g. kshot=5,disjoint,guard=8,val=matched "
                                   "(default fraction=0.1)")
    p.add_argument("--seeds", type=_parse_seeds, help="comma-separated seeds, e.g. 0,1,2 (default 0)")
    p.add_argument("--model", help="model option of the strategy; comma-separated to compare several")
    p.add_argument("--epochs", type=int, help="training epochs (strategy option `epochs`)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="strategy options, e.g. lr=0.0005 model_options.base_channels=16")
    p.add_argument("--config", type=Path, help="YAML/JSON file with dataset, strategy, split, seeds, models, options, "
                                               "device (a Python file only with --trust-config)")
    p.add_argument("--trust-config", action="store_true",
                   help="allow a Python --config file: reading it runs its code, so only for files you wrote")
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default ./results)")
    p.add_argument("--db", help="results database URL or SQLite path (default <results>/hsbench.db)")
    p.add_argument("--data-root", type=Path, help="prepared real datasets (default $HSBENCH_DATA)")
    p.add_argument("--force", action="store_true", help="re-run runs that already completed")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--no-save-model", action="store_true",
                   help="do not keep each run's selected model in <run folder>/model/ (safetensors + JSON, about "
                        "the network's size); not part of the run id. Sweep trials never save one; --refit-best "
                        "runs do unless this is given")


RUN_CONFIG_KEYS = ("dataset", "strategy", "split", "seeds", "models", "options", "device", "tensorboard")


def _load_config_file(path: Path, *, trust_code: bool = False) -> dict[str, Any]:
    """The run config as data (YAML/JSON); Python only when the user passed ``--trust-config``."""
    from hsbench.config_files import read_config_file, reject_unknown_keys

    config = read_config_file(path, what="run config", trust_code=trust_code, trust_flag="--trust-config")
    reject_unknown_keys(config, RUN_CONFIG_KEYS, f"run config {path}")
    return config


def resolve_run_request(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the config file (if any) with command-line flags; flags win."""
    from hsbench.options import parse_key_values

    request: dict[str, Any] = {"dataset": "synthetic_drive", "split": "fraction=0.1", "seeds": [0], "options": {},
                               "device": "auto"}
    if args.config is not None:
        request.update(_load_config_file(args.config, trust_code=getattr(args, "trust_config", False)))
    for key in ("strategy", "dataset", "split", "seeds", "device"):
        if getattr(args, key) is not None:
            request[key] = getattr(args, key)
    if not request.get("strategy"):
        raise ConfigError("no strategy given: pass --strategy NAME (see `hsbench list strategies`)")
    options = dict(request.get("options") or {})
    if args.epochs is not None:
        options["epochs"] = args.epochs
    options.update(parse_key_values(args.cfg_options))
    models = _split_csv(args.model) if args.model else list(request.get("models") or [])
    request["options"] = options
    request["models"] = models or [None]
    tensorboard = request.get("tensorboard", False)
    if not isinstance(tensorboard, bool):
        raise ConfigError(f"tensorboard in a run config must be true or false, got {tensorboard!r}")
    request["tensorboard"] = tensorboard or bool(getattr(args, "tensorboard", False))
    return request


def run(args: argparse.Namespace) -> int:
    """Run every (model, seed) of the request; exit 1 if any run failed."""
    from hsbench.data.paths import data_root_from
    from hsbench.distributed import init_distributed_from_env, is_main_process
    from hsbench.provenance import resolve_device
    from hsbench.report import format_run_table, summarize_runs
    from hsbench.runner import Runner, RunSpec

    request = resolve_run_request(args)
    device = resolve_device(str(request["device"]))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun: DDP training, rank 0 writes
        device = init_distributed_from_env(device)
    runner = Runner(args.results, db=args.db, data_root=data_root_from(args.data_root), device=device,
                    progress=not args.no_progress, force=args.force, wait=not args.no_wait,
                    save_model=not args.no_save_model,
                    tensorboard=request["tensorboard"])
    rows, failures, busy = [], [], []
    for model in request["models"]:
        options = dict(request["options"], **({"model": model} if model else {}))
        for seed in request["seeds"]:
            spec = RunSpec(request["dataset"], request["strategy"], str(request["split"]), int(seed), options)
            outcome = runner.run(spec)
            if outcome.status == "busy":  # --no-wait: the runner's log line named who runs it
                busy.append(outcome)
                continue
            if outcome.status == "failed":
                failures.append(outcome)
                log.error("run %s (%s, seed %d) failed: %s; see %s", outcome.run_id, outcome.label, seed,
                          outcome.error, outcome.run_dir / "log.txt" if outcome.run_dir else "the results database")
                continue
            rows.append({"dataset": spec.dataset, "split": str(spec.split), "label": outcome.label,
                         **outcome.test_metrics})
    if not is_main_process() or (busy and not rows and not failures):
        return 0
    print()
    print(f"Test metrics (%, mean ± std over seeds; results in {args.results}):")
    print(format_run_table(summarize_runs(rows)))
    return 1 if failures else 0




def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` to the ``hsbench`` parser's sub-commands."""
    p = subparsers.add_parser("run", help="run a strategy on a dataset split for one or more seeds",
                              description="Run a strategy; completed runs are skipped, interrupted ones redone. "
                                          "Ends with a table of test metrics (mean ± std over seeds).")
    add_run_options(p)
    p.add_argument("--no-wait", action="store_true",
                   help="when another process is running the same run, exit at once (code 0) naming it, "
                        "instead of waiting for it and reporting its result")
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard curves to <run folder>/tensorboard/: per-epoch train loss, val mIoU and "
                        "learning rates, and the test confusion matrix (needs: pip install \"hsbench[tensorboard]\"); "
                        "not part of the run id")
