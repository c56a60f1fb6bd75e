"""The matrix driver behind ``hsbench benchmark``: every cell of a suite run exactly once, resumably.

Cells are claimed through the results database (:mod:`hsbench.claims`), so the same code serves one process,
``--workers N`` processes on one machine, and several machines pointed at one PostgreSQL database: each process
claims the next free cell, runs it through :class:`hsbench.runner.Runner` and marks it done. A finished cell is
never claimed again; a cell whose worker died is taken over (at once on the same host, after the stale timeout
elsewhere); a cell that failed in an earlier invocation is retried once per invocation.

The runner claims each cell's run once more, by run id (see :mod:`hsbench.runner`): a different key, so a worker
never waits on its own cell, while a cell whose run another process (``hsbench run``, another suite) is running
waits for it and reports its result instead of training it twice.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from hsbench.claims import CellClaims, ClaimedCell, Heartbeat, WorkerId
from hsbench.errors import ConfigError, HsbenchError
from hsbench.executors.base import ExecutorSettings
from hsbench.store import ResultsStore, default_database
from hsbench.suite import Cell, Suite

if TYPE_CHECKING:
    from hsbench.runner import Runner

__all__ = ["BenchmarkConfig", "BenchmarkSummary", "run_benchmark", "work", "prepare_worker", "usable_cpus"]

log = logging.getLogger("hsbench")

_POLL_S = 1.0


@dataclass(frozen=True)
class BenchmarkConfig:
    """How to run a suite.

    Attributes:
        results_dir: results folder (run folders and, by default, the SQLite database).
        db: database URL or SQLite path (default ``results_dir/hsbench.db``).
        data_root: prepared real datasets.
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        workers: processes on this machine; each takes ``usable CPUs // workers`` torch threads.
        stale_after_s: a running cell without a heartbeat for this long is taken over by another worker.
        heartbeat_s: how often a worker refreshes the heartbeat of its cell.
        progress: show the suite's progress bar.
        worker_init: a picklable function each spawned worker calls first (to register plug-ins that are not
            imported by ``hsbench`` itself, e.g. in tests).
        weights_dir: where the suite's declared weights files lie (``--weights-dir``); checked before any cell.
        save_model: every run keeps its selected model in ``<run folder>/model/`` (off: ``--no-save-model``); not
            part of the cells' run ids.
        tensorboard: every run writes TensorBoard curves (``--tensorboard``, :class:`hsbench.runner.Runner`); not
            part of the cells' run ids.
        executor: where the cells run (``--executor``): this machine's ``workers`` processes, or one Slurm job /
            Ray task per cell (:mod:`hsbench.executors`); ``workers`` is then unused.
    """

    results_dir: Path = Path("results")
    db: str | None = None
    data_root: Path | None = None
    device: str = "auto"
    workers: int = 1
    stale_after_s: float = 600.0
    heartbeat_s: float = 30.0
    progress: bool = True
    worker_init: Callable[[], None] | None = None
    weights_dir: Path | None = None
    save_model: bool = True
    tensorboard: bool = False
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)

    def __post_init__(self) -> None:
        if self.tensorboard:
            from hsbench.tensorboard_log import require_tensorboard

            require_tensorboard()  # one line before any worker starts, not one per worker
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.stale_after_s <= 2 * self.heartbeat_s:
            raise ConfigError(f"the claim timeout ({self.stale_after_s} s) must exceed twice the heartbeat "
                              f"interval ({self.heartbeat_s} s), or live workers would lose their cells")

    @property
    def database(self) -> str | Path:
        return default_database(self.results_dir, self.db)


@dataclass
class BenchmarkSummary:
    """The state of a suite's matrix after an invocation."""

    suite: str
    total: int
    states: dict[str, int]
    wall_s: float
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.states.get("done", 0) == self.total


