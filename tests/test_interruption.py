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


def _pretrain_command(zoo: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "hsbench", "pretrain", "spectral_fm", "--zoo", str(zoo), "--epochs", str(epochs),
            "--pixels", "2048", "--fm-options", "dim=16", "depth=1", "heads=2",
            "--source-options", "num_images=4", "--device", "cpu", "--no-progress"]


def test_sigkilled_pretraining_leaves_no_artifact_and_the_next_call_builds_it(tmp_path) -> None:
    """SIGKILL mid-pretrain: the zoo holds nothing (no half-written artifact); the next call trains and stores it."""
    from hsbench.zoo import Zoo

    zoo = tmp_path / "zoo"
    env = {**os.environ, "HSBENCH_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(_pretrain_command(zoo, epochs=10_000), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(zoo.glob(".*.lock")):  # the build lock is taken right before training starts
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "pretraining never started"
            time.sleep(0.2)
        time.sleep(2.0)  # well inside the 10,000 epochs
        assert proc.poll() is None, "pretraining ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert Zoo(zoo).artifacts() == []
    assert not [p for p in zoo.iterdir() if p.is_dir() and not p.name.startswith(".")]

    done = subprocess.run(_pretrain_command(zoo, epochs=1), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(Zoo(zoo).artifacts()) == 1
