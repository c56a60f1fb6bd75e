"""Verdicts that agree with the stored numbers: class masks in comparisons, runs without evidence, the dagger's
legend, the pairwise tables in HTML, and split help that names the split options."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hsbench.cli import build_parser
from hsbench.evidence import UnitConfusions
from hsbench.metrics import compute_metrics
from hsbench.report.html import render_html
from hsbench.report.labels_used import aggregate_labels, labels_cells
from hsbench.report.leaderboard import leaderboard
from hsbench.report.pairwise import compare_best_two, left_out_lines, pairwise, pairwise_markdown
from hsbench.report.results import ReportData
from hsbench.report.stats import class_mask, miou_batched
from hsbench.report.tables import TRANSDUCTIVE_NOTE, TableInputs, render_latex, render_markdown
from hsbench.splits import parse_split_spec
from hsbench.strategy import TRANSDUCTIVE_MARK
from hsbench.suite import _parse_variant

K, UNITS, SEEDS = 3, 12, 3
EXCLUDED = (2,)
"""Class 2 is excluded by every seed's split: no target pixel, yet the models predict it now and then."""


class _Store:
    """Per-unit evidence and total test matrices by run id, as the results database returns them."""

    url = "memory"

    def __init__(self, evidence: dict[str, UnitConfusions | None], totals: dict[str, np.ndarray | None]) -> None:
        self._evidence, self._totals = evidence, totals

    def evidence(self, run_id: str, part: str = "test") -> UnitConfusions | None:
        return self._evidence.get(run_id)

    def confusion(self, run_id: str, part: str = "test") -> np.ndarray | None:
        return self._totals.get(run_id)

    def evaluations(self, run_ids=None) -> pd.DataFrame:
        return pd.DataFrame()  # no cross-dataset evaluations


def _units(rng: np.random.Generator, quality: float) -> UnitConfusions:
    """12 images of classes 0 and 1; wrong pixels go to the other class or to the excluded class 2."""
    matrices = np.zeros((UNITS, K, K), dtype=np.int64)
    for c in (0, 1):
        right = rng.binomial(500, quality, UNITS)
        to_excluded = rng.binomial(500 - right, 0.5)
        matrices[:, c, c], matrices[:, c, 2], matrices[:, c, 1 - c] = right, to_excluded, 500 - right - to_excluded
    return UnitConfusions(tuple(f"img{u}" for u in range(UNITS)), matrices)


def _data(quality: dict[str, float], *, datasets: tuple[str, ...] = ("d",), no_evidence: tuple[str, ...] = (),
          no_matrix: tuple[str, ...] = ()) -> ReportData:
    """A report of ``quality``'s labels x SEEDS on ``datasets``, stored J_M computed as the runner does (with the
    split's class mask); ``no_evidence`` runs keep only their total, ``no_matrix`` runs have neither."""
    rng = np.random.default_rng(3)
    rows, evidence, totals = [], {}, {}
    mask = class_mask(K, EXCLUDED)
    for dataset in datasets:
        for label, q in quality.items():
            for seed in range(SEEDS):
                run_id = f"{dataset}/{label}/{seed}"
                units = _units(rng, q + 0.01 * seed)
                evidence[run_id] = None if run_id in no_evidence + no_matrix else units
                totals[run_id] = None if run_id in no_matrix else units.total()
                metrics = compute_metrics(units.total(), mask)
                rows.append({"run_id": run_id, "dataset": dataset, "dataset_version": "1",
                             "dataset_fingerprint": "f" * 16, "split": "kshot=5", "label": label, "seed": seed,
                             "run_dir": "", "provenance": None, "val_miou": np.nan, "train_pixels": 15.0,
                             "val_pixels": 30.0, "val_protocol": "full", "excluded_classes": EXCLUDED,
                             **{m: metrics[m] for m in ("oa", "macc", "mf1", "miou")}})
    return ReportData("t", "", pd.DataFrame(rows), list(quality), list(datasets), ["kshot=5"],
                      _Store(evidence, totals))


def _stored(data: ReportData, label: str) -> np.ndarray:
    return data.runs[data.runs["label"] == label].sort_values("seed")["miou"].to_numpy()


# --------------------------------------------------------------------------------------------------------------
# 1. Comparisons skip the classes the split excluded, as the stored J_M does
# --------------------------------------------------------------------------------------------------------------


def test_comparison_j_m_skips_excluded_classes_and_equals_the_stored_j_m() -> None:
    data = _data({"A": 0.8, "B": 0.7})
    for r in data.runs.itertuples():  # per run: J_M recomputed from its evidence is the stored one
        total = data.evidence(r.run_id).total()
        assert miou_batched(total, class_mask(K, r.excluded_classes)) == pytest.approx(r.miou, abs=1e-12)
    row = pairwise(data)[0]
    np.testing.assert_allclose(row.estimate.differences, _stored(data, "A") - _stored(data, "B"), atol=1e-12)
    best = compare_best_two(data)[0]
    assert best.mean_difference == pytest.approx(float(np.mean(_stored(data, "A") - _stored(data, "B"))), abs=1e-12)


