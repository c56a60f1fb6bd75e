"""The ``--executor`` flags shared by ``hsbench benchmark`` and ``hsbench sweep``."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_executor_options", "executor_settings"]

_RESOURCE_HELP = {
    "cpus": ("N", "CPUs per job (Slurm --cpus-per-task, Ray num_cpus; default 1); also the job's torch threads"),
    "gpus": ("N", "GPUs per job (Slurm --gpus-per-node, Ray num_gpus; default 0)"),
    "mem": ("SIZE", "memory per job, e.g. 16G (Slurm --mem, Ray memory)"),
    "time": ("LIMIT", "wall-time limit per job: minutes or H:MM:SS or D-HH:MM:SS (Slurm default 24 h; Ray: this "
                      "process cancels a task that runs longer)"),
    "partition": ("NAME", "Slurm partition"),
    "account": ("NAME", "Slurm account"),
}


def add_executor_options(parser: argparse.ArgumentParser, *, jobs: str) -> None:
    """Add ``--executor`` and the resource flags; ``jobs`` says what one job is (for the help text)."""
    group = parser.add_argument_group(
        "cluster executors", f"Run {jobs} on Slurm (through submitit) or Ray instead of local processes. The results "
                             "database (and, for sweeps, the Optuna storage) must be reachable from every node, and "
                             "the zoo and data roots must be on shared storage (docs/scaling.md). Resource flags "
                             "override a suite file's 'resources'.")
    group.add_argument("--executor", default="local", choices=("local", "slurm", "ray"),
                       help="where jobs run (default local: this machine's --workers processes)")
    group.add_argument("--ray-address", metavar="ADDR",
                       help="Ray cluster to join, e.g. ray://head:10001 or auto (default: start a local one)")
    for key, (metavar, text) in _RESOURCE_HELP.items():
        group.add_argument(f"--{key}", metavar=metavar, help=text)
    group.add_argument("--max-requeues", type=int, default=2, metavar="N",
                       help="submit a job again at most N times after it was killed or lost (default 2)")
    group.add_argument("--max-parallel", type=int, metavar="N",
                       help="Slurm: at most N jobs of one array run at once")


def executor_settings(args: argparse.Namespace) -> Any:
    """The :class:`hsbench.executors.ExecutorSettings` the flags describe."""
    from hsbench.errors import ConfigError
    from hsbench.executors import ExecutorSettings
    from hsbench.executors.resources import RESOURCE_KEYS, parse_resources

    flags = {key: getattr(args, key) for key in RESOURCE_KEYS if getattr(args, key) is not None}
    for key in ("cpus", "gpus"):
        if key in flags:
            try:
                flags[key] = int(flags[key])
            except ValueError:
                raise ConfigError(f"--{key} must be a whole number, got {flags[key]!r}") from None
    if flags and args.executor == "local":
        raise ConfigError(f"--{', --'.join(flags)} only apply to --executor slurm or ray")
    return ExecutorSettings(args.executor, parse_resources(flags, "the command line"), args.ray_address,
                            args.max_requeues, args.max_parallel)