def run_benchmark(suite: Suite, config: BenchmarkConfig) -> BenchmarkSummary:
    """Run every unfinished cell of ``suite`` (in this process or in ``config.workers`` spawned processes)."""
    start = time.perf_counter()
    errors: list[str] = []  # jobs an executor gave up on
    suite.check_weights(config.weights_dir)  # every missing file named before any cell runs
    cells = suite.cells(config.weights_dir)
    claims = CellClaims(ResultsStore(config.database).engine)
    claims.register(cells)
    since = time.time()
    ids = {c.cell_id for c in cells}
    with _ProgressBar(claims, suite.name, ids, since, enabled=config.progress) as bar:
        if config.executor.remote:
            from hsbench.executors.cells import place_cells

            errors = place_cells(suite, cells, config, since=since, on_poll=bar.refresh)
        elif config.workers == 1:
            work(cells, config, since=since, on_cell_end=bar.refresh)
        else:
            _run_worker_processes(cells, config, since, bar)
    rows = [r for r in claims.cells(suite.name) if r["cell_id"] in ids]
    errors += [f"{r['dataset']} {r['label']} {r['split']} seed {r['seed']}: {_last_line(r['error'])}"
              for r in rows if r["state"] == "failed"]
    return BenchmarkSummary(suite.name, len(cells), claims.count_states(suite.name, ids),
                            time.perf_counter() - start, errors)


def work(
    cells: list[Cell],
    config: BenchmarkConfig,
    *,
    since: float,
    on_cell_end: Callable[[], None] | None = None,
    max_cells: int | None = None,
    parent_pid: int | None = None,
) -> int:
    """Claim and run cells of one suite until none is left; return how many this worker ran.

    Args:
        cells: the suite's current cells (claims of cells from an older version of the suite are left alone).
        since: invocation start (epoch seconds); cells that failed before it are retried.
        on_cell_end: called after each cell (progress updates).
        max_cells: stop after this many cells (a cluster job runs one cell).
        parent_pid: a spawned worker's parent; when it is gone (SIGKILLed), no further cell is claimed.
    """
    from hsbench.data.paths import data_root_from
    from hsbench.provenance import resolve_device
    from hsbench.runner import Runner

    if not cells:
        return 0
    by_id = {c.cell_id: c for c in cells}
    runner = Runner(config.results_dir, db=config.db, data_root=data_root_from(config.data_root),
                    device=resolve_device(config.device), progress=False, claim_timeout_s=config.stale_after_s,
                    heartbeat_s=config.heartbeat_s, tensorboard=config.tensorboard, save_model=config.save_model)
    claims, worker, ran = CellClaims(runner.store.engine), WorkerId.current(), 0
    while max_cells is None or ran < max_cells:
        if parent_pid is not None and os.getppid() != parent_pid:
            log.warning("the hsbench benchmark process that started this worker is gone; stopping")
            return ran
        claimed = _claim_next(claims, cells[0].suite, by_id, worker, config, since)
        if claimed is None:
            return ran
        _run_cell(runner, claims, claimed, by_id[claimed.cell_id], worker, config.heartbeat_s)
        ran += 1
        if on_cell_end is not None:
            on_cell_end()
    return ran


def _claim_next(claims: CellClaims, suite: str, by_id: dict[str, Cell], worker: WorkerId,
                config: BenchmarkConfig, since: float) -> ClaimedCell | None:
    return claims.claim(suite, worker, stale_after_s=config.stale_after_s, retry_failed_before=since,
                        only=set(by_id))


def _run_cell(runner: Runner, claims: CellClaims, claimed: ClaimedCell, cell: Cell, worker: WorkerId,
              heartbeat_s: float) -> None:
    """Run one claimed cell; a Ctrl-C gives the cell back before it propagates."""
    try:
        with Heartbeat(claims, claimed, worker, heartbeat_s):
            outcome = runner.run(cell.run_spec())
    except HsbenchError as exc:  # e.g. a real dataset that is not prepared: the other cells may still run
        log.error("%s %s %s seed %d: %s", cell.dataset, cell.label, cell.split, cell.seed, exc)
        claims.finish(claimed, worker, state="failed", run_id=None, error=str(exc))
        return
    except BaseException:
        claims.release(claimed, worker)
        raise
    state = "failed" if outcome.status == "failed" else "done"
    if not claims.finish(claimed, worker, state=state, run_id=outcome.run_id, error=outcome.error):
        log.warning("cell %s finished after its claim was taken over; its result stands", cell.cell_id)