# --------------------------------------------------------------------------------------------------------------
# 2. Runs without stored evidence, and a missing val protocol
# --------------------------------------------------------------------------------------------------------------


def test_a_run_without_evidence_is_compared_on_its_total_test_matrix() -> None:
    data = _data({"A": 0.8, "B": 0.7}, no_evidence=("d/B/0",))
    row = pairwise(data)[0]
    np.testing.assert_allclose(row.estimate.differences, _stored(data, "A") - _stored(data, "B"), atol=1e-12)
    assert row.left_out == ()


def test_runs_without_any_test_matrix_are_left_out_with_a_reason() -> None:
    data = _data({"A": 0.8, "B": 0.7}, no_matrix=("d/A/0", "d/B/0"))
    row = pairwise(data)[0]
    assert row.estimate.seeds == (1, 2) and row.verdict.startswith("not resolved: 2 paired seed(s)")
    assert set(row.left_out) == {"d/A/0", "d/B/0"}
    assert left_out_lines([row]) == ["kshot=5 on d: left out runs d/A/0, d/B/0: no stored test confusion matrix"]
    assert "left out runs d/A/0, d/B/0" in pairwise_markdown("t", [row])


def test_a_missing_val_protocol_reads_as_unknown() -> None:
    group = pd.DataFrame({"train_pixels": [10.0, 12.0], "val_pixels": [20.0, 22.0],
                          "val_protocol": [np.nan, "full"]})
    assert aggregate_labels(group)["val_protocol"] == "?/full"
    row = pd.Series({"train_pixels": 10.0, "val_pixels": 20.0, "val_protocol": np.nan})
    assert labels_cells(row) == ["10", "20 (?)"]


# --------------------------------------------------------------------------------------------------------------
# 3. The dagger: a legend under every leaderboard with a transductive row, and user labels keep it
# --------------------------------------------------------------------------------------------------------------


def _inputs(data: ReportData) -> TableInputs:
    pairs = pairwise(data)
    return TableInputs(data, leaderboard(data), compare_best_two(data, pairs), [], pairs)


def test_a_transductive_row_gets_the_dagger_legend_in_every_format() -> None:
    marked = _inputs(_data({"s2former" + TRANSDUCTIVE_MARK: 0.8, "B": 0.7}))
    assert TRANSDUCTIVE_NOTE.startswith(f"{TRANSDUCTIVE_MARK} transductive: ")
    assert "(transductive=true)" in TRANSDUCTIVE_NOTE
    markdown = render_markdown(marked)
    assert markdown.index(TRANSDUCTIVE_NOTE) > markdown.index("| s2former†")  # under the table
    assert TRANSDUCTIVE_NOTE in render_html(marked, [])
    assert "unlabelled val and test pixels of the scene (transductive=true)" in render_latex(marked)
    plain = _inputs(_data({"A": 0.8, "B": 0.7}))
    for text in (render_markdown(plain), render_html(plain, []), render_latex(plain)):
        assert "transductive=true" not in text


def test_a_user_label_keeps_the_dagger_of_a_transductive_variant() -> None:
    variant = {"strategy": "s2former", "label": "mine", "options": {"transductive": True}}
    assert _parse_variant(variant, "t").label == "mine" + TRANSDUCTIVE_MARK
    assert _parse_variant({**variant, "label": "mine†"}, "t").label == "mine†"  # not twice
    assert _parse_variant({**variant, "options": {}}, "t").label == "mine"


# --------------------------------------------------------------------------------------------------------------
# 4. The HTML page shows the pairwise table per block and the comparisons' wording
# --------------------------------------------------------------------------------------------------------------


def test_html_shows_every_pair_per_block_and_the_verdicts() -> None:
    page = render_html(_inputs(_data({"A": 0.85, "B": 0.7, "C": 0.7}, datasets=("d", "e"))), [])
    assert "p (Holm)" in page
    for dataset in ("d", "e"):
        assert f"<h3>Split <code>kshot=5</code>, {dataset}</h3>" in page
    assert re.search(r"A &gt; B by \+\d+\.\d J_M \(95 % CI \[[+-]\d+\.\d, [+-]\d+\.\d\], p = [\d.e-]+\)", page)
    assert "not resolved (" in page  # B vs C: same quality
    assert page.count('<table class="pairwise">') == 2


# --------------------------------------------------------------------------------------------------------------
# 5. The split help names the options the parser accepts
# --------------------------------------------------------------------------------------------------------------


def test_run_help_names_the_split_options_and_its_example_parses() -> None:
    run_parser = build_parser()._subparsers._group_actions[0].choices["run"]
    run = next(a for a in run_parser._actions if "--split" in a.option_strings)
    for key in ("guard=N", "val=full|matched", "min_test=N", "cap=half"):
        assert key in run.help
    example = re.search(r"e\.g\. (\S+)", run.help).group(1)
    spec = parse_split_spec(example)
    assert spec.disjoint and spec.guard is not None and spec.val == "matched"
