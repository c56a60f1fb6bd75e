"""Optuna sweeps: tune a strategy on val mIoU, in parallel worker processes, then refit the best on test.

``hsbench sweep`` is built from these pieces:

* :class:`SweepDefinition` (what to optimise) and :class:`SweepConfig` (study, storage, budget, workers' setup);
* :func:`run_sweep` / :func:`run_worker`: workers sharing a study through a journal file or PostgreSQL, with
  heartbeats and a claim lock, so that an N-trial budget gives exactly N finished trials;
* :func:`refit_best`: the best parameters re-run as ordinary, stored runs for several seeds;
* :func:`write_sweep_plots`: the figures the report shows.
"""

from hsbench.sweep._plots import SWEEP_PLOTS, write_sweep_plots
from hsbench.sweep._refit import refit_best
from hsbench.sweep._storage import STORAGE_KINDS, Heartbeat, StorageKind, open_storage, storage_kind
from hsbench.sweep._study import OBJECTIVE, SweepConfig, SweepDefinition, SweepSummary, load_definition, open_study
from hsbench.sweep._worker import WorkerReport, run_sweep, run_worker

__all__ = [
    "OBJECTIVE",
    "STORAGE_KINDS",
    "SWEEP_PLOTS",
    "Heartbeat",
    "StorageKind",
    "SweepConfig",
    "SweepDefinition",
    "SweepSummary",
    "WorkerReport",
    "load_definition",
    "open_storage",
    "open_study",
    "refit_best",
    "run_sweep",
    "run_worker",
    "storage_kind",
    "write_sweep_plots",
]
