"""Provenance: every run records the hardware and library builds it ran on, and reports show and compare them."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import scipy
import sklearn
import torch
from sqlalchemy import inspect, text, update

from hsbench.provenance import hardware_and_builds
from hsbench.report import load_all_results, write_report
from hsbench.report.provenance import NOT_COMPARABLE
from hsbench.runner import Runner, RunSpec
from hsbench.store import ResultsStore, runs_table

FAST = {"model": "svm", "svm_c_grid": [10.0], "svm_max_pixels": 300}


def test_hardware_and_builds_describes_this_machine() -> None:
    info = hardware_and_builds()
    assert json.loads(json.dumps(info)) == info  # storable as JSON as it is
    cpu = info["cpu"]
    assert isinstance(cpu["model"], str) and cpu["model"] not in ("", "unknown")
    assert 1 <= cpu["logical_cpus"] <= (os.cpu_count() or 1)
    if cpu["machine"] in ("x86_64", "AMD64"):
        assert "sse4_2" in cpu["flags"]  # every x86-64 CPU torch supports has it
    assert info["gpus"] == ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
                            if torch.cuda.is_available() else [])
    versions = info["versions"]
    assert (versions["torch"], versions["numpy"], versions["scipy"], versions["sklearn"]) == (
        torch.__version__, np.__version__, scipy.__version__, sklearn.__version__)
    assert versions["python"].count(".") == 2
    blas = info["blas"]
    assert blas["numpy"] != "unknown" and blas["torch"] != "unknown"
    assert info["threads"]["torch"] == torch.get_num_threads()
    assert info["deterministic"] == {"torch_algorithms": torch.are_deterministic_algorithms_enabled(),
                                     "cudnn_deterministic": torch.backends.cudnn.deterministic,
                                     "cudnn_benchmark": torch.backends.cudnn.benchmark}


def test_thread_count_is_read_live_while_the_machine_is_cached() -> None:
    """A benchmark worker sets its thread count after start-up; the record must show the count the run used."""
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    first = hardware_and_builds()
    try:
        torch.set_num_threads(target)
        second = hardware_and_builds()
    finally:
        torch.set_num_threads(before)
    assert second["threads"]["torch"] == target
    assert second["cpu"] is first["cpu"]  # read once per process


def _run_two_seeds(tmp_path) -> Runner:
    runner = Runner(tmp_path, progress=False, num_prediction_images=0)
    for seed in (0, 1):
        assert runner.run(RunSpec("tiny_segmentation", "in_domain", "fraction=0.5", seed, FAST)).status == "completed"
    return runner


def test_a_run_stores_its_provenance_in_the_database_and_its_folder(tmp_path, tiny_registered) -> None:
    runner = Runner(tmp_path, progress=False, num_prediction_images=0)
    outcome = runner.run(RunSpec("tiny_segmentation", "in_domain", "fraction=0.5", 0, FAST))
    stored = runner.store.runs().set_index("run_id").loc[outcome.run_id, "provenance"]
    in_folder = json.loads((tmp_path / "runs" / outcome.run_id / "provenance.json").read_text())
    assert stored == in_folder
    assert stored["cpu"]["model"] == hardware_and_builds()["cpu"]["model"]
    assert stored["versions"]["torch"] == torch.__version__


def test_report_lists_builds_and_warns_when_a_table_mixes_cpus(tmp_path, tiny_registered) -> None:
    runner = _run_two_seeds(tmp_path)
    single = write_report(load_all_results(runner.store), tmp_path / "one")
    markdown = (single.out_dir / "leaderboard.md").read_text(encoding="utf-8")
    cpu = hardware_and_builds()["cpu"]["model"]
    assert "## Hardware and builds" in markdown and f"| {cpu} |" in markdown and "| 2 |" in markdown
    assert NOT_COMPARABLE not in markdown

    other = copy.deepcopy(hardware_and_builds())
    other["cpu"]["model"] = "Fake CPU 9000"
    run_id = runner.store.runs()["run_id"].iloc[0]
    with runner.store.engine.begin() as conn:
        conn.execute(update(runs_table).where(runs_table.c.run_id == run_id).values(provenance=other))
    mixed = write_report(load_all_results(runner.store), tmp_path / "two")
    markdown = (mixed.out_dir / "leaderboard.md").read_text(encoding="utf-8")
    html = (mixed.out_dir / "leaderboard.html").read_text(encoding="utf-8")
    assert f"| {cpu} |" in markdown and "| Fake CPU 9000 |" in markdown
    assert f"split fraction=0.5 mix runs from several hardware / build combinations: {NOT_COMPARABLE}" in markdown
    assert "Hardware and builds" in html and "Fake CPU 9000" in html and NOT_COMPARABLE in html


def test_runs_stored_before_provenance_are_reported_as_not_recorded(tmp_path, tiny_registered) -> None:
    runner = _run_two_seeds(tmp_path)
    with runner.store.engine.begin() as conn:
        conn.execute(update(runs_table).values(provenance=None))
    markdown = (write_report(load_all_results(runner.store), tmp_path / "r").out_dir / "leaderboard.md").read_text(
        encoding="utf-8")
    assert "| not recorded | not recorded |" in markdown and NOT_COMPARABLE not in markdown



def test_a_database_from_before_provenance_gains_the_column(tmp_path) -> None:
    path = tmp_path / "old.db"
    with ResultsStore(path).engine.begin() as conn:
        conn.execute(text("ALTER TABLE runs DROP COLUMN provenance"))  # as an older hsbench created it
    reopened = ResultsStore(path)
    assert "provenance" in {c["name"] for c in inspect(reopened.engine).get_columns("runs")}
