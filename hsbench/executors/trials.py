"""Sweep workers on a cluster engine: ``--workers`` jobs, each one sweep worker on the shared Optuna storage.

A job is the same worker loop as a local worker process (:func:`hsbench.sweep.run_worker`): it claims trials
under the study's claim lock until the budget is finished. A killed job's running trial loses its heartbeat, is
failed by the next claim and its slot goes to a live worker, so the budget still ends at exactly N finished
trials; the placement loop resubmits the killed job itself up to ``max_requeues`` times.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hsbench.errors import ConfigError
from hsbench.executors.base import ExecutorSettings, SubmitterView, absolute_location, absolute_path, open_executor
from hsbench.executors.pool import JobGroup, run_jobs

__all__ = ["SweepJob", "place_sweep_workers"]


@dataclass(frozen=True)
class SweepJob:
    """One cluster job running one sweep worker (index ``worker``) with ``threads`` torch threads."""

    config: object  # hsbench.sweep.SweepConfig
    worker: int
    threads: int
    view: SubmitterView

    def __call__(self) -> None:
        from hsbench.sweep._worker import worker_process

        self.view.enter()
        worker_process(self.config, self.worker, self.threads)


def place_sweep_workers(config, workers: int, settings: ExecutorSettings) -> list[str]:
    """Run ``workers`` sweep workers as jobs of ``settings``' executor; return lines for jobs given up on."""
    from hsbench.sweep._storage import storage_kind

    kind = storage_kind(config.storage)
    if not kind.parallel:
        raise ConfigError(f"--executor {settings.name} runs workers in other processes, and {config.storage} cannot "
                          "be shared: use a journal file on shared storage or a PostgreSQL URL as --storage")
    config = dataclasses.replace(config, storage=absolute_location(config.storage), db=absolute_location(config.db),
                                 results_dir=absolute_path(config.results_dir),
                                 data_root=None if config.data_root is None else absolute_path(config.data_root))
    resources = settings.resources
    jobs_dir = config.trials_dir / "jobs"
    view = SubmitterView.write(jobs_dir)
    jobs = tuple(SweepJob(config, index, resources.cpus or 1, view) for index in range(workers))
    with open_executor(settings, jobs_dir) as executor:
        return run_jobs(executor, [JobGroup(jobs, resources, f"sweep {config.study}")],
                        max_requeues=settings.max_requeues)
