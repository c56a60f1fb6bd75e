"""Benchmark cells on a cluster engine: one job per unfinished cell, grouped by the resources the suite asks.

Each job is :class:`CellJob`: a fresh process that claims the next free cell of its group and runs it, exactly
like a local worker that stops after one cell. The claims keep every cell exactly once whatever the engine does:
a job started twice, late or after its cell was finished by another finds nothing and ends.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from hsbench.claims import CellClaims
from hsbench.executors.base import SubmitterView, absolute_location, absolute_path, open_executor
from hsbench.executors.pool import JobGroup, run_jobs
from hsbench.executors.resources import Resources
from hsbench.store import ResultsStore
from hsbench.suite import Cell, Suite

__all__ = ["CellJob", "place_cells", "unfinished", "with_absolute_paths"]

log = logging.getLogger("hsbench")


@dataclass(frozen=True)
class CellJob:
    """One cluster job: claim one free cell among ``cells`` and run it (see :func:`hsbench.benchmark.work`)."""

    cells: tuple[Cell, ...]
    config: object  # hsbench.benchmark.BenchmarkConfig (not imported at module level: that module imports this)
    since: float
    threads: int
    view: SubmitterView

    def __call__(self) -> int:
        from hsbench.benchmark import prepare_worker, work

        self.view.enter()
        prepare_worker(self.config, self.threads, "cluster job")
        return work(list(self.cells), self.config, since=self.since, max_cells=1)


def unfinished(claims: CellClaims, suite: str, cells: list[Cell], since: float) -> list[Cell]:
    """The cells not yet done, and not failed during this invocation (those wait for the next one)."""
    left = claims.unfinished(suite, (c.cell_id for c in cells), since)
    return [c for c in cells if c.cell_id in left]


def place_cells(suite: Suite, cells: list[Cell], config, *, since: float,
                on_poll: Callable[[], None] | None = None) -> list[str]:
    """Run every unfinished cell as a job of ``config.executor``; return lines for jobs given up on.

    Resources: the suite's ``resources``, then its dataset's, then the command-line flags. When the jobs have
    ended and cells are still held by workers that went silent (a node died with its jobs), this waits until
    their claims go stale (``--claim-timeout``) and places those cells again, up to ``max_requeues`` times.
    """
    settings = config.executor
    config = with_absolute_paths(config)
    claims = CellClaims(ResultsStore(config.database).engine)
    if not unfinished(claims, suite.name, cells, since):
        return []  # nothing to place: no jobs folder, no engine started
    jobs_dir = config.results_dir / "jobs" / suite.name / time.strftime("%Y%m%d-%H%M%S", time.localtime(since))
    view = SubmitterView.write(jobs_dir)
    given_up: list[str] = []
    with open_executor(settings, jobs_dir) as executor:
        for placement in range(settings.max_requeues + 1):
            todo = unfinished(claims, suite.name, cells, since)
            if todo and placement:
                log.warning("suite %s: %d cell(s) unfinished after every job ended; waiting for silent claims to go "
                            "stale, then placing them again", suite.name, len(todo))
                _wait_for_holders(claims, suite.name, todo, config.stale_after_s, on_poll)
                todo = unfinished(claims, suite.name, cells, since)
            if not todo:
                break
            given_up = run_jobs(executor, _groups(suite, todo, config, since, view), max_requeues=settings.max_requeues,
                                on_poll=on_poll)
    return given_up


def _groups(suite: Suite, todo: list[Cell], config, since: float, view: SubmitterView) -> list[JobGroup]:
    """One job per cell, grouped by the resources its dataset asks for."""
    by_resources: dict[Resources, list[Cell]] = {}
    for cell in todo:
        by_resources.setdefault(suite.resources_of(cell).merged(config.executor.resources), []).append(cell)
    groups = []
    for resources, group in by_resources.items():
        datasets = sorted({c.dataset for c in group})
        job = CellJob(tuple(group), config, since, threads=resources.cpus or 1, view=view)
        groups.append(JobGroup((job,) * len(group), resources, f"suite {suite.name} ({', '.join(datasets)})"))
    return groups


def _wait_for_holders(claims: CellClaims, suite: str, todo: list[Cell], stale_after_s: float,
                      on_poll: Callable[[], None] | None, poll_s: float = 5.0) -> None:
    """Until no cell of ``todo`` is held by a live worker (it finished, or its claim can be taken over)."""
    ids = {c.cell_id for c in todo}
    while claims.held_by_live_workers(suite, ids, stale_after_s=stale_after_s):
        if on_poll is not None:
            on_poll()
        time.sleep(poll_s)


def with_absolute_paths(config):
    """``config`` with every folder and SQLite path absolute: a job starts in whatever directory its engine picks."""
    def absolute(path):
        return None if path is None else absolute_path(path)

    return dataclasses.replace(config, results_dir=absolute_path(config.results_dir), db=absolute_location(config.db),
                               data_root=absolute(config.data_root), weights_dir=absolute(config.weights_dir))
