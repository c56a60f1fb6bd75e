"""The placement loop and the executor settings, with an in-process executor standing in for an engine.

The engines themselves are tested for real in tests/test_executor_engines.py; here the loop's own rules: how
often a dying job is resubmitted, what Ctrl-C cancels, and the one-line errors of bad settings.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import pytest

from hsbench.cli import main
from hsbench.errors import ConfigError
from hsbench.executors import Executor, ExecutorSettings, JobEnd, JobGroup, Resources, open_executor, run_jobs


class InProcessExecutor(Executor):
    """Runs each submitted call at its first poll; a call that raises is a job that died."""

    name = "in_process"
    install_hint = ""

    def __init__(self, interrupt_at_poll: int | None = None) -> None:
        self.calls: dict[int, Callable[[], Any]] = {}
        self.submissions: list[tuple[str, Resources]] = []
        self.cancelled: list[Hashable] = []
        self.polls = 0
        self.interrupt_at_poll = interrupt_at_poll

    def submit(self, calls: Sequence[Callable[[], Any]], resources: Resources, label: str) -> list[Hashable]:
        handles = []
        for call in calls:
            handle = len(self.submissions)
            self.submissions.append((label, resources))
            self.calls[handle] = call
            handles.append(handle)
        return handles

    def poll(self, handles: Sequence[Hashable]) -> dict[Hashable, JobEnd]:
        self.polls += 1
        if self.polls == self.interrupt_at_poll:
            raise KeyboardInterrupt
        ends = {}
        for handle in handles:
            try:
                self.calls[handle]()
                ends[handle] = JobEnd(True)
            except RuntimeError as exc:
                ends[handle] = JobEnd(False, str(exc))
        return ends

    def cancel(self, handles: Sequence[Hashable]) -> None:
        self.cancelled.extend(handles)


def _dies(times: int) -> Callable[[], None]:
    """A call that dies ``times`` times, then succeeds."""
    left = [times]

    def call() -> None:
        if left[0] > 0:
            left[0] -= 1
            raise RuntimeError("killed")

    return call


def test_a_job_that_dies_is_submitted_again_and_the_others_once() -> None:
    executor = InProcessExecutor()
    group = JobGroup((_dies(1), _dies(0), _dies(0)), Resources(cpus=2), "suite s")
    assert run_jobs(executor, [group], max_requeues=2, poll_s=0) == []
    assert len(executor.submissions) == 4  # three jobs and one requeue
    assert all(resources == Resources(cpus=2) for _, resources in executor.submissions)


def test_a_job_that_keeps_dying_is_given_up_after_max_requeues() -> None:
    executor = InProcessExecutor()
    given_up = run_jobs(executor, [JobGroup((_dies(10), _dies(0)), Resources(), "suite s")], max_requeues=2,
                        poll_s=0)
    assert len(executor.submissions) == 2 + 2  # the dying job: once plus two requeues
    assert len(given_up) == 1 and "ended abnormally 3 time(s), last: killed" in given_up[0]


def test_groups_keep_their_own_resources() -> None:
    executor = InProcessExecutor()
    groups = [JobGroup((_dies(0),), Resources(gpus=1), "gpu cells"), JobGroup((_dies(1),), Resources(cpus=4), "cpu")]
    run_jobs(executor, groups, max_requeues=1, poll_s=0)
    assert executor.submissions == [("gpu cells", Resources(gpus=1)), ("cpu", Resources(cpus=4)),
                                    ("cpu", Resources(cpus=4))]


def test_ctrl_c_cancels_the_jobs_still_queued() -> None:
    executor = InProcessExecutor(interrupt_at_poll=1)
    with pytest.raises(KeyboardInterrupt):
        run_jobs(executor, [JobGroup((_dies(0), _dies(0)), Resources(), "suite s")], max_requeues=2, poll_s=0)
    assert sorted(executor.cancelled) == [0, 1]


def test_executor_settings_reject_bad_values_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="unknown executor 'slrum'.*did you mean 'slurm'"):
        ExecutorSettings("slrum")
    with pytest.raises(ConfigError, match="--ray-address needs --executor ray"):
        ExecutorSettings("slurm", ray_address="auto")
    with pytest.raises(ConfigError, match="--max-requeues must be >= 0"):
        ExecutorSettings("ray", max_requeues=-1)
    assert not ExecutorSettings().remote and ExecutorSettings("ray").remote


@pytest.mark.parametrize("engine, module", [("slurm", "submitit"), ("ray", "ray")])
def test_missing_engine_package_says_how_to_install(engine, module, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the package were absent
    with pytest.raises(ConfigError, match=rf"--executor {engine} needs .*pip install 'hsbench\[{engine}\]'"):
        open_executor(ExecutorSettings(engine), tmp_path)


def test_slurm_without_its_commands_names_them(tmp_path, monkeypatch) -> None:
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, squeue or scancel
    with pytest.raises(ConfigError, match="sbatch, squeue, scancel not found on PATH"):
        open_executor(ExecutorSettings("slurm"), tmp_path / "jobs")


def test_resource_flags_without_a_cluster_executor_are_one_line(tmp_path, capsys) -> None:
    code = main(["benchmark", "--suite", "quick", "--results", str(tmp_path), "--gpus", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--gpus only apply to --executor slurm or ray" in err[0]
    assert not (tmp_path / "hsbench.db").exists()


def test_bad_resource_flags_are_one_line(tmp_path, capsys) -> None:
    code = main(["benchmark", "--suite", "quick", "--results", str(tmp_path), "--executor", "slurm",
                 "--time", "2h"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "time must be" in err[0] and "'2h'" in err[0]


def test_a_sweep_on_a_cluster_refuses_storage_that_cannot_be_shared(tmp_path) -> None:
    from hsbench.executors.trials import place_sweep_workers
    from hsbench.sweep import SweepConfig

    config = SweepConfig(study="s", storage=f"sqlite:///{Path(tmp_path) / 'optuna.db'}", results_dir=tmp_path)
    with pytest.raises(ConfigError, match="cannot be shared: use a journal file on shared storage or a PostgreSQL"):
        place_sweep_workers(config, 2, ExecutorSettings("ray"))


def test_dry_run_shows_each_dataset_s_resources(tmp_path, capsys) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nseeds: [0]\nsplits: [fraction=0.5]\nresources: {cpus: 2, time: '30'}\n"
                     "datasets: [{name: synthetic_drive, resources: {gpus: 1}}, synthetic_hyko]\n"
                     "strategies: [{strategy: in_domain, label: svm, options: {model: svm}}]\n")
    assert main(["benchmark", "--suite", str(suite), "--results", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "synthetic_drive (splits: fraction=0.5; resources per cell: cpus=2 gpus=1 time=30)" in out
    assert "synthetic_hyko (splits: fraction=0.5; resources per cell: cpus=2 time=30)" in out


def test_a_job_that_does_not_see_the_submitter_s_folder_stops_with_one_line(tmp_path, monkeypatch) -> None:
    from hsbench.errors import HsbenchError
    from hsbench.executors.base import SubmitterView

    monkeypatch.setenv("HSBENCH_HOME", str(tmp_path / "zoo_home"))
    view = SubmitterView.write(tmp_path / "jobs")
    monkeypatch.setenv("HSBENCH_HOME", "/elsewhere")
    view.enter()  # a node that shares the folder: takes over the submitter's environment
    import os

    assert os.environ["HSBENCH_HOME"] == str(tmp_path / "zoo_home")
    view.probe.write_text("another token")  # what a node with its own, unshared folder of that name would see
    with pytest.raises(HsbenchError, match=r"does not see .*jobs as the submitting machine does.*shared"):
        view.enter()


def test_jobs_get_absolute_paths_whatever_their_working_directory(tmp_path, monkeypatch) -> None:
    from hsbench.benchmark import BenchmarkConfig
    from hsbench.executors.cells import with_absolute_paths

    monkeypatch.chdir(tmp_path)
    config = with_absolute_paths(BenchmarkConfig(results_dir=Path("results"), db="runs.db", data_root=Path("data")))
    assert config.results_dir == tmp_path / "results" and config.db == str(tmp_path / "runs.db")
    assert config.data_root == tmp_path / "data" and config.weights_dir is None
    url = "postgresql://user@host/db"
    assert with_absolute_paths(BenchmarkConfig(db=url)).db == url


def test_slurm_warning_signal_comes_after_python_started_even_for_short_limits(tmp_path, monkeypatch) -> None:
    pytest.importorskip("submitit")
    from hsbench.executors import slurm

    monkeypatch.setattr(slurm.shutil, "which", lambda command: f"/usr/bin/{command}")
    executor = slurm.SlurmExecutor(ExecutorSettings("slurm"), tmp_path)
    # Slurm may send the signal up to 60 s before `time - signal_delay_s`: it must not fall at the job's start
    for minutes, delay in ((2, 30), (5, 75), (60, 90), (None, 90)):
        params = executor._parameters(Resources(time=None if minutes is None else str(minutes)), 1)
        assert params["signal_delay_s"] == delay and params["time"] * 60 - delay - 60 >= 30
