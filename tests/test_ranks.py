"""Mean ranks across datasets: Friedman, Iman-Davenport, the Nemenyi critical difference, cliques, the diagram."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hsbench.report import writer
from hsbench.report.cd_diagram import critical_difference_figures, draw_cd_diagram
from hsbench.report.figures import save_figure
from hsbench.report.ranks import cliques, critical_difference, friedman, nemenyi_q, rank_tests
from hsbench.report.results import _RUN_COLUMNS, REPORT_METRICS, ReportData

# Demšar (2006), Table 5: q_alpha of the two-tailed Nemenyi test, k = 2..10.
DEMSAR_Q = {
    0.05: [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164],
    0.10: [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920],
}

# A tiny table: mean test J_M per dataset (rows) and strategy (columns). Ranks by hand (1 = best):
#   d1: A 1, B 2,   C 3        d2: A 1, B 3,   C 2
#   d3: A 2, B 1,   C 3        d4: A 1, B 2.5, C 2.5 (tie)
# Mean ranks: A 5/4, B 8.5/4, C 10.5/4. chi2 = 12*4/(3*4) * (sum R^2 - 3*16/4) = 4 * 0.96875 = 3.875;
# F = (4-1) * 3.875 / (4*2 - 3.875) = 2.8182 on (2, 6) df; chi2 p = exp(-3.875/2).
TINY = {"d1": (0.9, 0.8, 0.7), "d2": (0.9, 0.7, 0.8), "d3": (0.8, 0.9, 0.7), "d4": (0.9, 0.8, 0.8)}


class _DiagonalStore:
    """Every run's test confusion matrix is the same perfect 3-class one and no per-image evidence is stored: the
    comparisons the writer makes beside the ranks have something to read, and the ranks come from the runs frame."""

    url = "sqlite:///unused"

    def confusion(self, run_id: str, part: str = "test") -> np.ndarray:
        return 10 * np.eye(3, dtype=np.int64)

    def evidence(self, run_id: str, part: str = "test") -> None:
        return None

    def evaluations(self, run_ids=None) -> pd.DataFrame:
        return pd.DataFrame()  # no cross-dataset evaluations: the report has no such section


def _data(table: dict[str, tuple[float, ...]], labels=("A", "B", "C"), split="fraction=0.5", seeds=(0, 1),
          store: _DiagonalStore | None = None) -> ReportData:
    """A ReportData whose per-dataset seed means are ``table`` (two seeds at mean ± 0.01); NaN skips a cell.

    The rank analysis reads the runs frame only, so the store may be absent (the writer needs one).
    """
    rows = []
    for dataset, scores in table.items():
        for label, score in zip(labels, scores):
            if np.isnan(score):
                continue
            for seed, offset in zip(seeds, (-0.01, 0.01)):
                rows.append({"run_id": f"{dataset}-{label}-{seed}", "dataset": dataset, "dataset_version": "1",
                             "dataset_fingerprint": "f", "split": split, "label": label, "seed": seed,
                             "run_dir": "", **{m: score + offset for m, _ in REPORT_METRICS},
                             "train_pixels": 100.0, "val_pixels": 50.0, "val_protocol": "full",
                             "excluded_classes": ()})
    runs = pd.DataFrame(rows)
    runs = runs.reindex(columns=[*_RUN_COLUMNS, *(c for c in runs if c not in _RUN_COLUMNS)])  # absent: NaN
    return ReportData(name="ranks", description="", runs=runs, labels=list(labels),
                      datasets=list(table), splits=[split], store=store)


@pytest.mark.parametrize("alpha", sorted(DEMSAR_Q))
def test_nemenyi_q_matches_demsar_table_5(alpha) -> None:
    for k, expected in zip(range(2, 11), DEMSAR_Q[alpha]):
        assert nemenyi_q(k, alpha) == pytest.approx(expected, abs=1.5e-3)
    assert nemenyi_q(4, 0.05) == pytest.approx(2.569, abs=5e-4)


def test_friedman_reproduces_demsar_worked_example() -> None:
    """Section 3.2.4: four C4.5 variants on 14 data sets, mean ranks 3.143, 2.000, 2.893, 1.964."""
    mean_ranks = np.array([44, 28, 40.5, 27.5]) / 14
    result = friedman(mean_ranks, 14)
    assert result.chi2 == pytest.approx(9.28, abs=0.01)
    assert result.f == pytest.approx(3.69, abs=0.01)
    assert result.f_p < 0.05  # F(3, 39) critical value 2.85: rejected
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=0.01)


def test_ranks_and_friedman_of_a_hand_computed_table() -> None:
    [test] = rank_tests(_data(TINY))
    assert test.ranks.loc["d4"].tolist() == [1.0, 2.5, 2.5]
    assert test.mean_ranks == pytest.approx({"A": 1.25, "B": 2.125, "C": 2.625})
    result = test.friedman
    assert result.chi2 == pytest.approx(3.875)
    assert result.chi2_p == pytest.approx(np.exp(-3.875 / 2))
    assert result.f == pytest.approx(3 * 3.875 / (8 - 3.875))
    assert test.cd == pytest.approx(nemenyi_q(3) * np.sqrt(3 * 4 / (6 * 4)))
    assert test.cliques == [["A", "B", "C"]]  # largest gap 1.375 < CD 1.66


def test_perfect_agreement_gives_infinite_f_and_p_zero() -> None:
    result = friedman(np.array([1.0, 2.0, 3.0]), 5)
    assert result.chi2 == pytest.approx(10.0) and result.f == np.inf and result.f_p == 0.0


def test_cliques_are_maximal_groups_closer_than_cd() -> None:
    ranks = {"a": 1.0, "b": 1.5, "c": 2.8, "d": 3.0, "e": 4.2}
    assert cliques(ranks, 1.5) == [["a", "b"], ["b", "c"], ["c", "d", "e"]]  # b-d = 1.5 is not < CD
    assert cliques({"a": 1.0, "b": 3.0, "c": 5.0}, 1.0) == []


def test_too_few_datasets_or_strategies_gives_a_reason_and_no_figure(tmp_path) -> None:
    [one_dataset] = rank_tests(_data({"d1": (0.9, 0.8, 0.7)}))
    assert one_dataset.reason is not None and "1 dataset(s)" in one_dataset.reason
    [one_complete] = rank_tests(_data({"d1": (0.9, np.nan), "d2": (0.8, 0.7)}, labels=("A", "B")))
    assert one_complete.excluded == ("B",) and "1 strategy(ies)" in one_complete.reason
    assert critical_difference_figures(_data({"d1": (0.9, 0.8, 0.7)}), tmp_path) == []


def test_a_strategy_missing_a_dataset_is_left_out_not_ranked() -> None:
    table = {d: (*scores, 0.99 if d != "d2" else np.nan) for d, scores in TINY.items()}
    [test] = rank_tests(_data(table, labels=("A", "B", "C", "D")))
    assert test.excluded == ("D",) and list(test.ranks.columns) == ["A", "B", "C"]


def test_diagram_draws_cd_bar_cliques_and_labels() -> None:
    [test] = rank_tests(_data(TINY))
    ax = draw_cd_diagram(test, {}).axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert {"CD = 1.66", "A (1.25)", "B (2.12)", "C (2.62)"} <= texts
    bars = [line for line in ax.lines if line.get_linewidth() == 3.5]
    assert [tuple(np.round(bar.get_xdata(), 3)) for bar in bars] == [(1.22, 2.655)]  # one clique: A..C


def test_diagram_is_written_and_byte_identical_across_writes(tmp_path) -> None:
    [test] = rank_tests(_data(TINY))
    colours = {"A": "#1f77b4", "B": "#ff7f0e", "C": "#2ca02c"}
    first, second = (save_figure(draw_cd_diagram(test, colours), tmp_path / run, "critical_difference_x",
                                 section="s", title="t") for run in ("one", "two"))
    assert first.png.stat().st_size > 0
    assert first.png.read_bytes() == second.png.read_bytes()
    assert first.svg.read_bytes() == second.svg.read_bytes()


def test_report_writes_ranks_and_removes_a_stale_diagram(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(writer, "FIGURES", {"critical_difference": critical_difference_figures})
    store = _DiagonalStore()
    out = tmp_path / "report"
    files = writer.write_report(_data(TINY, store=store), out)
    diagram = "figures/critical_difference_fraction-0.5.png"
    assert (out / diagram).is_file()
    assert diagram in json.loads((out / writer.MANIFEST).read_text())["files"]
    ranks = pd.read_csv(out / "ranks.csv")
    assert ranks["label"].tolist() == ["A", "B", "C"]
    assert ranks["mean_rank"].tolist() == pytest.approx([1.25, 2.125, 2.625])
    assert ranks["friedman_chi2"].iloc[0] == pytest.approx(3.875)
    markdown = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "## Mean ranks across datasets, split `fraction=0.5`" in markdown and "| A | 1.25 |" in markdown
    page = files.tables["html"].read_text(encoding="utf-8")
    assert "critical_difference_fraction-0.5.svg" in page and "Nemenyi critical difference CD = " in page

    writer.write_report(_data({"d1": TINY["d1"]}, store=store), out)  # one dataset left: no diagram, a reason instead
    assert not (out / diagram).exists()
    assert "no rank analysis: 1 dataset(s)" in (out / "leaderboard.md").read_text(encoding="utf-8").lower()
    assert len(pd.read_csv(out / "ranks.csv")) == 0
