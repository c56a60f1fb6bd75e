"""Executors: run benchmark cells and sweep workers on a cluster engine (Slurm through submitit, or Ray).

The results database's exactly-once claims stay the single truth of what is done; an engine only decides where
and when jobs start. See :mod:`hsbench.executors.base` for the contract and docs/scaling.md for recipes.
"""

from hsbench.executors import ray_cluster, slurm  # noqa: F401  (register the built-in executors)
from hsbench.executors.base import EXECUTORS, Executor, ExecutorSettings, JobEnd, open_executor, register_executor
from hsbench.executors.pool import JobGroup, run_jobs
from hsbench.executors.resources import Resources

__all__ = ["EXECUTORS", "Executor", "ExecutorSettings", "JobEnd", "JobGroup", "Resources", "open_executor",
           "register_executor", "run_jobs"]
