"""The ``slurm_cluster`` fixture gives a working Slurm cluster: submitit job arrays run, scancel ends a running job."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

submitit = pytest.importorskip("submitit", reason="submitit is an extra: pip install 'hsbench[slurm]'")
cloudpickle = pytest.importorskip("cloudpickle")

# Job processes cannot import this test module by name: pickle its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def _sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "finished"


def _executor(cluster, folder) -> submitit.SlurmExecutor:
    executor = submitit.SlurmExecutor(folder=folder)
    # time=5: with submitit's 90 s warning signal, which Slurm may send up to 60 s early, a 2-minute limit gets
    # USR2 at once and the job dies before Python can handle it
    executor.update_parameters(partition=cluster.partition, cpus_per_task=1, mem="200M", time=5)
    return executor


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.25)


def _queue(*fields: str) -> list[list[str]]:
    out = subprocess.run(["squeue", "-h", "-r", "-o", " ".join(fields)], capture_output=True, text=True, check=True,
                         timeout=10).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def test_job_array_runs(slurm_cluster, tmp_path):
    assert os.environ["SLURM_CONF"] == str(slurm_cluster.conf) == slurm_cluster.env["SLURM_CONF"]
    executor = _executor(slurm_cluster, tmp_path)
    with executor.batch():
        jobs = [executor.submit(_square_and_pid, i) for i in (3, 4)]
    assert len({job.job_id.split("_")[0] for job in jobs}) == 1  # one array
    _wait_for(lambda: all(job.paths.result_pickle.exists() for job in jobs), 60, "the array's results")
    results = [job.result() for job in jobs]
    assert [value for value, _ in results] == [9, 16]
    pids = {pid for _, pid in results}
    assert len(pids) == 2 and os.getpid() not in pids


def test_scancel_ends_a_running_job(slurm_cluster, tmp_path):
    job = _executor(slurm_cluster, tmp_path).submit(_sleep, 60)
    _wait_for(lambda: [job.job_id, "RUNNING"] in _queue("%i", "%T"), 30, f"job {job.job_id} to run")
    subprocess.run(["scancel", job.job_id], check=True, timeout=10)
    _wait_for(lambda: [job.job_id] not in _queue("%i"), 15, f"job {job.job_id} to leave squeue")
    assert not job.paths.result_pickle.exists()
