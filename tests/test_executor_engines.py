"""Benchmarks and sweeps through real engines: a single-node Slurm (submitit) and a local Ray cluster.

Each engine must give the report the local executor gives, and a job killed mid-cell must cost exactly one
redo of that cell. The jobs are fresh processes: they import the plug-ins from tests/ through PYTHONPATH.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_plugins import TESTS_DIR, fits, register_engine_plugins

from hsbench.benchmark import BenchmarkConfig, BenchmarkSummary, run_benchmark
from hsbench.executors import ExecutorSettings, Resources
from hsbench.report import load_suite_results, write_report
from hsbench.store import ResultsStore
from hsbench.suite import Suite, parse_suite

SVM = {"model": "svm", "input": "standardize", "svm_c_grid": [1.0, 10.0], "svm_max_pixels": 500}
COMPARED = ("leaderboard.csv", "pairwise.csv", "ranks.csv", "comparisons.json", "leaderboard.md")


def _ray_unavailable() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed (pip install 'hsbench[ray]')"
    return None


@pytest.fixture
def engine_env(tiny_registered, monkeypatch):
    """Jobs start from scratch: tests/ on their PYTHONPATH, so that they can import the plug-ins."""
    register_engine_plugins()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])))


def _suite(log: Path, sleep_s: float = 0.0, *, svm: bool = True) -> Suite:
    """Four cells: a real SVM and the logging strategy, two seeds each (without ``svm``: the two logging cells)."""
    logged = {"strategy": "logged_fit", "label": "logged", "options": {"log": str(log), "sleep_s": sleep_s}}
    return parse_suite({
        "name": "engines", "seeds": [0, 1], "splits": ["fraction=1.0"], "datasets": ["tiny_segmentation"],
        "resources": {"cpus": 1, "mem": "2G", "time": "10"},
        "strategies": [{"strategy": "in_domain", "label": "svm", "options": SVM}] * svm + [logged],
    })


def _config(results: Path, executor: ExecutorSettings | None = None) -> BenchmarkConfig:
    return BenchmarkConfig(results_dir=results, device="cpu", progress=False, worker_init=register_engine_plugins,
                           heartbeat_s=1.0, stale_after_s=60.0, executor=executor or ExecutorSettings())


def _report(results: Path, suite: Suite) -> dict[str, str]:
    """The report's files, less what differs between any two runs of one matrix (timings)."""
    out = results / "report"
    write_report(load_suite_results(ResultsStore(results / "hsbench.db"), suite), out)
    texts = {name: (out / name).read_text() for name in COMPARED}
    texts["leaderboard.md"] = re.sub(r"## Timings.*?(?=\n## )", "", texts["leaderboard.md"], flags=re.S)
    return texts


def _local_and_remote_reports_agree(tmp_path: Path, executor: ExecutorSettings) -> None:
    log = tmp_path / "fits.log"
    suite = _suite(log)
    local = run_benchmark(suite, _config(tmp_path / "local"))
    remote = run_benchmark(suite, _config(tmp_path / executor.name, executor))
    assert local.complete and remote.complete and remote.states["done"] == 4
    assert _report(tmp_path / "local", suite) == _report(tmp_path / executor.name, suite)
    logged = fits(log)
    assert len(logged) == 4 and logged[:2] == [(run, os.getpid()) for run, _ in logged[:2]]
    assert all(pid != os.getpid() for _, pid in logged[2:])  # the engine's cells ran in its jobs, not here
    assert [run for run, _ in logged[2:]] == [run for run, _ in logged[:2]] or \
        sorted(run for run, _ in logged[2:]) == sorted(run for run, _ in logged[:2])  # same run ids


def _killed_mid_cell_is_redone_once(tmp_path: Path, executor: ExecutorSettings, kill: Callable[[int], None], *,
                                    sleep_s: float) -> BenchmarkSummary:
    """Kill the process of the first logging cell while it sleeps ``sleep_s`` (longer than the kill takes)."""
    log = tmp_path / "fits.log"
    suite = _suite(log, sleep_s=sleep_s, svm=False)
    outcome: dict[str, BenchmarkSummary] = {}
    thread = threading.Thread(target=lambda: outcome.update(summary=run_benchmark(suite, _config(tmp_path, executor))))
    thread.start()
    deadline = time.monotonic() + 120
    while not fits(log) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fits(log), "no cell of the logging strategy started within 120 s"
    victim_run, victim_pid = fits(log)[0]
    kill(victim_pid)
    thread.join(timeout=240)
    assert not thread.is_alive(), "the benchmark did not end after the kill"
    summary = outcome["summary"]
    assert summary.complete and summary.states == {"pending": 0, "running": 0, "done": 2, "failed": 0}
    runs = [run for run, _ in fits(log)]
    assert runs.count(victim_run) == 2  # the killed attempt and exactly one redo
    assert len(runs) == 3 and len(set(runs)) == 2  # the other logging cell ran once
    stored = ResultsStore(tmp_path / "hsbench.db").runs()
    assert len(stored) == 2 and set(stored["status"]) == {"completed"}
    return summary


