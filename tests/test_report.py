"""Reports: the numbers in every table come from the store; bold, Average, Worst-case, paired comparisons, figures."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import register_tiny_provider

from hsbench.benchmark import BenchmarkConfig, run_benchmark
from hsbench.cli import benchmark, report
from hsbench.registry import DATASETS
from hsbench.report import load_all_results, load_suite_results, write_report
from hsbench.report.budget import label_budget
from hsbench.report.qualitative import split_prediction_panel
from hsbench.store import ResultsStore
from hsbench.suite import load_suite

SVM = {"model": "svm", "svm_max_pixels": 300}
SUITE = {
    "name": "tinyreport",
    "description": "two SVMs on two tiny datasets",
    "seeds": [0, 1, 2],
    "splits": ["fraction=0.5", "fraction=1.0"],
    "datasets": ["tiny_segmentation", "tiny_other"],
    "strategies": [
        {"strategy": "in_domain", "label": "svm C=10", "options": {**SVM, "svm_c_grid": [10.0]}},
        {"strategy": "in_domain", "label": "svm C=0.001", "options": {**SVM, "svm_c_grid": [0.001]}},
    ],
}
METRICS = ["oa", "macc", "mf1", "miou"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The tiny suite run once (24 SVM runs), its report written; yields (suite, store, report folder, files)."""
    root = tmp_path_factory.mktemp("report")
    register_tiny_provider("tiny_segmentation")
    register_tiny_provider("tiny_other", seed=7, num_classes=3)
    suite_path = root / "suite.yaml"
    suite_path.write_text(yaml.safe_dump(SUITE))
    suite = load_suite(suite_path)
    run_benchmark(suite, BenchmarkConfig(results_dir=root / "results", device="cpu", progress=False))
    store = ResultsStore(root / "results" / "hsbench.db")
    files = write_report(load_suite_results(store, suite), root / "reports" / suite.name)
    yield suite, store, files.out_dir, files
    for name in ("tiny_segmentation", "tiny_other"):
        DATASETS.module_dict.pop(name, None)


def _stored(store: ResultsStore, suite) -> pd.DataFrame:
    """Test metrics per run straight from the database, labelled through the suite's cells."""
    from hsbench.claims import CellClaims

    labels = {c.cell_id: c for c in suite.cells()}
    rows = []
    metrics = store.scalar_metrics()
    for cell in CellClaims(store.engine).cells(suite.name):
        spec = labels[cell["cell_id"]]
        rows.append({"run_id": cell["run_id"], "dataset": spec.dataset, "split": spec.split, "label": spec.label,
                     "seed": spec.seed,
                     **metrics.loc[cell["run_id"], METRICS].to_dict()})
    return pd.DataFrame(rows)


def _csv(out_dir) -> pd.DataFrame:
    return pd.read_csv(out_dir / "leaderboard.csv", dtype={"dataset_version": str})


