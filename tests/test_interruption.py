"""A run killed with SIGKILL is redone on the next call and leaves no duplicate or half-written row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from slow_strategy import SPEC_ARGS, register

from hsbench.runner import Runner, RunSpec
from hsbench.store import ResultsStore


def test_sigkilled_run_is_redone_without_duplicates(tmp_path, tiny_registered) -> None:
    script = Path(__file__).with_name("slow_strategy.py")
    env = {**os.environ, "HSBENCH_TEST_HANG": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env)
    store = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (tmp_path / "hsbench.db").exists():
                store = store or ResultsStore(tmp_path / "hsbench.db")
                runs = store.runs(status=None)
                if len(runs) and runs.iloc[0]["status"] == "running":
                    break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.2)
        else:
            raise AssertionError("the run never started")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert store.runs(status=None).iloc[0]["status"] == "running"
    assert store.count_rows()["metrics"] == 0  # nothing half-written

    register()
    outcome = Runner(tmp_path, progress=False).run(RunSpec(*SPEC_ARGS))
    assert outcome.status == "completed"
    counts = store.count_rows()
    assert counts["runs"] == 1 and counts["confusions"] == 2
    assert store.runs().iloc[0]["run_id"] == outcome.run_id