# --- Slurm -------------------------------------------------------------------------------------------------------


def _slurm(cluster, **kwargs) -> ExecutorSettings:
    return ExecutorSettings("slurm", Resources(partition=cluster.partition), **kwargs)


def test_slurm_executor_gives_the_local_executor_s_report(slurm_cluster, engine_env, tmp_path) -> None:
    _local_and_remote_reports_agree(tmp_path, _slurm(slurm_cluster))


def _slurm_job_of(pid: int) -> str:
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
    if "SLURM_ARRAY_TASK_ID" in environ:  # the task's own job id would be read as the whole array's by scancel
        return f"{environ['SLURM_ARRAY_JOB_ID']}_{environ['SLURM_ARRAY_TASK_ID']}"
    return environ["SLURM_JOB_ID"]


def test_a_cancelled_slurm_job_s_cell_is_redone_exactly_once(slurm_cluster, engine_env, tmp_path) -> None:
    def cancel(pid: int) -> None:
        subprocess.run(["scancel", _slurm_job_of(pid)], check=True)

    # scancel: SIGTERM (which submitit ignores), then SIGKILL after the cluster's KillWait of 5 s
    _killed_mid_cell_is_redone_once(tmp_path, _slurm(slurm_cluster, max_requeues=1), cancel, sleep_s=12.0)


def test_sbatch_refusing_the_jobs_is_one_clear_error(slurm_cluster, engine_env, tmp_path) -> None:
    from hsbench.errors import HsbenchError

    executor = ExecutorSettings("slurm", Resources(partition="no_such_partition"))
    with pytest.raises(HsbenchError, match="sbatch refused the jobs.*partition"):
        run_benchmark(_suite(tmp_path / "fits.log"), _config(tmp_path, executor))


def test_a_sweep_runs_its_workers_as_slurm_jobs(slurm_cluster, tmp_path, monkeypatch, tiny_registered) -> None:
    _sweep_through(ExecutorSettings("slurm", Resources(partition=slurm_cluster.partition, cpus=1)), tmp_path,
                   monkeypatch)


# --- Ray ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def ray_available():
    reason = _ray_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster for the tests after the first (which lets the executor start and stop its own).

    Its workers inherit PYTHONPATH from this process when the cluster starts, so tests/ is put there first.
    """
    reason = _ray_unavailable()
    if reason:
        pytest.skip(reason)
    import ray

    patch = pytest.MonkeyPatch()
    patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])))
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()
    patch.undo()


def test_ray_executor_gives_the_local_executor_s_report(ray_available, engine_env, tmp_path) -> None:
    _local_and_remote_reports_agree(tmp_path, ExecutorSettings("ray"))


def test_a_killed_ray_worker_s_cell_is_redone_exactly_once(ray_cluster, engine_env, tmp_path) -> None:
    _killed_mid_cell_is_redone_once(tmp_path, ExecutorSettings("ray", max_requeues=1),
                                    lambda pid: os.kill(pid, signal.SIGKILL), sleep_s=4.0)


def test_a_sweep_runs_its_workers_as_ray_tasks(ray_cluster, tmp_path, monkeypatch, tiny_registered) -> None:
    _sweep_through(ExecutorSettings("ray"), tmp_path, monkeypatch)


def _sweep_through(executor: ExecutorSettings, tmp_path: Path, monkeypatch) -> None:
    """Two workers as jobs share a 4-trial budget exactly, as local worker processes do."""
    import test_sweep
    from optuna.trial import TrialState

    from hsbench.sweep import open_study, run_sweep

    test_sweep.register_plugins()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])))
    config = test_sweep._config(tmp_path, trials=4)
    summary = run_sweep(config, workers=2, executor=executor)
    assert summary.failed_workers == ()
    trials = open_study(config).get_trials(deepcopy=False)
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 4 and len(trials) == 4
    workers = {t.user_attrs["worker"] for t in trials}
    assert all(not w.endswith(f":{os.getpid()}") for w in workers)  # trials ran in the jobs, not here
