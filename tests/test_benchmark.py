"""The benchmark matrix: resumable, claims exclusive across threads and processes, stale claims taken over."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from hsbench.benchmark import BenchmarkConfig, run_benchmark
from hsbench.claims import CellClaims, Heartbeat, WorkerId, cells_table
from hsbench.errors import ConfigError
from hsbench.registry import STRATEGIES
from hsbench.store import ResultsStore, runs_table
from hsbench.strategy import Strategy, StrategySpec
from hsbench.suite import parse_suite

LOG_ENV = "HSBENCH_TEST_CELL_LOG"
FAIL_ENV = "HSBENCH_TEST_FAIL_SEED"
INTERRUPT_ENV = "HSBENCH_TEST_INTERRUPT"


class CountingStrategy(Strategy):
    """Appends ``<run id> <pid>`` to the file named by $HSBENCH_TEST_CELL_LOG each time it fits."""

    name: ClassVar[str] = "counting"
    spec: ClassVar[StrategySpec] = StrategySpec(description="test: logs every fit")
    defaults: ClassVar[dict[str, Any]] = {"sleep_s": 0.0, "tag": ""}

    def fit(self, train, val):
        run_id = self.ctx.work_dir.parent.name
        with open(os.environ[LOG_ENV], "a") as log:
            log.write(f"{run_id} {os.getpid()}\n")
        if os.environ.get(INTERRUPT_ENV):
            raise KeyboardInterrupt
        if os.environ.get(FAIL_ENV) == str(self.ctx.seeds.seed):
            raise RuntimeError("planned failure")
        time.sleep(float(self.cfg["sleep_s"]))
        return {}

    def predict(self, sample):
        return np.zeros(sample.labels.shape, dtype=np.int64)


def register_test_plugins() -> None:
    """Also the ``worker_init`` of spawned workers (they start from a fresh interpreter)."""
    from conftest import register_tiny_provider

    STRATEGIES.register_module(name="counting", module=CountingStrategy, force=True)
    register_tiny_provider("tiny_segmentation")


@pytest.fixture
def plugins(tiny_registered, tmp_path, monkeypatch):
    register_test_plugins()
    log = tmp_path / "fits.log"
    log.touch()
    monkeypatch.setenv(LOG_ENV, str(log))
    yield log
    STRATEGIES.module_dict.pop("counting", None)


def _suite(seeds=(0, 1), sleep_s: float = 0.0, name: str = "t"):
    return parse_suite({
        "name": name,
        "seeds": list(seeds),
        "splits": ["fraction=0.5", "fraction=1.0"],
        "datasets": ["tiny_segmentation"],
        "strategies": [{"strategy": "counting", "label": "a", "options": {"sleep_s": sleep_s, "tag": "a"}},
                       {"strategy": "counting", "label": "b", "options": {"sleep_s": sleep_s, "tag": "b"}}],
    })


def _config(tmp_path: Path, **kwargs) -> BenchmarkConfig:
    return BenchmarkConfig(results_dir=tmp_path / "results", device="cpu", progress=False, **kwargs)


def _fits(log: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in log.read_text().splitlines()]


def _claims(tmp_path: Path) -> CellClaims:
    return CellClaims(ResultsStore(tmp_path / "results" / "hsbench.db").engine)


def test_every_cell_runs_once_and_a_rerun_skips_them(tmp_path, plugins) -> None:
    suite = _suite()
    summary = run_benchmark(suite, _config(tmp_path))
    assert summary.complete and summary.total == 8 and summary.states["done"] == 8
    fits = _fits(plugins)
    assert len(fits) == 8 and len({run_id for run_id, _ in fits}) == 8
    store = ResultsStore(tmp_path / "results" / "hsbench.db")
    cells = _claims(tmp_path).cells("t")
    assert sorted(r["run_id"] for r in cells) == sorted(store.runs()["run_id"])

    again = run_benchmark(suite, _config(tmp_path))
    assert again.complete and len(_fits(plugins)) == 8  # nothing ran twice


def test_a_killed_worker_s_cell_is_redone_at_once_on_the_same_host(tmp_path, plugins) -> None:
    suite = _suite(seeds=(0,))
    run_benchmark(suite, _config(tmp_path))
    victim = suite.cells()[2]
    dead_pid = _dead_pid()
    claims = _claims(tmp_path)
    run_id = next(r["run_id"] for r in claims.cells("t") if r["cell_id"] == victim.cell_id)
    with claims.engine.begin() as conn:  # what SIGKILL leaves: both rows running, a fresh heartbeat, no process
        conn.execute(cells_table.update().where(cells_table.c.cell_id == victim.cell_id).values(
            state="running", worker=f"x:{dead_pid}", host=WorkerId.current().host, pid=dead_pid,
            heartbeat_at=time.time()))
        conn.execute(runs_table.update().where(runs_table.c.run_id == run_id).values(status="running"))
    summary = run_benchmark(suite, _config(tmp_path))  # the default 600 s timeout does not apply on this host
    assert summary.complete
    assert _fits(plugins)[4:] == [(run_id, str(os.getpid()))]  # only the victim ran again


def test_ctrl_c_gives_the_cell_back_and_the_next_run_finishes_it(tmp_path, plugins, monkeypatch) -> None:
    suite = _suite(seeds=(0,))
    monkeypatch.setenv(INTERRUPT_ENV, "1")
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(suite, _config(tmp_path))
    states = _claims(tmp_path).count_states("t")
    assert states == {"pending": 4, "running": 0, "done": 0, "failed": 0}
    monkeypatch.delenv(INTERRUPT_ENV)
    assert run_benchmark(suite, _config(tmp_path)).complete
    assert len(_fits(plugins)) == 1 + 4


def test_a_failed_cell_is_reported_and_retried_by_the_next_invocation(tmp_path, plugins, monkeypatch) -> None:
    monkeypatch.setenv(FAIL_ENV, "1")
    suite = _suite()
    summary = run_benchmark(suite, _config(tmp_path))
    assert summary.states["failed"] == 4 and summary.states["done"] == 4 and not summary.complete
    assert len(summary.errors) == 4 and all("planned failure" in e for e in summary.errors)
    assert len(_fits(plugins)) == 8  # a failure is not retried within the invocation
    monkeypatch.delenv(FAIL_ENV)
    assert run_benchmark(suite, _config(tmp_path)).complete
    assert len(_fits(plugins)) == 12


def test_two_worker_processes_never_run_a_cell_twice(tmp_path, plugins) -> None:
    suite = _suite(seeds=(0, 1, 2), sleep_s=0.3)
    # Heartbeats every 0.2 s against a 5 s timeout: beats run in both workers' threads, and no live cell is stolen.
    config = _config(tmp_path, workers=2, worker_init=register_test_plugins, heartbeat_s=0.2, stale_after_s=5.0)
    summary = run_benchmark(suite, config)
    assert summary.complete and summary.total == 12
    fits = _fits(plugins)
    run_ids = [run_id for run_id, _ in fits]
    assert len(run_ids) == 12 and len(set(run_ids)) == 12
    assert len({pid for _, pid in fits}) == 2  # both workers took cells
    assert ResultsStore(tmp_path / "results" / "hsbench.db").count_rows()["runs"] == 12


def test_concurrent_claims_hand_out_each_cell_once(tmp_path, tiny_registered) -> None:
    claims = CellClaims(ResultsStore(tmp_path / "r.db").engine)
    suite = _numbered_suite(seeds=list(range(10)))
    claims.register(suite.cells())
    taken: list[str] = []

    def worker() -> None:
        me = WorkerId(f"w{threading.get_ident()}", "elsewhere", 1)
        while (claimed := claims.claim("n", me, stale_after_s=600, retry_failed_before=0)) is not None:
            taken.append(claimed.cell_id)
            assert claims.finish(claimed, me, state="done", run_id="r")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(c.cell_id for c in suite.cells())


def test_stale_claim_is_taken_over_and_a_live_one_is_not(tmp_path, tiny_registered) -> None:
    claims = CellClaims(ResultsStore(tmp_path / "r.db").engine)
    suite = _numbered_suite(seeds=[0, 1])
    first, second = (c.cell_id for c in suite.cells())
    claims.register(suite.cells())
    a = WorkerId("a", "machine-a", 10)
    b = WorkerId("b", "machine-b", 20)
    held = claims.claim("n", a, stale_after_s=60, retry_failed_before=0)
    assert held.cell_id == first
    assert claims.beat(held, a)
    assert claims.claim("n", b, stale_after_s=60, retry_failed_before=0).cell_id == second  # a is alive
    assert claims.claim("n", b, stale_after_s=60, retry_failed_before=0) is None
    with claims.engine.begin() as conn:  # machine a goes silent for two minutes
        conn.execute(cells_table.update().where(cells_table.c.cell_id == first).values(heartbeat_at=time.time() - 120))
    taken = claims.claim("n", b, stale_after_s=60, retry_failed_before=0)
    assert taken.cell_id == first and taken.attempts == 2
    assert not claims.beat(held, a) and not claims.finish(held, a, state="done", run_id="late")
    assert claims.finish(taken, b, state="done", run_id="r1")
    assert [r["worker"] for r in claims.cells("n")] == ["b", "b"]


def test_heartbeat_thread_keeps_the_claim_fresh(tmp_path, tiny_registered) -> None:
    claims = CellClaims(ResultsStore(tmp_path / "r.db").engine)
    suite = _numbered_suite(seeds=[0])
    claims.register(suite.cells())
    me = WorkerId("me", "h", 1)
    held = claims.claim("n", me, stale_after_s=60, retry_failed_before=0)
    before = claims.cells("n")[0]["heartbeat_at"]
    with Heartbeat(claims, held, me, interval_s=0.05) as beat:
        time.sleep(0.5)
    assert claims.cells("n")[0]["heartbeat_at"] > before and not beat.lost


def test_claims_ignore_cells_of_an_older_suite_version(tmp_path, tiny_registered) -> None:
    claims = CellClaims(ResultsStore(tmp_path / "r.db").engine)
    old, new = _numbered_suite(seeds=[0]), _numbered_suite(seeds=[1])
    claims.register(old.cells())
    only = {c.cell_id for c in new.cells()}
    assert claims.claim("n", WorkerId("a", "h", 1), stale_after_s=60, retry_failed_before=0, only=only) is None


def test_config_rejects_a_timeout_shorter_than_two_heartbeats(tmp_path) -> None:
    with pytest.raises(ConfigError, match="heartbeat"):
        _config(tmp_path, stale_after_s=10, heartbeat_s=30)
    with pytest.raises(ConfigError, match="workers"):
        _config(tmp_path, workers=0)


def _numbered_suite(seeds: list[int]):
    return parse_suite({"name": "n", "seeds": seeds, "splits": ["fraction=1.0"], "datasets": ["tiny_segmentation"],
                        "strategies": [{"strategy": "in_domain", "options": {"model": "svm"}}]})


def _dead_pid() -> int:
    """A pid that no process has (a finished child's)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_cli_benchmark_shows_one_bar_and_ends_with_the_report(tmp_path, plugins, capsys) -> None:
    import argparse

    import yaml

    from hsbench.cli import benchmark

    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "cli", "seeds": [0, 1, 2], "splits": ["fraction=0.5"], "datasets": ["tiny_segmentation"],
        "strategies": [{"strategy": "counting", "label": "a"}, {"strategy": "counting", "label": "b",
                                                                  "options": {"tag": "b"}}]}))
    parser = argparse.ArgumentParser()
    benchmark.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["benchmark", "--suite", str(suite_file), "--results", str(tmp_path / "results"),
                              "--reports", str(tmp_path / "reports"), "--device", "cpu"])
    assert benchmark.run(args) == 0
    out, err = capsys.readouterr()
    assert "6/6" in err and "cell" in err  # the progress bar
    assert "suite cli: 6 of 6 cells done, 0 failed" in err
    assert "## Split `fraction=0.5`" in out and (tmp_path / "reports" / "cli" / "leaderboard.html").is_file()


