"""The ``slurm`` executor: each submission is one Slurm job array, built and launched by ``submitit``.

Job state comes from ``squeue`` and from the result file submitit writes when a call returns, never from
``sacct``: clusters without accounting (``slurmdbd``) are common for small installations, and there sacct fails.
A job that leaves the queue without a result file ended abnormally (``scancel``, out of memory, a lost node, a
time limit without requeue) and is handed back to the placement loop.

Preemption and time limits go through submitit's checkpointing: every call is wrapped as
``submitit.helpers.Checkpointable``, so on Slurm's warning signal the job requeues itself under the same job id
(timeouts at most ``max_requeues`` times). The requeued job claims anew; the cell the killed process held is
taken over (at once on the same node, after the claim timeout on another).

submitit keeps the calls it submits as pickle files in ``jobs_dir``; they are hsbench's own, written and read
by the same user, never files a user hands in.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from hsbench.errors import ConfigError, HsbenchError
from hsbench.executors.base import Executor, ExecutorSettings, JobEnd, import_engine, register_executor
from hsbench.executors.resources import Resources

__all__ = ["SlurmExecutor", "DEFAULT_TIME_MIN"]

log = logging.getLogger("hsbench")

DEFAULT_TIME_MIN = 24 * 60
"""Wall-time limit of a job when neither the suite nor ``--time`` sets one (submitit's own default is 5 min)."""
_GRACE_S = 10.0  # a job missing from squeue without a result file is declared dead after this long
_SLURM_COMMANDS = ("sbatch", "squeue", "scancel")


def _checkpointable(call: Callable[[], Any]) -> Any:
    """``call`` wrapped so that submitit requeues it on preemption or time-out instead of losing it."""
    from submitit.helpers import Checkpointable

    class Requeueable(Checkpointable):
        def __init__(self, inner: Callable[[], Any]) -> None:
            self.inner = inner

        def __call__(self) -> Any:
            return self.inner()

    Requeueable.__qualname__ = Requeueable.__name__ = "HsbenchRequeueableJob"
    return Requeueable(call)


@register_executor("slurm")
class SlurmExecutor(Executor):
    """Slurm job arrays through submitit; the machine running hsbench must be able to call sbatch and squeue."""

    install_hint = "pip install 'hsbench[slurm]'"

    def __init__(self, settings: ExecutorSettings, jobs_dir: Path) -> None:
        self._submitit = import_engine("submitit", "slurm")
        missing = [c for c in _SLURM_COMMANDS if shutil.which(c) is None]
        if missing:
            raise ConfigError(f"--executor slurm: {', '.join(missing)} not found on PATH; run hsbench on a Slurm "
                              "login node (or a machine with the Slurm client commands and its slurm.conf)")
        self._settings = settings
        self._folder = Path(jobs_dir)
        self._folder.mkdir(parents=True, exist_ok=True)
        self._job_name = f"hsbench-{uuid.uuid4().hex[:8]}"  # squeue filters on it: only this command's jobs
        self._jobs: dict[str, Any] = {}
        self._missing_since: dict[str, float] = {}

    def _parameters(self, resources: Resources, jobs: int) -> dict[str, Any]:
        minutes = resources.time_minutes or DEFAULT_TIME_MIN
        params: dict[str, Any] = {
            "job_name": self._job_name,
            "cpus_per_task": resources.cpus or 1,
            "time": minutes,
            # The warning signal (USR2) before the time limit; Slurm may send it up to 60 s early, so with short
            # limits submitit's 90 s default would arrive before Python installs its handler and kill the job.
            "signal_delay_s": min(90, 60 * minutes // 4),
            "array_parallelism": min(jobs, self._settings.max_parallel or jobs),
        }
        optional = {"gpus_per_node": resources.gpus or None, "partition": resources.partition,
                    "account": resources.account,
                    "mem": None if resources.mem_mib is None else f"{resources.mem_mib}MB"}
        params |= {key: value for key, value in optional.items() if value is not None}
        return params

    def submit(self, calls: Sequence[Callable[[], Any]], resources: Resources, label: str) -> list[Hashable]:
        executor = self._submitit.SlurmExecutor(folder=self._folder / "%j",
                                                max_num_timeout=self._settings.max_requeues)
        executor.update_parameters(**self._parameters(resources, len(calls)))
        try:
            with executor.batch():
                jobs = [executor.submit(_checkpointable(call)) for call in calls]
        except (subprocess.CalledProcessError, self._submitit.core.utils.FailedJobError) as exc:
            detail = getattr(exc, "stderr", None) or getattr(exc, "output", None) or str(exc)
            if isinstance(detail, bytes):
                detail = detail.decode(errors="replace")
            raise HsbenchError(f"sbatch refused the jobs of {label} ({resources.describe()}): "
                               f"{str(detail).strip().splitlines()[-1] if str(detail).strip() else exc}") from exc
        for job in jobs:
            self._jobs[job.job_id] = job
        log.info("%s: Slurm job(s) %s, logs in %s", label, ", ".join(j.job_id for j in jobs), self._folder)
        return [job.job_id for job in jobs]

    def _queued(self) -> set[str] | None:
        """Job ids of this command's jobs still in the queue (array tasks one per line); ``None`` if squeue failed."""
        done = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-n", self._job_name], capture_output=True,
                              text=True, check=False, env=os.environ)
        if done.returncode != 0:
            log.warning("squeue failed (%s); asking again", done.stderr.strip() or done.returncode)
            return None
        return {line.strip() for line in done.stdout.splitlines() if line.strip()}

    def poll(self, handles: Sequence[Hashable]) -> dict[Hashable, JobEnd]:
        queued = self._queued()
        if queued is None:
            return {}
        ends: dict[Hashable, JobEnd] = {}
        now = time.monotonic()
        for handle in handles:
            job = self._jobs[str(handle)]
            if job.paths.result_pickle.exists():
                ends[handle] = self._result(job)
            elif str(handle) in queued:
                self._missing_since.pop(str(handle), None)
            elif now - self._missing_since.setdefault(str(handle), now) >= _GRACE_S:
                ends[handle] = JobEnd(False, "left the queue without a result (cancelled, out of memory, node "
                                             f"failure or time limit); its log: {job.paths.stderr}")
        return ends

    def _result(self, job: Any) -> JobEnd:
        outcome, value = self._submitit.core.utils.pickle_load(job.paths.result_pickle)
        if outcome == "success":
            return JobEnd(True)
        lines = [line for line in str(value).strip().splitlines() if line.strip()]
        return JobEnd(False, f"{lines[-1] if lines else 'error'}; its log: {job.paths.stderr}")

    def cancel(self, handles: Sequence[Hashable]) -> None:
        if handles:
            subprocess.run(["scancel", *map(str, handles)], capture_output=True, check=False)
