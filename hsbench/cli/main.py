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
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from hsbench import __version__
from hsbench.cli import benchmark, evaluate, listing, predict, prepare, pretrain, report, run, show, sweep
from hsbench.errors import HsbenchError

__all__ = ["COMMANDS", "EXIT_PIPE_CLOSED", "build_parser", "configure_logging", "main"]

log = logging.getLogger("hsbench")

EXIT_PIPE_CLOSED = 141
"""Exit code when stdout's reader closed it early (``hsbench list | head -1``): 128 + SIGPIPE, as a shell reports."""

COMMANDS: dict[str, ModuleType] = {module.NAME: module for module in (
    run, listing, show, prepare, pretrain, sweep, benchmark, report, evaluate, predict)}
"""The sub-commands in ``--help`` order: one module each, with ``NAME``, ``add_parser(subparsers)`` and
``run(args) -> exit code``."""


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
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def _quiet_run_details(record: logging.LogRecord) -> bool:
    """Per-epoch details of a run go to its log.txt; the console shows progress bars and run summaries."""
    return not (record.name.startswith("hsbench.run.") and record.levelno < logging.WARNING)


def configure_logging(verbose: bool) -> None:
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
    configure_logging(args.verbose)
    os.environ.setdefault("TQDM_MININTERVAL", "1")
    try:
        from hsbench.data.scenes import register_user_datasets

        register_user_datasets(getattr(args, "data_root", None))  # YAML-described datasets, before any lookup
        code = COMMANDS[args.command].run(args)
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