def test_a_benchmark_whose_every_cell_failed_exits_1_without_a_report_error(tmp_path, plugins, monkeypatch,
                                                                          capsys) -> None:
    from hsbench.cli import main

    monkeypatch.setenv(FAIL_ENV, "0")
    suite = tmp_path / "all_fail.yaml"
    suite.write_text("name: all_fail\nseeds: [0]\nsplits: [fraction=1.0]\ndatasets: [tiny_segmentation]\n"
                     "strategies: [{strategy: counting}]\n")
    argv = ["benchmark", "--suite", str(suite), "--results", str(tmp_path / "results"), "--reports",
            str(tmp_path / "reports"), "--no-progress", "--device", "cpu"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no cell completed, so no report was written" in err and "NothingToReport" not in err
    assert not (tmp_path / "reports" / "all_fail").exists()


def _init_with_a_full_disk() -> None:
    """``worker_init`` of a spawned worker: the plug-ins, and a disk that is full when results are written."""
    import errno

    from hsbench.runner import Runner

    register_test_plugins()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "metrics.json")

    Runner._write_results = staticmethod(full)


def test_an_environment_fault_in_a_worker_process_is_one_line(tmp_path, plugins, capfd) -> None:
    config = _config(tmp_path, workers=2, worker_init=_init_with_a_full_disk, heartbeat_s=0.2, stale_after_s=5.0)
    summary = run_benchmark(_suite(seeds=(0,)), config)
    err = capfd.readouterr().err
    assert re.search(r"\[worker \d\] ERROR metrics\.json: no space left on the device \(ENOSPC\)", err)
    assert "Process hsbench-worker" not in err and "OSError" not in err  # multiprocessing's traceback header
    assert summary.states["done"] == 0 and summary.states["running"] == 0


def test_held_by_live_workers_follows_the_takeover_rule(tmp_path, tiny_registered) -> None:
    """After every cluster job ended, placement waits only for cells nobody here could take over yet."""
    suite = _numbered_suite([0, 1, 2])
    claims = _claims(tmp_path)
    claims.register(suite.cells())
    dead_here, live_elsewhere, stale_elsewhere = (c.cell_id for c in suite.cells())
    now, host = time.time(), WorkerId.current().host
    holders = {dead_here: (host, _dead_pid(), now), live_elsewhere: ("other-node", 1, now),
               stale_elsewhere: ("other-node", 1, now - 120)}
    with claims.engine.begin() as conn:
        for cell_id, (holder_host, pid, beat) in holders.items():
            conn.execute(cells_table.update().where(cells_table.c.cell_id == cell_id).values(
                state="running", worker=f"{holder_host}:{pid}", host=holder_host, pid=pid, heartbeat_at=beat))
    assert claims.held_by_live_workers("n", holders, stale_after_s=60) == {live_elsewhere}
    assert claims.unfinished("n", holders, since=now) == set(holders)
