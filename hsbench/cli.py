"""The ``hsbench`` command line.

User mistakes (unknown names, bad options, missing data) end with one sentence on stderr and exit code 2;
a run that crashes is stored as ``failed`` with its traceback, and the command exits 1; so does a fault of the
environment (full disk, read-only folder, locked or unreachable database), in one line (:mod:`hsbench.faults`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hsbench import __version__
from hsbench.cli_benchmark import add_benchmark_parsers, cmd_benchmark, cmd_report
from hsbench.cli_prepare import add_prepare_parser, cmd_prepare
from hsbench.cli_pretrain import add_pretrain_parser, cmd_pretrain
from hsbench.cli_sweep import add_sweep_parser, cmd_sweep
from hsbench.errors import ConfigError, HsbenchError

__all__ = ["main", "build_parser"]

log = logging.getLogger("hsbench")

LIST_KINDS = ("datasets", "strategies", "metrics", "models")
EXIT_PIPE_CLOSED = 141
"""Exit code when stdout's reader closed it early (``hsbench list | head -1``): 128 + SIGPIPE, as a shell reports."""


def _split_csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in _split_csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text!r}") from None


def _add_run_options(p: argparse.ArgumentParser) -> None:
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


RUN_CONFIG_KEYS = ("dataset", "strategy", "split", "seeds", "models", "options", "device")


def _load_config_file(path: Path, *, trust_code: bool = False) -> dict[str, Any]:
    """The run config as data (YAML/JSON); Python only when the user passed ``--trust-config``."""
    from hsbench.config_files import read_config_file, reject_unknown_keys

    config = read_config_file(path, what="run config", trust_code=trust_code, trust_flag="--trust-config")
    reject_unknown_keys(config, RUN_CONFIG_KEYS, f"run config {path}")
    return config


def _resolve_run_request(args: argparse.Namespace) -> dict[str, Any]:
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
    return request


def cmd_run(args: argparse.Namespace) -> int:
    from hsbench.data.paths import data_root_from
    from hsbench.distributed import init_distributed_from_env, is_main_process
    from hsbench.provenance import resolve_device
    from hsbench.report import format_run_table, summarize_runs
    from hsbench.runner import Runner, RunSpec

    request = _resolve_run_request(args)
    device = resolve_device(str(request["device"]))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun: DDP training, rank 0 writes
        device = init_distributed_from_env(device)
    runner = Runner(args.results, db=args.db, data_root=data_root_from(args.data_root), device=device,
                    progress=not args.no_progress, force=args.force, wait=not args.no_wait)
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


def cmd_list(args: argparse.Namespace) -> int:
    from hsbench.registry import REGISTRIES, names

    kinds = [args.kind] if args.kind else list(LIST_KINDS)
    for kind in kinds:
        entries = names(REGISTRIES[kind])
        if len(kinds) > 1:
            print(f"{kind}:")
        for name in entries:
            print(f"  {name}" if len(kinds) > 1 else name)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from hsbench.describe import DESCRIBERS

    print(DESCRIBERS[args.kind](args.name))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "list": cmd_list,
    "show": cmd_show,
    "prepare": cmd_prepare,
    "pretrain": cmd_pretrain,
    "sweep": cmd_sweep,
    "benchmark": cmd_benchmark,
    "report": cmd_report,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hsbench",
        description="Benchmark transfer-learning strategies on hyperspectral images.",
        epilog="Example: hsbench run --strategy in_domain --dataset synthetic_drive --split fraction=0.1 --seeds 0,1,2",
    )
    parser.add_argument("--version", action="version", version=f"hsbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    run = sub.add_parser("run", help="run a strategy on a dataset split for one or more seeds",
                         description="Run a strategy; completed runs are skipped, interrupted ones redone. Ends "
                                     "with a table of test metrics (mean ± std over seeds).")
    _add_run_options(run)
    run.add_argument("--no-wait", action="store_true",
                     help="when another process is running the same run, exit at once (code 0) naming it, "
                          "instead of waiting for it and reporting its result")
    lst = sub.add_parser("list", help="list registered datasets, strategies, metrics or models",
                         description="List registered names.")
    lst.add_argument("kind", nargs="?", choices=LIST_KINDS)
    show = sub.add_parser("show", help="describe a dataset (card), strategy (options) or model",
                          description="Describe a registered entry.")
    show.add_argument("kind", choices=("dataset", "strategy", "model"))
    show.add_argument("name")
    add_prepare_parser(sub)
    add_pretrain_parser(sub)
    add_sweep_parser(sub)
    add_benchmark_parsers(sub)
    return parser


def _quiet_run_details(record: logging.LogRecord) -> bool:
    """Per-epoch details of a run go to its log.txt; the console shows progress bars and run summaries."""
    return not (record.name.startswith("hsbench.run.") and record.levelno < logging.WARNING)


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    if not verbose:
        handler.addFilter(_quiet_run_details)
    root = logging.getLogger("hsbench")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def _database_of(args: argparse.Namespace) -> str | Path | None:
    """The results database a command uses (``--db`` or ``<results>/hsbench.db``), named in database faults."""
    if getattr(args, "db", None):
        return str(args.db)
    return Path(args.results) / "hsbench.db" if getattr(args, "results", None) is not None else None


def _discard_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush into a closed pipe stays quiet too."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured output): nothing will be flushed
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hsbench`` console script.

    Exit codes: 0 done; 2 a mistake the user can fix (one line); 1 a run failed, or an environment fault (full disk,
    read-only folder, locked or unreachable database: one line naming the path or URL, see :mod:`hsbench.faults`);
    130 interrupted; 141 (128 + SIGPIPE, what a shell reports for ``cat big | head -1``) when the reader of stdout
    closed it early, quietly, like any Unix tool cut short. Programming errors keep their tracebacks.
    """
    from hsbench.faults import EXIT_FAULT, describe

    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    os.environ.setdefault("TQDM_MININTERVAL", "1")
    try:
        from hsbench.data.scenes import register_user_datasets

        register_user_datasets(getattr(args, "data_root", None))  # YAML-described datasets, before any lookup
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, where it is handled, not at interpreter exit
        return code
    except HsbenchError as exc:
        print(f"hsbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hsbench: interrupted; completed runs are stored, the interrupted one will be redone next time",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_PIPE_CLOSED
    except Exception as exc:
        line = describe(exc, database=_database_of(args))
        if line is None:
            raise  # a programming error: the traceback is what its reader needs
        log.debug("the fault's traceback:", exc_info=True)
        print(f"hsbench: error: {line}", file=sys.stderr)
        return EXIT_FAULT

if __name__ == "__main__":
    sys.exit(main())