def test_every_table_and_figure_is_written(bench) -> None:
    _, _, out_dir, files = bench
    for suffix in ("md", "html", "tex", "csv"):
        assert (out_dir / f"leaderboard.{suffix}").stat().st_size > 0
    names = {p.name for p in (out_dir / "figures").iterdir()}
    for stem in ("label_efficiency", "iou_tiny_segmentation_fraction-0.5", "confusion_tiny_other_fraction-1.0",
                 "qualitative_tiny_segmentation_fraction-1.0"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert len(files.figures) == len(names) / 2


def test_csv_means_and_stds_are_the_store_s(bench) -> None:
    suite, store, out_dir, _ = bench
    stored = _stored(store, suite)
    board = _csv(out_dir)
    per_dataset = board[board["dataset"].isin(["tiny_segmentation", "tiny_other"])]
    assert len(per_dataset) == 2 * 2 * 2
    for _, row in per_dataset.iterrows():
        runs = stored[(stored["dataset"] == row["dataset"]) & (stored["split"] == row["split"])
                      & (stored["label"] == row["label"])]
        assert row["n"] == len(runs) == 3
        for metric in METRICS:
            assert row[f"{metric}_mean"] == pytest.approx(runs[metric].mean(), abs=1e-12)
            assert row[f"{metric}_std"] == pytest.approx(runs[metric].std(ddof=1), abs=1e-12)
    assert set(board["dataset_version"].dropna().astype(str)) == {"1"}


def test_average_is_over_datasets_per_seed_and_worst_case_is_the_lowest_dataset(bench) -> None:
    suite, store, out_dir, _ = bench
    stored, board = _stored(store, suite), _csv(out_dir)
    for (split, label), runs in stored.groupby(["split", "label"]):
        per_seed = runs.groupby("seed")["miou"].mean()
        average = board[(board["split"] == split) & (board["label"] == label) & (board["dataset"] == "Average")]
        assert average["miou_mean"].item() == pytest.approx(per_seed.mean(), abs=1e-12)
        assert average["miou_std"].item() == pytest.approx(per_seed.std(ddof=1), abs=1e-12)
        worst = board[(board["split"] == split) & (board["label"] == label) & (board["dataset"] == "Worst-case")]
        means = runs.groupby("dataset")["miou"].mean()
        assert worst["miou_mean"].item() == pytest.approx(means.min(), abs=1e-12)
        assert means[worst["miou_worst_dataset"].item()] == means.min()


def test_markdown_bolds_exactly_the_best_of_each_block(bench) -> None:
    _, _, out_dir, _ = bench
    board, text = _csv(out_dir), (out_dir / "leaderboard.md").read_text(encoding="utf-8")
    assert "## Split `fraction=0.5`" in text and "Average" in text and "Worst-case" in text
    assert "| tiny_segmentation (v1) |" in text  # the dataset version is stated
    for split, section in re.findall(r"## Split `([^`]+)`\n\n(.*?)\n\n", text, flags=re.S):
        for line in section.splitlines()[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            dataset = cells[0].split(" (")[0]
            row = board[(board["split"] == split) & (board["dataset"] == dataset) & (board["label"] == cells[1])]
            for metric, cell in zip(METRICS, cells[3:]):
                assert cell.startswith("**") == bool(row[f"{metric}_best"].item()), (split, line)
                assert f"{100 * row[f'{metric}_mean'].item():.2f} ± " in cell
    best = board[board["miou_best"]]
    assert set(best.groupby(["split", "dataset"]).size()) == {1}  # one best per block (no ties here)


def test_latex_and_csv_formats(bench) -> None:
    _, _, out_dir, _ = bench
    tex = (out_dir / "leaderboard.tex").read_text(encoding="utf-8")
    assert r"\toprule" in tex and r"\textbf{" in tex and r"tiny\_segmentation" in tex and r"$\pm$" in tex
    assert tex.count(r"\begin{table}") == 2  # one per split


def test_paired_comparison_uses_per_seed_differences(bench) -> None:
    suite, store, out_dir, _ = bench
    stored = _stored(store, suite)
    val = store.scalar_metrics(part="val")["miou"]
    comparisons = json.loads((out_dir / "comparisons.json").read_text())
    assert len(comparisons) == 4  # every (split, dataset)
    for c in comparisons:
        runs = stored[(stored["split"] == c["split"]) & (stored["dataset"] == c["dataset"])]
        assert c["chosen_on"] == "val" and c["post_hoc"] is False  # every run has val metrics
        assert c["best"] == runs.assign(val=runs["run_id"].map(val)).groupby("label")["val"].mean().idxmax()
        per_seed = runs.pivot(index="seed", columns="label", values="miou")
        expected = (per_seed[c["best"]] - per_seed[c["runner_up"]]).to_numpy()
        np.testing.assert_allclose(c["differences"], expected)  # J_M from the summed per-image evidence
        assert c["ci_low"] <= c["mean_difference"] <= c["ci_high"]
        assert {"method", "p", "p_holm", "p_signflip", "units"} <= set(c) and c["units"] >= 1
        assert c["verdict"].startswith((f"{c['best']} > ", f"{c['runner_up']} > ", "not resolved"))
    assert "Best vs runner-up" in (out_dir / "leaderboard.md").read_text(encoding="utf-8")
    pairs = pd.read_csv(out_dir / "pairwise.csv")
    assert len(pairs) == 4 and (pairs["p_holm"] >= pairs["p"] - 1e-12).all()  # one pair per block here
    assert "p (Holm)" in (out_dir / "pairwise.md").read_text(encoding="utf-8")


def test_every_run_stores_hashed_per_image_test_evidence(bench) -> None:
    _, store, _, _ = bench
    for run_id in store.runs()["run_id"]:
        units = store.evidence(run_id, "test")
        assert units is not None and len(units.ids) == len(set(units.ids)) >= 1
        np.testing.assert_array_equal(units.total(), store.confusion(run_id, "test"))


def test_html_page_is_self_contained(bench) -> None:
    _, _, out_dir, files = bench
    page = (out_dir / "leaderboard.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(files.figures)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch
    assert page.count('<table class="leaderboard">') == 2 and "<strong>" in page


def test_report_without_a_suite_keeps_different_options_apart(bench) -> None:
    _, store, _, _ = bench
    data = load_all_results(store)
    assert len(data.runs) == 24
    assert len(data.labels) == 2 and all(label.startswith("in_domain/svm#") for label in data.labels)


def test_refits_of_a_sweep_show_under_their_study(bench, tmp_path) -> None:
    import shutil

    _, store, _, _ = bench
    copy = tmp_path / "copy.db"
    shutil.copy(store.url.removeprefix("sqlite:///"), copy)
    tagged = ResultsStore(copy)
    runs = tagged.runs()
    tagged.tag_study(runs[runs["dataset"] == "tiny_other"]["run_id"], "svm-c")
    labels = set(load_all_results(tagged).labels)
    assert any(label.startswith("in_domain/svm (tuned: svm-c)") for label in labels)


def test_missing_cells_are_counted(bench, tmp_path) -> None:
    suite, store, _, _ = bench
    bigger = load_suite(_write_suite(tmp_path, seeds=[0, 1, 2, 3]))
    data = load_suite_results(store, bigger)
    assert data.expected == 32 and data.missing == 8
    assert "24 of 32 cells" in write_report(data, tmp_path / "out").tables["md"].read_text(encoding="utf-8")


def _write_suite(tmp_path, **changes):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**SUITE, **changes}))
    return path


