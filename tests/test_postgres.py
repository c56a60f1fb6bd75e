"""PostgreSQL for many machines: the results database and sweep studies on a real server.

A server is started on loopback in a temporary folder (see ``pg_server.py``), or taken from
``$HSBENCH_TEST_POSTGRES_URL``; the tests skip, saying why, only when neither is possible.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest
from pg_server import URL_ENV, PostgresServer, PostgresUnavailable
from sqlalchemy import create_engine, inspect, text
from test_benchmark import LOG_ENV, _suite, register_test_plugins
from test_sweep import (  # noqa: F401 - toy: the fixture registering the toy strategy, used below
    check_killed_worker_leaves_its_trial_failed,
    check_three_workers_share_twelve_trials_exactly,
    register_plugins,
    toy,
)

from hsbench.benchmark import BenchmarkConfig, run_benchmark
from hsbench.claims import CellClaims
from hsbench.runner import Runner, RunSpec
from hsbench.store import ResultsStore

pytest.importorskip("psycopg", reason="the PostgreSQL driver is an extra: pip install 'hsbench[postgres]'")

pytestmark = pytest.mark.usefixtures("toy")

WRITERS, RUNS_PER_WRITER = 3, 4


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    yield server
    server.stop()


@pytest.fixture
def database(postgres, request) -> str:
    """A fresh database named after the test."""
    return postgres.create_database(request.node.name.replace("[", "_").replace("]", "").lower()[:60])


def _write_runs(db: str, results_dir: Path, writer: int) -> None:
    register_plugins()
    runner = Runner(results_dir, db=db, progress=False)
    for index in range(RUNS_PER_WRITER):
        seed = writer * RUNS_PER_WRITER + index
        outcome = runner.run(RunSpec("tiny_segmentation", "toy_sweep", "official", seed, {"quality": 0.3}))
        assert outcome.status == "completed", outcome.error


def test_parallel_writers_lose_no_row(database, tmp_path) -> None:
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_runs, args=(database, tmp_path / f"w{i}", i)) for i in range(WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert [w.exitcode for w in writers] == [0] * WRITERS
    store = ResultsStore(database)
    runs = store.runs()
    assert len(runs) == WRITERS * RUNS_PER_WRITER and set(runs["status"]) == {"completed"}
    assert sorted(runs["seed"]) == list(range(WRITERS * RUNS_PER_WRITER))
    counts = store.count_rows()
    per_run = counts["metrics"] / len(runs)
    assert per_run == int(per_run) > 0 and counts["confusions"] == 2 * len(runs)  # val and test, every run
    assert len(store.scalar_metrics()) == len(runs)


def test_new_columns_are_added_to_an_older_database(database) -> None:
    ResultsStore(database)
    engine = create_engine(database)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE runs DROP COLUMN study"))
    ResultsStore(database).tag_study([], "s")
    assert "study" in {c["name"] for c in inspect(engine).get_columns("runs")}
    engine.dispose()


def test_three_workers_share_twelve_trials_exactly_on_postgres(database, tmp_path) -> None:
    check_three_workers_share_twelve_trials_exactly(tmp_path, database)


def test_killed_worker_trial_fails_on_postgres(database, tmp_path, monkeypatch) -> None:
    check_killed_worker_leaves_its_trial_failed(tmp_path, monkeypatch, database)


def test_a_server_restart_mid_benchmark_loses_nothing(postgres, database, tmp_path, monkeypatch, capfd) -> None:
    """Two workers train while the server stops for 2 s and starts again: every cell is done exactly once."""
    if postgres._data_dir is None:
        pytest.skip(f"${URL_ENV} names a server this test cannot restart")
    register_test_plugins()
    fits = tmp_path / "fits.log"
    fits.touch()
    monkeypatch.setenv(LOG_ENV, str(fits))
    suite = _suite(seeds=(0, 1, 2), sleep_s=0.5, name="restart")  # 12 cells of 0.5 s each
    config = BenchmarkConfig(results_dir=tmp_path / "results", db=database, device="cpu", progress=False, workers=2,
                             worker_init=register_test_plugins, heartbeat_s=0.2, stale_after_s=30.0)
    outcome: dict[str, object] = {}
    thread = threading.Thread(target=lambda: outcome.update(summary=run_benchmark(suite, config)))
    thread.start()
    deadline = time.monotonic() + 60
    while len({line.split()[1] for line in fits.read_text().splitlines()}) < 2:  # both workers are training
        assert thread.is_alive() and time.monotonic() < deadline, "the workers never both started"
        time.sleep(0.05)
    postgres.restart(down_s=2.0)
    thread.join(timeout=120)
    assert not thread.is_alive() and "summary" in outcome, "the benchmark died with the connection"
    summary = outcome["summary"]
    assert summary.states == {"pending": 0, "running": 0, "done": 12, "failed": 0}
    trained = [line.split()[0] for line in fits.read_text().splitlines()]
    assert len(trained) == 12 and len(set(trained)) == 12  # every cell trained exactly once
    store = ResultsStore(database)
    assert [row["attempts"] for row in CellClaims(store.engine).cells("restart")] == [1] * 12  # claimed once each
    runs = store.runs(status=None)
    assert len(runs) == 12 and set(runs["status"]) == {"completed"} and set(runs["run_id"]) == set(trained)
    assert store.count_rows()["confusions"] == 24
    assert "database connection failed" in capfd.readouterr().err  # the outage was met, and retried
