"""The report's timing table: wall time per cell (sum of the stored phases) and phase means, "-" where none."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import register_tiny_provider

from hsbench.benchmark import BenchmarkConfig, run_benchmark
from hsbench.registry import DATASETS
from hsbench.report import load_all_results, load_suite_results, write_report
from hsbench.report.provenance import BUILDS_TITLE
from hsbench.report.timings import TIMINGS_TITLE, timing_rows, timing_table
from hsbench.report.writer import MANIFEST
from hsbench.store import ResultsStore
from hsbench.suite import load_suite

SPLIT = "fraction=0.5"
PRETRAINED = {"load": 1.0, "split": 0.0, "pretrain": 30.0, "fit": 9.0, "predict_val": 0.5, "predict_test": 0.5}
REUSED = {"load": 1.0, "split": 0.0, "fit": 10.0, "predict_val": 0.5, "predict_test": 0.5}
RUNS: dict[tuple[str, int], dict[str, float] | None] = {
    # A: seed 0 pretrains (wall 41), seeds 1 and 2 reuse the zoo (wall 12 each), seed 3 is an older row
    ("A", 0): PRETRAINED, ("A", 1): REUSED, ("A", 2): REUSED, ("A", 3): None,
    # B: no pretrain phase; walls 8.5 and 10.5
    ("B", 0): {"load": 2.0, "split": 0.5, "fit": 4.0, "predict_val": 1.0, "predict_test": 1.0},
    ("B", 1): {"load": 2.0, "split": 0.5, "fit": 6.0, "predict_val": 1.0, "predict_test": 1.0},
    # C: stored before timings existed
    ("C", 0): None,
}


def _store(path) -> ResultsStore:
    """One completed run per entry of RUNS on dataset ``d``, with metrics and a test matrix."""
    store = ResultsStore(path)
    for (label, seed), timings in RUNS.items():
        run_id = f"{label}-{seed}"
        store.begin(run_id, {"dataset": "d", "dataset_fingerprint": "f" * 16, "dataset_version": "1",
                             "split": SPLIT, "split_hash": "h", "strategy": "s", "strategy_label": label,
                             "seed": seed, "config": {"options": {}}})
        quality = {"A": 0.8, "B": 0.7, "C": 0.6}[label] + 0.01 * seed
        store.complete(run_id, metrics={"test": {"oa": quality, "macc": quality, "mf1": quality, "miou": quality}},
                       per_class={}, confusions={"test": np.array([[8, 2], [1, 9]])}, timings=timings, facts={})
    return store


@pytest.fixture
def report(tmp_path):
    data = load_all_results(_store(tmp_path / "hsbench.db"))
    return data, write_report(data, tmp_path / "report")


def test_wall_time_is_the_sum_of_phases_with_mean_and_max_over_seeds(report) -> None:
    data, _ = report
    table = timing_table(data).set_index("label")
    assert list(table.index) == ["A", "B", "C"]
    a, b = table.loc["A"], table.loc["B"]
    assert (a["n"], a["timed"]) == (4, 3)  # the older row counts in n, in no time
    assert a["wall_mean"] == pytest.approx((41 + 12 + 12) / 3) and a["wall_max"] == pytest.approx(41.0)
    assert a["pretrain_mean"] == pytest.approx(30.0)  # over the runs that have the phase
    assert a["fit_mean"] == pytest.approx((9 + 10 + 10) / 3) and a["load_mean"] == pytest.approx(1.0)
    assert b["wall_mean"] == pytest.approx(9.5) and b["wall_max"] == pytest.approx(10.5)
    assert np.isnan(b["pretrain_mean"]) and b["split_mean"] == pytest.approx(0.5)
    assert table.loc["C", "timed"] == 0 and np.isnan(table.loc["C", "wall_mean"])


def test_markdown_section_shows_seconds_and_dashes_before_datasets(report) -> None:
    _, files = report
    text = files.tables["md"].read_text(encoding="utf-8")
    heading = f"## {TIMINGS_TITLE}"
    assert heading == "## Timings (seconds per cell, this machine)"
    assert text.index("## Split `") < text.index(heading) < text.index("## Datasets")
    section = text[text.index(heading):text.index("## Datasets")]
    assert "sum of its stored phase timings" in section and "zoo" in section and '"-"' in section
    assert ("| dataset | split | strategy | n | cell mean | cell max | load | splitting | pretrain | fit | "
            "predict val | predict test |") in section
    assert f"| d | {SPLIT} | A | 3/4 | 21.67 | 41.00 | 1.00 | 0.00 | 30.00 | 9.67 | 0.50 | 0.50 |" in section
    assert f"| d | {SPLIT} | B | 2/2 | 9.50 | 10.50 | 2.00 | 0.50 | - | 5.00 | 1.00 | 1.00 |" in section
    assert f"| d | {SPLIT} | C | 0/1 | - | - | - | - | - | - | - | - |" in section


def test_html_page_has_the_same_table(report) -> None:
    _, files = report
    page = files.tables["html"].read_text(encoding="utf-8")
    assert f"<h2>{TIMINGS_TITLE}</h2>" in page and page.index(TIMINGS_TITLE) < page.index(BUILDS_TITLE)
    assert ('<tr><td class="text">d</td><td class="text">fraction=0.5</td><td class="text">B</td><td>2/2</td>'
            "<td>9.50</td><td>10.50</td>") in page


def test_timings_csv_is_written_beside_the_leaderboard_and_in_the_manifest(report) -> None:
    _, files = report
    assert files.timings == files.out_dir / "timings.csv"
    assert (files.out_dir / "leaderboard.csv").is_file()
    csv = pd.read_csv(files.timings).set_index("label")
    assert csv.loc["A", "wall_max"] == pytest.approx(41.0) and csv.loc["B", "fit_mean"] == pytest.approx(5.0)
    assert pd.isna(csv.loc["C", "wall_mean"])
    assert "timings.csv" in json.loads((files.out_dir / MANIFEST).read_text())["files"]


def test_a_frame_without_a_timings_column_shows_dashes(report) -> None:
    """Report data built without ``timings`` (another loader, a hand-made frame) still renders."""
    data, _ = report
    data.runs = data.runs.drop(columns="timings")
    rows = timing_rows(timing_table(data))
    assert rows[0] == ["d", SPLIT, "A", "0/4", "-", "-"]


def test_a_suite_report_reads_the_runner_s_timings(tmp_path) -> None:
    """Through a suite's cells (``load_suite_results``): the phases the runner measured, summed per cell."""
    register_tiny_provider("tiny_timed")
    try:
        suite_path = tmp_path / "suite.yaml"
        suite_path.write_text(yaml.safe_dump({
            "name": "timed", "seeds": [0], "splits": [SPLIT], "datasets": ["tiny_timed"],
            "strategies": [{"strategy": "in_domain", "label": "svm",
                            "options": {"model": "svm", "svm_max_pixels": 300, "svm_c_grid": [1.0]}}]}))
        suite = load_suite(suite_path)
        run_benchmark(suite, BenchmarkConfig(results_dir=tmp_path / "results", device="cpu", progress=False))
        store = ResultsStore(tmp_path / "results" / "hsbench.db")
        stored = store.runs()["timings"].iloc[0]
        row = timing_table(load_suite_results(store, suite)).iloc[0]
    finally:
        DATASETS.module_dict.pop("tiny_timed", None)
    assert {"load", "split", "fit", "predict_val", "predict_test"} <= set(stored)
    assert row["timed"] == 1 and row["wall_max"] == pytest.approx(sum(stored.values()))
    assert row["fit_mean"] == pytest.approx(stored["fit"])
