"""A run executes exactly once at a time: real ``hsbench run`` processes on the same run, and database writes
retried after a lost connection without writing twice.

Run as a script, this file is the ``hsbench`` command line with the test plug-ins registered:
``python tests/test_exactly_once.py run --strategy gated ...``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from sqlalchemy.exc import OperationalError

from hsbench import db_retry
from hsbench.claims import CellClaims, WorkerId
from hsbench.registry import STRATEGIES
from hsbench.store import ResultsStore
from hsbench.strategy import Strategy, StrategySpec

FIT_LOG_ENV = "HSBENCH_TEST_FIT_LOG"  # every fit appends "<run id> <pid>"
GATE_ENV = "HSBENCH_TEST_GATE"  # when set, fit waits until this file exists
RUN_ARGS = ("run", "--strategy", "gated", "--dataset", "tiny_segmentation", "--split", "fraction=0.5",
            "--device", "cpu", "--no-progress")
TIMEOUT_S = 60.0


class GatedStrategy(Strategy):
    """Logs each fit, leaves a marker in its run folder, and holds the run until the gate file appears."""

    name: ClassVar[str] = "gated"
    spec: ClassVar[StrategySpec] = StrategySpec(description="test: logs fits, waits for a gate file")
    defaults: ClassVar[dict[str, Any]] = {}

    def fit(self, train, val):
        with open(os.environ[FIT_LOG_ENV], "a") as log:
            log.write(f"{self.ctx.work_dir.parent.name} {os.getpid()}\n")
        (self.ctx.work_dir / "marker").write_text(str(os.getpid()))
        gate = os.environ.get(GATE_ENV)
        deadline = time.monotonic() + 120
        while gate and not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return {}

    def predict(self, sample):
        return np.zeros(sample.labels.shape, dtype=np.int64)


def register_plugins() -> None:
    from conftest import register_tiny_provider

    STRATEGIES.register_module(name="gated", module=GatedStrategy, force=True)
    register_tiny_provider("tiny_segmentation")


class Cli:
    """Starts ``hsbench`` processes (this file as a script) on one results folder and reads their traces."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.results = tmp_path / "results"
        self.fit_log = tmp_path / "fits.log"
        self.fit_log.touch()
        self.gate = tmp_path / "gate"
        self._count = 0

    def start(self, *extra: str, gated: bool = True) -> subprocess.Popen:
        env = {**os.environ, FIT_LOG_ENV: str(self.fit_log), "PYTHONPATH": str(Path(__file__).parents[1])}
        env.pop(GATE_ENV, None)
        if gated:
            env[GATE_ENV] = str(self.gate)
        self._count += 1
        err = open(self.tmp / f"stderr{self._count}.txt", "w+")  # noqa: SIM115 - read back by stderr()
        proc = subprocess.Popen([sys.executable, __file__, *RUN_ARGS, "--results", str(self.results), *extra],
                                env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        proc.err_path = err.name  # type: ignore[attr-defined]
        return proc

    @staticmethod
    def stderr(proc: subprocess.Popen) -> str:
        return Path(proc.err_path).read_text()  # type: ignore[attr-defined]

    def fits(self) -> list[tuple[str, str]]:
        return [tuple(line.split()) for line in self.fit_log.read_text().splitlines()]

    def wait_for(self, condition: Callable[[], bool], what: str, alive: list[subprocess.Popen]) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            for proc in alive:
                assert proc.poll() is None, f"process ended while waiting for {what}: {self.stderr(proc)}"
            assert len(self.fits()) <= 1, f"a second process trained while waiting for {what}: {self.fits()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)


@pytest.fixture
def cli(tmp_path) -> Iterator[Cli]:
    started: list[subprocess.Popen] = []
    helper = Cli(tmp_path)
    original = helper.start

    def start(*args: str, **kwargs: Any) -> subprocess.Popen:
        started.append(original(*args, **kwargs))
        return started[-1]

    helper.start = start  # type: ignore[method-assign]
    yield helper
    for proc in started:  # a failed assertion must not leave processes behind
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _holder_text(proc: subprocess.Popen) -> str:
    return f"pid {proc.pid} on host {socket.gethostname()}"


def _run_folder(cli: Cli) -> Path:
    (run_id, _), = cli.fits()[:1]
    return cli.results / "runs" / run_id


def test_a_second_run_waits_for_the_first_and_reports_its_result(cli) -> None:
    first = cli.start()
    cli.wait_for(lambda: len(cli.fits()) == 1, "the first run to train", [first])
    second = cli.start()
    cli.wait_for(lambda: "is being run by" in cli.stderr(second), "the second run to wait", [first, second])
    assert _holder_text(first) in cli.stderr(second)  # the message names who runs it
    cli.gate.touch()
    out_first, _ = first.communicate(timeout=TIMEOUT_S)
    out_second, _ = second.communicate(timeout=TIMEOUT_S)
    assert first.returncode == 0 and second.returncode == 0, cli.stderr(second)
    assert [pid for _, pid in cli.fits()] == [str(first.pid)]  # exactly one process trained
    assert (_run_folder(cli) / "work" / "marker").read_text() == str(first.pid)  # its folder was left alone
    assert "already completed: skipped" in cli.stderr(second)
    assert out_second.split("tiny_segmentation")[1] == out_first.split("tiny_segmentation")[1]  # same metrics
    runs = ResultsStore(cli.results / "hsbench.db").runs(status=None)
    assert list(runs["status"]) == ["completed"]


def test_no_wait_exits_at_once_naming_the_holder(cli) -> None:
    first = cli.start()
    cli.wait_for(lambda: len(cli.fits()) == 1, "the first run to train", [first])
    second = cli.start("--no-wait")
    second.communicate(timeout=TIMEOUT_S)  # not blocked by the first run, whose gate is still closed
    assert second.returncode == 0
    assert f"is being run by {_holder_text(first)}; not waiting" in cli.stderr(second)
    assert first.poll() is None and len(cli.fits()) == 1
    assert (_run_folder(cli) / "work" / "marker").read_text() == str(first.pid)
    cli.gate.touch()
    first.communicate(timeout=TIMEOUT_S)
    assert first.returncode == 0


def test_a_sigkilled_holder_is_taken_over_by_the_waiting_run(cli) -> None:
    first = cli.start()
    cli.wait_for(lambda: len(cli.fits()) == 1, "the first run to train", [first])
    second = cli.start(gated=False)
    cli.wait_for(lambda: "is being run by" in cli.stderr(second), "the second run to wait", [first, second])
    first.send_signal(signal.SIGKILL)
    first.wait()
    second.communicate(timeout=TIMEOUT_S)
    assert second.returncode == 0, cli.stderr(second)
    assert "taking over from" in cli.stderr(second)
    assert [pid for _, pid in cli.fits()] == [str(first.pid), str(second.pid)]
    assert (_run_folder(cli) / "work" / "marker").read_text() == str(second.pid)
    store = ResultsStore(cli.results / "hsbench.db")
    assert list(store.runs(status=None)["status"]) == ["completed"] and store.count_rows()["confusions"] == 2


def test_a_benchmark_cell_waits_for_the_same_run_started_by_hsbench_run(cli, monkeypatch, caplog) -> None:
    from hsbench.benchmark import BenchmarkConfig, run_benchmark
    from hsbench.suite import parse_suite

    register_plugins()
    monkeypatch.setenv(FIT_LOG_ENV, str(cli.fit_log))
    monkeypatch.delenv(GATE_ENV, raising=False)
    suite = parse_suite({"name": "same", "seeds": [0], "splits": ["fraction=0.5"], "datasets": ["tiny_segmentation"],
                         "strategies": [{"strategy": "gated"}]})
    first = cli.start()
    cli.wait_for(lambda: len(cli.fits()) == 1, "the run to train", [first])
    config = BenchmarkConfig(results_dir=cli.results, device="cpu", progress=False)
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(summary=run_benchmark(suite, config)))
    with caplog.at_level(logging.INFO, logger="hsbench"):
        worker.start()
        cli.wait_for(lambda: "is being run by" in caplog.text, "the cell to wait", [first])
        assert _holder_text(first) in caplog.text
        cli.gate.touch()
        worker.join(timeout=TIMEOUT_S)
    first.communicate(timeout=TIMEOUT_S)
    assert outcome["summary"].complete and first.returncode == 0
    assert [pid for _, pid in cli.fits()] == [str(first.pid)]  # the cell reported the run's result
    cell = CellClaims(ResultsStore(cli.results / "hsbench.db").engine).cells("same")[0]
    assert cell["state"] == "done" and cell["run_id"] == cli.fits()[0][0]


