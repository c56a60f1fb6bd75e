"""The ``ray`` executor: each job is one Ray task, on ``--ray-address`` or on a local cluster started here.

Ray places the task by ``num_cpus``, ``num_gpus`` and ``memory``; Slurm-only keys (``partition``, ``account``)
are ignored with one warning. A ``time`` limit is enforced by this process: a task running longer is cancelled
and counts as an abnormal end. Tasks are not retried by Ray itself (``max_retries=0``): the placement loop
resubmits them, so both engines share one requeue limit and one log line per requeue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from hsbench.executors.base import Executor, ExecutorSettings, JobEnd, import_engine, register_executor
from hsbench.executors.resources import Resources

__all__ = ["RayExecutor"]

log = logging.getLogger("hsbench")

_SLURM_ONLY = ("partition", "account")


def _run(call: Callable[[], Any]) -> Any:
    """The Ray task: run one job's call in a Ray worker process."""
    return call()


@register_executor("ray")
class RayExecutor(Executor):
    """Ray tasks; a local cluster on this machine's CPUs unless ``--ray-address`` names one."""

    install_hint = "pip install 'hsbench[ray]'"

    def __init__(self, settings: ExecutorSettings, jobs_dir: Path) -> None:
        self._ray = import_engine("ray", "ray")
        self._started_here = not self._ray.is_initialized()
        if self._started_here:
            from hsbench.benchmark import usable_cpus

            local = settings.ray_address is None
            self._ray.init(address=settings.ray_address, num_cpus=usable_cpus() if local else None,
                           include_dashboard=False, log_to_driver=True, configure_logging=False)
        self._deadlines: dict[Any, float] = {}
        self._labels: dict[Any, str] = {}
        self._timed_out: set[Any] = set()
        self._warned = False

    def _task(self, resources: Resources) -> Any:
        ignored = [key for key in _SLURM_ONLY if getattr(resources, key) is not None]
        if ignored and not self._warned:
            log.warning("--executor ray ignores the Slurm-only resource key(s) %s", ", ".join(ignored))
            self._warned = True
        options: dict[str, Any] = {"num_cpus": resources.cpus or 1, "num_gpus": resources.gpus or 0,
                                   "max_retries": 0, "retry_exceptions": False}
        if resources.mem_bytes is not None:
            options["memory"] = resources.mem_bytes
        return self._ray.remote(_run).options(**options)

    def submit(self, calls: Sequence[Callable[[], Any]], resources: Resources, label: str) -> list[Hashable]:
        task = self._task(resources)
        refs = [task.remote(call) for call in calls]
        limit = None if resources.time_minutes is None else 60.0 * resources.time_minutes
        for ref in refs:
            self._labels[ref] = label
            if limit is not None:
                self._deadlines[ref] = time.monotonic() + limit
        return refs

    def poll(self, handles: Sequence[Hashable]) -> dict[Hashable, JobEnd]:
        if not handles:
            return {}
        ready, waiting = self._ray.wait(list(handles), num_returns=len(handles), timeout=0)
        now = time.monotonic()
        for ref in waiting:
            if self._deadlines.get(ref, float("inf")) < now and ref not in self._timed_out:
                log.warning("%s: a Ray task ran past its time limit; cancelling it", self._labels.get(ref, "job"))
                self._timed_out.add(ref)
                self._ray.cancel(ref, force=True)
        return {ref: self._end(ref) for ref in ready}

    def _end(self, ref: Any) -> JobEnd:
        try:
            self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            why = "time limit" if ref in self._timed_out else type(exc).__name__
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            return JobEnd(False, f"{why}: {lines[-1] if lines else exc}")
        return JobEnd(True)

    def cancel(self, handles: Sequence[Hashable]) -> None:
        for ref in handles:
            self._ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