def _run_worker_processes(cells: list[Cell], config: BenchmarkConfig, since: float, bar: _ProgressBar) -> None:
    """Spawn the workers and refresh the progress bar from the database until they all end."""
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and open connections
    threads = max(1, usable_cpus() // config.workers)
    processes = [
        context.Process(target=_worker_main, args=(cells, config, since, threads, rank, os.getpid()),
                        name=f"hsbench-worker-{rank}")
        for rank in range(config.workers)
    ]
    for process in processes:
        process.start()
    previous = _interrupt_on_sigterm()
    try:
        while any(p.is_alive() for p in processes):
            bar.refresh()
            time.sleep(_POLL_S)
    except BaseException:
        _interrupt_workers(processes)  # a Ctrl-C reached them too; a SIGTERM (kill, a job's end) only reached us
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for process in processes:
            process.join()
    crashed = [p.name for p in processes if p.exitcode not in (0, None)]
    if crashed:
        log.error("worker(s) %s ended abnormally; their cells are taken over by the next invocation",
                  ", ".join(crashed))


def _interrupt_on_sigterm() -> Any:
    """Turn SIGTERM into a KeyboardInterrupt while the workers run (main thread only); the previous handler.

    Killing the command with SIGTERM would otherwise end this process alone and leave its spawned workers running
    the rest of the matrix as orphans."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, interrupt)


def _interrupt_workers(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """Ctrl-C every live worker: each gives its running cell back (``_run_cell``) and ends."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)


def usable_cpus() -> int:
    """CPUs this process may run on (a container's or ``taskset``'s limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def prepare_worker(config: BenchmarkConfig, threads: int, name: str) -> None:
    """What a fresh worker process needs before :func:`work`: console logging, thread count, plug-ins.

    A spawned process, a Slurm job and a Ray task all start with nothing of the submitting process.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"[{name}] %(levelname)s %(message)s"))
    handler.setLevel(logging.WARNING)  # run loggers are set to INFO for their log files; the console gets less
    root = logging.getLogger("hsbench")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    torch.set_num_threads(threads)
    from hsbench.data.scenes import register_user_datasets

    register_user_datasets(config.data_root)  # the parent's registrations do not survive spawn
    if config.worker_init is not None:
        config.worker_init()


def _worker_main(cells: list[Cell], config: BenchmarkConfig, since: float, threads: int, rank: int,
                 parent_pid: int) -> None:
    """Entry point of a spawned worker: :func:`prepare_worker`, then :func:`work`."""
    prepare_worker(config, threads, f"worker {rank}")
    try:
        work(cells, config, since=since, parent_pid=parent_pid)
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        from hsbench.faults import EXIT_FAULT, describe

        line = describe(exc, database=config.database)
        if line is None:
            raise  # a programming error keeps its traceback
        log.error("%s", line)  # an environment fault: one line, like the single-process command
        sys.exit(EXIT_FAULT)




class _ProgressBar:
    """One bar over the suite's cells, counted from the database so that every worker's cells show."""

    def __init__(self, claims: CellClaims, suite: str, cell_ids: set[str], since: float, *, enabled: bool) -> None:
        self._claims, self._suite, self._ids, self._since = claims, suite, cell_ids, since
        # Cells finished before this invocation count from the start, so the ETA reflects only the remaining work.
        self._bar = tqdm(total=len(cell_ids), initial=self._finished()[0], desc=suite, unit="cell",
                         disable=not enabled, dynamic_ncols=True)
        # Log lines (a run's summary, a failure) go through tqdm.write so they do not tear the bar.
        self._redirect = logging_redirect_tqdm(loggers=[log]) if enabled else contextlib.nullcontext()

    def _finished(self) -> tuple[int, int]:
        return self._claims.progress(self._suite, self._ids, self._since)

    def refresh(self) -> None:
        finished, failed = self._finished()
        if finished > self._bar.n:
            self._bar.update(finished - self._bar.n)
        if failed:
            self._bar.set_postfix(failed=failed, refresh=False)

    def __enter__(self) -> _ProgressBar:
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.refresh()
            self._bar.close()
        finally:
            self._redirect.__exit__(*exc)


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"