def test_cli_report_and_dry_run(bench, tmp_path, capsys) -> None:
    suite, store, _, _ = bench
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="command")
    benchmark.add_parser(subparsers)
    report.add_parser(subparsers)
    results = store.url.removeprefix("sqlite:///")
    suite_file = _write_suite(tmp_path)
    args = parser.parse_args(["report", "--suite", str(suite_file), "--db", results, "--reports", str(tmp_path)])
    assert report.run(args) == 0
    assert (tmp_path / "tinyreport" / "leaderboard.html").is_file()
    assert "Leaderboard: tinyreport" in capsys.readouterr().out
    args = parser.parse_args(["benchmark", "--suite", str(suite_file), "--db", results, "--dry-run"])
    assert benchmark.run(args) == 0
    assert "done 24, failed 0, running 0, not started 0" in capsys.readouterr().out
    assert benchmark.run(parser.parse_args(["benchmark", "--list"])) == 0
    assert "quick: 48 cells" in capsys.readouterr().out


def test_label_budget_per_split_kind() -> None:
    assert label_budget("fraction=0.05").amount == 0.05
    assert label_budget("kshot=5").family == "kshot"
    assert label_budget("kshot=10,disjoint").family == "kshot,disjoint"
    assert label_budget("official") is None and label_budget("nonsense") is None


def test_prediction_panels_are_cut_back_into_their_three_images(tiny_dataset, tmp_path) -> None:
    from PIL import Image

    from hsbench.visualize import colorize, pseudo_rgb, save_prediction_panel

    sample = tiny_dataset.load(tiny_dataset.sample_ids[0])
    prediction = np.roll(np.clip(sample.labels, 0, 3), 3, axis=1)
    save_prediction_panel(tmp_path / "p.png", sample, prediction, tiny_dataset.card)
    rgb, truth, predicted = split_prediction_panel(np.asarray(Image.open(tmp_path / "p.png").convert("RGB")))
    np.testing.assert_array_equal(rgb, pseudo_rgb(sample.cube, tiny_dataset.card.pseudo_rgb_bands))
    np.testing.assert_array_equal(truth, colorize(sample.labels, tiny_dataset.card))
    np.testing.assert_array_equal(predicted, colorize(prediction, tiny_dataset.card))


def test_sweep_plots_come_from_an_optuna_journal(bench, tmp_path) -> None:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    journal = tmp_path / "optuna.journal"
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.create_study(study_name="svm-c", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: -(t.suggest_float("log_c", -3, 3) - 1) ** 2 + 0.1 * t.suggest_float("g", 0, 1),
                   n_trials=8)
    suite, store, _, _ = bench
    data = load_suite_results(store, suite, sweep_storage=str(journal))
    files = write_report(data, tmp_path / "out")
    names = {f.png.name for f in files.figures if f.section == "Sweeps"}
    assert names == {"sweep_svm-c_optimization_history.png", "sweep_svm-c_param_importances.png"}
    assert all(f.svg.is_file() for f in files.figures if f.section == "Sweeps")


def test_saved_figures_are_byte_reproducible(tmp_path) -> None:
    """A regenerated report must diff clean: no timestamps, no random SVG ids."""
    from matplotlib.figure import Figure

    from hsbench.report.figures import save_figure

    def draw() -> Figure:
        fig = Figure(figsize=(3, 2))
        ax = fig.add_subplot()
        ax.fill_between([0, 1], [0, 1], [1, 2], alpha=0.2)  # clip paths and <defs> get hashed ids
        ax.plot([0, 1], [1, 0], marker="o")
        return fig

    first = save_figure(draw(), tmp_path / "a", "curve", section="s", title="t")
    second = save_figure(draw(), tmp_path / "b", "curve", section="s", title="t")
    assert first.svg.read_bytes() == second.svg.read_bytes()
    assert first.png.read_bytes() == second.png.read_bytes()