def _lost_ack(exc_message: str = "server closed the connection unexpectedly") -> OperationalError:
    class ConnectionLost(Exception):  # a server driver's error (not sqlite3's)
        pass

    return OperationalError("COMMIT", {}, ConnectionLost(exc_message), connection_invalidated=True)


@contextmanager
def _first_commit_unacknowledged(engine, monkeypatch) -> Iterator[list[int]]:
    """The first transaction commits, then its connection dies before the client hears so."""
    real_begin, lost = engine.begin, []

    @contextmanager
    def begin():
        with real_begin() as conn:
            yield conn
        if not lost:
            lost.append(1)
            raise _lost_ack()

    monkeypatch.setattr(engine, "begin", begin)
    yield lost
    monkeypatch.setattr(engine, "begin", real_begin)


def test_a_claim_whose_commit_was_not_acknowledged_is_still_won(tmp_path, tiny_registered, monkeypatch) -> None:
    from test_benchmark import _numbered_suite

    claims = CellClaims(ResultsStore(tmp_path / "r.db").engine)
    cells = _numbered_suite(seeds=[0]).cells()
    claims.register(cells)
    me = WorkerId("me", "h", os.getpid())
    with _first_commit_unacknowledged(claims.engine, monkeypatch) as lost:
        claimed = claims.claim("n", me, stale_after_s=60, retry_failed_before=0)
    assert lost and claimed is not None and claimed.attempts == 1
    with _first_commit_unacknowledged(claims.engine, monkeypatch) as lost:
        assert claims.finish(claimed, me, state="done", run_id="r")
    assert lost and claims.count_states("n") == {"pending": 0, "running": 0, "done": 1, "failed": 0}


