"""The placement loop: submit every job, wait for all of them, resubmit the ones that ended abnormally.

A job that ends abnormally (killed, lost with its node, crashed) is submitted again, up to ``max_requeues`` times
per job. That is safe because a job decides what it runs only when it starts (it claims a cell or a trial), so
a resubmitted job takes over the dead one's cell instead of repeating a finished one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from hsbench.executors.base import Executor
from hsbench.executors.resources import Resources

__all__ = ["JobGroup", "run_jobs"]

log = logging.getLogger("hsbench")


@dataclass(frozen=True)
class JobGroup:
    """Jobs submitted together (one Slurm array): one call per job, all with the same resources."""

    calls: tuple[Callable[[], Any], ...]
    resources: Resources
    label: str


def run_jobs(executor: Executor, groups: list[JobGroup], *, max_requeues: int, poll_s: float = 2.0,
             on_poll: Callable[[], None] | None = None) -> list[str]:
    """Run every job of ``groups`` to its end; return one line per job given up after ``max_requeues`` requeues.

    Ctrl-C (or any error here) cancels the jobs still queued or running before it propagates.
    """
    pending: dict[Hashable, tuple[JobGroup, Callable[[], Any], int]] = {}
    given_up: list[str] = []
    try:  # a refused later group cancels the groups already submitted
        for group in groups:
            if group.calls:
                log.info("submitting %d job(s) for %s (%s)", len(group.calls), group.label,
                         group.resources.describe())
                for handle, call in zip(executor.submit(group.calls, group.resources, group.label), group.calls,
                                        strict=True):
                    pending[handle] = (group, call, 0)
        while pending:
            for handle, end in executor.poll(list(pending)).items():
                group, call, requeues = pending.pop(handle)
                if end.ok:
                    continue
                if requeues < max_requeues:
                    log.warning("%s: job %s ended abnormally (%s); submitted again (requeue %d of %d)",
                                group.label, handle, end.detail, requeues + 1, max_requeues)
                    [again] = executor.submit((call,), group.resources, group.label)
                    pending[again] = (group, call, requeues + 1)
                else:
                    given_up.append(f"{group.label}: job {handle} ended abnormally {requeues + 1} time(s), last: "
                                    f"{end.detail}")
            if on_poll is not None:
                on_poll()
            if pending:
                time.sleep(poll_s)
    except BaseException:
        if pending:
            log.warning("cancelling %d job(s) still queued or running", len(pending))
            executor.cancel(list(pending))
        raise
    return given_up
