"""Benchmark cells on a cluster engine: one job per unfinished cell, grouped by the resources the suite asks.

Each job is :class:`CellJob`: a fresh process that claims the next free cell of its group and runs it, exactly
like a local worker that stops after one cell. The claims keep every cell exactly once whatever the engine does:
a job started twice, late or after its cell was finished by another finds nothing and ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hsbench.claims import CellClaims
from hsbench.executors.base import open_executor
from hsbench.executors.pool import JobGroup, run_jobs
from hsbench.executors.resources import Resources
from hsbench.store import ResultsStore
from hsbench.suite import Cell, Suite

__all__ = ["CellJob", "place_cells", "unfinished"]


@dataclass(frozen=True)
class CellJob:
    """One cluster job: claim one free cell among ``cells`` and run it (see :func:`hsbench.benchmark.work`)."""

    cells: tuple[Cell, ...]
    config: object  # hsbench.benchmark.BenchmarkConfig (not imported at module level: that module imports this)
    since: float
    threads: int

    def __call__(self) -> int:
        from hsbench.benchmark import prepare_worker, work

        prepare_worker(self.config, self.threads, "cluster job")
        return work(list(self.cells), self.config, since=self.since, max_cells=1)


def unfinished(claims: CellClaims, suite: str, cells: list[Cell], since: float) -> list[Cell]:
    """The cells not yet done, and not failed during this invocation (those wait for the next one)."""
    rows = {r["cell_id"]: r for r in claims.cells(suite)}

    def finished(cell: Cell) -> bool:
        row = rows.get(cell.cell_id)
        return row is not None and (row["state"] == "done" or (
            row["state"] == "failed" and (row["finished_at"] or 0.0) >= since))

    return [c for c in cells if not finished(c)]


def place_cells(suite: Suite, cells: list[Cell], config, *, since: float,
                on_poll: Callable[[], None] | None = None) -> list[str]:
    """Run every unfinished cell as a job of ``config.executor``; return lines for jobs given up on.

    Resources: the suite's ``resources``, then its dataset's, then the command-line flags.
    """
    settings = config.executor
    claims = CellClaims(ResultsStore(config.database).engine)
    todo = unfinished(claims, suite.name, cells, since)
    by_resources: dict[Resources, list[Cell]] = {}
    for cell in todo:
        by_resources.setdefault(suite.resources_of(cell).merged(settings.resources), []).append(cell)
    groups = []
    for resources, group in by_resources.items():
        datasets = sorted({c.dataset for c in group})
        job = CellJob(tuple(group), config, since, threads=resources.cpus or 1)
        groups.append(JobGroup((job,) * len(group), resources, f"suite {suite.name} ({', '.join(datasets)})"))
    jobs_dir = config.results_dir / "jobs" / suite.name / time.strftime("%Y%m%d-%H%M%S", time.localtime(since))
    with open_executor(settings, jobs_dir) as executor:
        return run_jobs(executor, groups, max_requeues=settings.max_requeues, on_poll=on_poll)