def test_results_whose_commit_was_not_acknowledged_are_written_once(tmp_path, monkeypatch) -> None:
    store = ResultsStore(tmp_path / "r.db")
    row = {"dataset": "d", "dataset_fingerprint": "f", "dataset_version": "1", "split": "s", "strategy": "x",
           "strategy_label": "x", "seed": 0, "config": {}}
    store.begin("r1", row)
    results = {"metrics": {"test": {"miou": 0.5}}, "per_class": {"test": {"iou": np.array([0.5, 0.5])}},
               "confusions": {"test": np.eye(2, dtype=np.int64)}, "timings": {}, "facts": {}}
    with _first_commit_unacknowledged(store.engine, monkeypatch) as lost:
        store.complete("r1", **results)
    assert lost
    assert store.count_rows() == {"runs": 1, "metrics": 3, "confusions": 1}
    assert store.get("r1").status == "completed"


def test_only_transient_database_errors_are_retried(monkeypatch) -> None:
    monkeypatch.setattr(db_retry.time, "sleep", lambda s: None)
    calls: list[int] = []

    def failing(times: int, error: OperationalError) -> Callable[[], str]:
        def fn() -> str:
            calls.append(1)
            if len(calls) <= times:
                raise error
            return "ok"
        return fn

    assert db_retry.retry_transient(failing(3, _lost_ack())) == "ok" and len(calls) == 4
    calls.clear()
    locked = OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))
    assert db_retry.retry_transient(failing(2, locked)) == "ok" and len(calls) == 3
    calls.clear()
    read_only = OperationalError("UPDATE", {}, sqlite3.OperationalError("attempt to write a readonly database"))
    with pytest.raises(OperationalError, match="readonly"):
        db_retry.retry_transient(failing(1, read_only))
    assert len(calls) == 1  # a permanent fault is reported at once
    calls.clear()
    monkeypatch.setattr(db_retry, "CONNECTION_RETRY_S", 0.0)
    with pytest.raises(OperationalError, match="server closed"):  # a server that stays away is reported
        db_retry.retry_transient(failing(10, _lost_ack()))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    register_plugins()
    from hsbench.cli import main

    sys.exit(main(sys.argv[1:]))
