"""SIGTERM to ``hsbench benchmark`` with worker processes ends its workers too, and their cells are given back.

Run as a script, this file is a benchmark of four slow ``logged_fit`` cells on two spawned workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine_plugins import TESTS_DIR, fits

TIMEOUT_S = 60.0


def _suite(log: Path):
    from hsbench.suite import parse_suite

    return parse_suite({
        "name": "sigterm", "seeds": [0, 1, 2, 3], "splits": ["fraction=0.5"], "datasets": ["tiny_segmentation"],
        "strategies": [{"strategy": "logged_fit", "label": "slow", "options": {"log": str(log), "sleep_s": 600}}],
    })


def _benchmark(results: Path, log: Path) -> None:
    from engine_plugins import register_engine_plugins

    from hsbench.benchmark import BenchmarkConfig, run_benchmark

    register_engine_plugins()
    config = BenchmarkConfig(results_dir=results, device="cpu", progress=False, workers=2,
                             worker_init=register_engine_plugins)
    run_benchmark(_suite(log), config)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_sigterm_ends_the_workers_and_gives_their_cells_back(tmp_path, tiny_registered) -> None:
    from engine_plugins import register_engine_plugins

    from hsbench.benchmark import BenchmarkConfig
    from hsbench.claims import CellClaims
    from hsbench.store import ResultsStore

    results, log = tmp_path / "results", tmp_path / "fits.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), str(TESTS_DIR.parent)])}
    proc = subprocess.Popen([sys.executable, __file__, str(results), str(log)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len({pid for _, pid in fits(log)}) == 2, "both workers to start a cell")
        workers = {pid for _, pid in fits(log)}
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=TIMEOUT_S)
        _wait_for(lambda: not any(_alive(pid) for pid in workers), "the workers to end")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(fits(log)) == 2  # no worker went on to a further cell
    register_engine_plugins()
    suite = _suite(log)
    claims = CellClaims(ResultsStore(BenchmarkConfig(results_dir=results).database).engine)
    states = claims.count_states(suite.name, {c.cell_id for c in suite.cells()})
    assert states["running"] == 0  # both cells were given back, not left to a claim timeout


if __name__ == "__main__":
    _benchmark(Path(sys.argv[1]), Path(sys.argv[2]))
