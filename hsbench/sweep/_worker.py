"""Sweep workers: claim a trial under the study's claim lock, run it with a heartbeat, report it; repeat.

The budget is N *finished* (complete or pruned) trials over all workers and sessions. A worker asks for a trial
only while fewer than N trials are running or finished, and counts and asks under one lock, so K workers never
create more than N trials. When all N are taken but not all finished, a worker waits rather than exits: if a
running trial's worker died, its heartbeat stops, the trial is failed (Optuna's ``fail_stale_trials``) and the
freed slot goes to a waiting worker, so the study still completes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import os
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field

import optuna
import torch
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import get_heartbeat_thread  # the thread Study.optimize uses (no public alias)
from optuna.trial import TrialState

from hsbench.errors import ConfigError, HsbenchError
from hsbench.executors.base import ExecutorSettings
from hsbench.provenance import resolve_device
from hsbench.runner import Runner
from hsbench.sweep._objective import make_objective
from hsbench.sweep._storage import ClaimLock, storage_kind
from hsbench.sweep._study import SweepConfig, SweepSummary, load_definition, open_study, summarize, trial_sampler

__all__ = ["WorkerReport", "run_worker", "run_sweep"]

log = logging.getLogger("hsbench")

_TAKEN = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class WorkerReport:
    """Trials one worker ran, by final state name."""

    worker: int
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, state: TrialState) -> None:
        self.counts[state.name] = self.counts.get(state.name, 0) + 1


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _claim(study: optuna.Study, lock: ClaimLock, budget: int, seed: int) -> optuna.Trial | None:
    """A new trial (or a waiting, enqueued one) if the budget has room, else ``None``."""
    with lock():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Optuna warns that ask() does not start the heartbeat thread; _run_trial starts it.
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            optuna.storages.fail_stale_trials(study)
            if _count(study, _TAKEN) >= budget:
                return None
            trial = study.ask()
    study.sampler = trial_sampler(seed, trial.number)  # parameters are sampled lazily, at the first suggest
    return trial


def _tell(study: optuna.Study, trial: optuna.Trial, state: TrialState, value: float | None) -> None:
    try:
        told = study.tell(trial, value if state == TrialState.COMPLETE else None, state=state,
                          skip_if_finished=True)
    except UpdateFinishedTrialError:
        told = study._storage.get_trial(trial._trial_id)
    if told.state != state:
        log.warning("trial %d was declared dead (no heartbeat within the grace period) while it ran; its "
                    "result is dropped", trial.number)


def _run_trial(study: optuna.Study, trial: optuna.Trial, objective, worker: int) -> TrialState:
    """Run the objective with a heartbeat; always leaves the trial finished, re-raises user errors."""
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    state, value = TrialState.FAIL, None
    try:
        with get_heartbeat_thread(trial._trial_id, study._storage):
            value = objective(trial)
        state = TrialState.COMPLETE if math.isfinite(value) else TrialState.FAIL
    except optuna.TrialPruned as exc:
        state = TrialState.PRUNED
        log.info("worker %d: trial %d %s", worker, trial.number, exc)
    except HsbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crashing trial fails; the sweep goes on
        log.warning("worker %d: trial %d failed: %s: %s", worker, trial.number, type(exc).__name__, exc)
    finally:
        _tell(study, trial, state, value)
    if state == TrialState.COMPLETE:
        log.info("worker %d: trial %d val mIoU %.4f %s", worker, trial.number, value, trial.params)
    return state


def run_worker(config: SweepConfig, worker: int = 0) -> WorkerReport:
    """Run trials until the study has ``config.trials`` finished trials, or until the timeout.

    Args:
        config: the sweep.
        worker: this worker's index (shown in logs).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial comes from here instead
    study = open_study(config)
    definition = config.definition or load_definition(study)
    runner = Runner(config.results_dir, db=config.db, data_root=config.data_root,
                    device=resolve_device(config.device), progress=False)
    objective = make_objective(runner, definition, config.trials_dir)
    lock = storage_kind(config.storage).claim_lock(config.storage, config.study)
    deadline = None if config.timeout_s is None else time.monotonic() + config.timeout_s
    report, failures_in_a_row = WorkerReport(worker), 0
    while deadline is None or time.monotonic() < deadline:
        trial = _claim(study, lock, config.trials, config.sampler_seed)
        if trial is None:
            if _count(study, _FINISHED) >= config.trials:
                break
            time.sleep(config.heartbeat.interval_s)  # every slot is taken; one frees if a trial goes stale
            continue
        state = _run_trial(study, trial, objective, worker)
        report.add(state)
        failures_in_a_row = failures_in_a_row + 1 if state == TrialState.FAIL else 0
        if failures_in_a_row >= config.max_consecutive_failures:
            log.error("worker %d: %d trials failed in a row; stopping (see the logs under %s)",
                      worker, failures_in_a_row, config.trials_dir)
            break
    return report


def worker_process(config: SweepConfig, worker: int, threads: int) -> None:
    """Entry point of a spawned worker or cluster job: it starts with nothing registered and no logging configured."""
    torch.set_num_threads(threads)
    if config.setup is not None:
        config.setup()
    try:
        run_worker(config, worker)
    except HsbenchError as exc:  # the same one-line message and exit code as the CLI
        print(f"hsbench: error: worker {worker}: {exc}", file=sys.stderr)
        sys.exit(2)


def run_sweep(config: SweepConfig, *, workers: int = 1, executor: ExecutorSettings | None = None) -> SweepSummary:
    """Create or resume the study, run ``workers`` worker processes on it, and summarise it.

    With one worker the trials run in this process. With more, each worker is a fresh (spawned) process with
    an equal share of the CPU threads; ``config.setup`` registers in it whatever this process registered. With a
    remote ``executor`` (Slurm, Ray), each worker is a cluster job (:mod:`hsbench.executors.trials`).

    Raises:
        ConfigError: bad settings. A worker process that fails is listed in the summary's ``failed_workers``.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if workers > 1 and not storage_kind(config.storage).parallel:
        raise ConfigError(f"{config.storage} cannot be shared by {workers} workers: use a journal file path or "
                          "a PostgreSQL URL as --storage")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(config)  # create it (and record its definition) once, before workers race to
    if executor is not None and executor.remote:
        from hsbench.executors.trials import place_sweep_workers

        given_up = place_sweep_workers(config, workers, executor)
        return dataclasses.replace(summarize(study), failed_workers=tuple(given_up))
    if workers == 1:
        run_worker(config)
        return summarize(study)
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # fork would copy this process's threads and locks
    processes = [context.Process(target=worker_process, args=(config, index, threads), name=f"sweep-worker-{index}")
                 for index in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = tuple(f"{p.name} (exit code {p.exitcode})" for p in processes if p.exitcode != 0)
    return dataclasses.replace(summarize(study), failed_workers=failed)
