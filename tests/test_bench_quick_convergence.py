"""benchmarks/bench_quick_convergence.py without training: the budget scaling and the ratio table's verdict."""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

from hsbench.errors import ConfigError
from hsbench.pretraining.s2former_ssl import S2FormerSSLRecipe
from hsbench.registry import STRATEGIES, lookup
from hsbench.strategy import resolve_strategy
from hsbench.suite import load_suite, parse_suite

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_quick_convergence.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_quick_convergence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resolved(suite, label):
    """The resolved options of the first cell of ``label`` (what its runs use)."""
    cell = next(c for c in suite.cells() if c.label == label)
    return resolve_strategy(cell.strategy, cell.options, cell.dataset)[1]


# ------------------------------------------------------------------------------------------------------- scaling
def test_quick_suite_budgets_are_multiplied(bench):
    quick = load_suite("quick")
    before = copy.deepcopy([v.options for v in quick.variants])
    scaled = bench.scaled_suite(quick, 4)
    assert scaled.name == "quick-x4"
    assert [v.label for v in scaled.variants] == quick.labels
    assert scaled.seeds == quick.seeds and scaled.splits == quick.splits
    assert [v.options for v in quick.variants] == before  # the loaded suite is not modified
    strategies = {v.label: v.strategy for v in quick.variants}
    assert set(strategies.values()) == {"in_domain", "cross_modality", "cross_domain", "s2former"}
    expected_keys = {
        "in_domain": {"epochs", "early_stopping_patience"},
        "cross_modality": {"epochs", "early_stopping_patience", "pretrain_epochs"},
        "cross_domain": {"epochs", "early_stopping_patience", "pretrain_epochs"},
        "s2former": {"epochs", "early_stopping_patience", "pretrain_options.steps", "target_pretrain_steps"},
    }
    for label, strategy in strategies.items():
        assert set(bench.budget_keys(strategy)) == expected_keys[strategy]
        base, big = _resolved(quick, label), _resolved(scaled, label)
        for path in expected_keys[strategy]:
            value = bench.effective_value(strategy, base, path)
            assert isinstance(value, int) and value > 0, (label, path)
            assert bench.effective_value(strategy, big, path) == 4 * value, (label, path)
        # nothing but the budget changes
        changed = {k for k in base if base[k] != big[k]}
        assert changed == {p.split(".")[0] for p in expected_keys[strategy]}, label
    # the quick suite's s2former sets no patience and its pretraining steps sit in a nested dict: the defaults count
    s2 = next(v for v in quick.variants if v.strategy == "s2former")
    if "early_stopping_patience" not in s2.options:
        assert _resolved(scaled, s2.label)["early_stopping_patience"] == 4 * lookup(STRATEGIES, "s2former").defaults[
            "early_stopping_patience"]
    assert _resolved(scaled, s2.label)["pretrain_options"]["steps"] == \
        4 * s2.options.get("pretrain_options", {}).get("steps", S2FormerSSLRecipe(model={}).steps)
    # the scaled suite's cells never collide with the base suite's
    assert not {c.cell_id for c in quick.cells()} & {c.cell_id for c in scaled.cells()}


def test_target_only_leaves_pretraining_alone(bench):
    quick = load_suite("quick")
    scaled = bench.scaled_suite(quick, 4, target_only=True)
    for variant in quick.variants:
        base, big = _resolved(quick, variant.label), _resolved(scaled, variant.label)
        assert big["epochs"] == 4 * base["epochs"], variant.label
        for key in ("pretrain_epochs", "pretrain_options", "target_pretrain_steps"):
            if key in base:
                assert big[key] == base[key], (variant.label, key)
        assert {k for k in base if base[k] != big[k]} <= {"epochs", "early_stopping_patience"}
    s2 = next(v.label for v in quick.variants if v.strategy == "s2former")
    assert _resolved(scaled, s2)["target_pretrain_steps"] == _resolved(quick, s2)["target_pretrain_steps"]


def test_absent_options_scale_the_strategy_default(bench):
    suite = parse_suite({"name": "bare", "seeds": [0], "splits": ["fraction=1.0"], "datasets": ["synthetic_drive"],
                         "strategies": [{"strategy": "in_domain", "label": "id"},
                                        {"strategy": "cross_domain", "label": "cd"},
                                        {"strategy": "s2former", "label": "s2"},
                                        {"strategy": "in_domain", "label": "nostop",
                                         "options": {"early_stopping_patience": None}}]})
    scaled = bench.scaled_suite(suite, 3)
    in_domain = lookup(STRATEGIES, "in_domain").defaults
    assert _resolved(scaled, "id")["epochs"] == 3 * in_domain["epochs"]
    assert _resolved(scaled, "id")["early_stopping_patience"] == 3 * in_domain["early_stopping_patience"]
    assert _resolved(scaled, "cd")["pretrain_epochs"] == 3 * lookup(STRATEGIES, "cross_domain").defaults[
        "pretrain_epochs"]
    steps = S2FormerSSLRecipe(model={}).steps
    assert _resolved(scaled, "s2")["pretrain_options"]["steps"] == 3 * steps
    assert _resolved(scaled, "s2")["target_pretrain_steps"] == 3 * lookup(STRATEGIES, "s2former").defaults[
        "target_pretrain_steps"]
    assert _resolved(scaled, "nostop")["early_stopping_patience"] is None  # no early stopping stays off


def test_dotted_option_key_is_replaced(bench):
    suite = parse_suite({"name": "dotted", "seeds": [0], "splits": ["fraction=1.0"], "datasets": ["synthetic_drive"],
                         "strategies": [{"strategy": "s2former", "options": {"pretrain_options.steps": 10}}]})
    scaled = bench.scaled_suite(suite, 4)
    assert _resolved(scaled, "s2former")["pretrain_options"]["steps"] == 40


def test_restrict_suite(bench):
    quick = load_suite("quick")
    small = bench.restrict_suite(quick, seeds=[1], labels=["in_domain/runet"], datasets=["synthetic_drive"])
    cells = small.cells()
    assert {(c.label, c.dataset, c.seed) for c in cells} == {("in_domain/runet", "synthetic_drive", 1)}
    assert {c.split for c in cells} == set(quick.splits)
    with pytest.raises(ConfigError, match="no label 'nope'"):
        bench.restrict_suite(quick, labels=["nope"])
    with pytest.raises(ConfigError, match="no seed 7"):
        bench.restrict_suite(quick, seeds=[7])


def test_unknown_strategy_budget_is_an_error(bench):
    with pytest.raises(ConfigError, match="BUDGET_KEYS"):
        bench.budget_keys("not_a_strategy")


# ------------------------------------------------------------------------------------------------------- verdict
LABELS = ("A", "B")
DATASETS = ("d1", "d2")
SPLITS = ("fraction=0.05", "fraction=1.0")


def _frames(ratios: dict[tuple[str, str, str], float], scaled_miou: float = 0.5, seeds=(0, 1, 2)):
    """Base and scaled run frames whose mean J_M ratio per (label, dataset, split) is ``ratios[...]`` (default
    0.95); seeds vary around the mean so that the ratio is of means."""
    base, scaled = [], []
    for label in LABELS:
        for dataset in DATASETS:
            for split in SPLITS:
                ratio = ratios.get((label, dataset, split), 0.95)
                for i, seed in enumerate(seeds):
                    jitter = 0.01 * (i - 1)
                    key = {"label": label, "dataset": dataset, "split": split, "seed": seed}
                    scaled.append({**key, "miou": scaled_miou + jitter})
                    base.append({**key, "miou": ratio * scaled_miou - jitter})
    return pd.DataFrame(base), pd.DataFrame(scaled)


def test_ratio_table_means_over_seeds(bench):
    table = bench.ratio_table(*_frames({("A", "d1", "fraction=1.0"): 0.8}))
    assert len(table) == len(LABELS) * len(DATASETS) * len(SPLITS)
    row = table[(table["label"] == "A") & (table["dataset"] == "d1") & (table["split"] == "fraction=1.0")].iloc[0]
    assert row["scaled_jm"] == pytest.approx(50.0)
    assert row["base_jm"] == pytest.approx(40.0)
    assert row["ratio"] == pytest.approx(0.8)
    assert row["seeds"] == [0, 1, 2]


def test_all_ratios_at_0_95_pass(bench):
    result = bench.verdict(bench.ratio_table(*_frames({})))
    assert result.met and result.failures == []
    assert result.full_split == "fraction=1.0" and result.small_split == "fraction=0.05"
    assert result.means == pytest.approx({"A": 0.95, "B": 0.95})
    assert result.lines[-1] == "verdict: all targets met"


def test_one_full_split_ratio_below_target_fails_naming_the_row(bench):
    result = bench.verdict(bench.ratio_table(*_frames({("B", "d2", "fraction=1.0"): 0.85})))
    assert not result.met
    assert len(result.failures) == 1
    assert "fraction=1.0" in result.failures[0] and "B on d2" in result.failures[0]
    assert "0.850" in result.failures[0]
    assert any(line.startswith("FAIL fraction=1.0 B on d2") for line in result.lines)


def test_small_fraction_rule_uses_the_mean_over_datasets(bench):
    passing = bench.verdict(bench.ratio_table(*_frames({("A", "d1", "fraction=0.05"): 0.85,
                                                        ("A", "d2", "fraction=0.05"): 0.97})))
    assert passing.met, passing.failures  # mean 0.91 >= 0.9, though one dataset is at 0.85
    assert passing.means["A"] == pytest.approx(0.91)
    failing = bench.verdict(bench.ratio_table(*_frames({("A", "d1", "fraction=0.05"): 0.80,
                                                        ("A", "d2", "fraction=0.05"): 0.97})))
    assert not failing.met
    assert failing.failures == [f"fraction=0.05 A: mean ratio {0.885:.3f}"]


def test_a_row_missing_from_the_scaled_suite_fails(bench):
    base, scaled = _frames({})
    scaled = scaled[~((scaled["label"] == "A") & (scaled["dataset"] == "d1"))]
    table = bench.ratio_table(base, scaled)
    row = table[(table["label"] == "A") & (table["dataset"] == "d1") & (table["split"] == "fraction=1.0")].iloc[0]
    assert math.isnan(row["ratio"])
    result = bench.verdict(table)
    assert not result.met
    assert any("A on d1" in f and "missing" in f for f in result.failures)
    assert any(f.startswith("fraction=0.05 A:") for f in result.failures)


def test_markdown_table_and_json(bench):
    table = bench.ratio_table(*_frames({("B", "d2", "fraction=1.0"): 0.85}))
    text = bench.markdown_table(table, 4)
    lines = text.splitlines()
    assert lines[0] == "| label | dataset | split | base J_M | x4 J_M | ratio | meets |"
    assert "| B | d2 | fraction=1.0 | 42.50 | 50.00 | 0.850 | no |" in lines
    assert "| A | d1 | fraction=1.0 | 47.50 | 50.00 | 0.950 | yes |" in lines
    result = bench.verdict(table)
    data = bench.summary_json(table, result, suites=("quick", "quick-x4"), multiplier=4, seeds=(0, 1, 2),
                              target_only=False, wall_s={"quick": 1.0, "quick-x4": 4.0})
    assert data["met"] is False and data["multiplier"] == 4 and data["seeds"] == [0, 1, 2]
    row = next(r for r in data["rows"] if (r["label"], r["dataset"], r["split"]) == ("B", "d2", "fraction=1.0"))
    assert row["ratio"] == pytest.approx(0.85) and row["scaled_jm"] == pytest.approx(50.0)
    assert data["failures"] == result.failures and len(data["failures"]) == 1
    assert data["small_split_mean_ratio"] == pytest.approx({"A": 0.95, "B": 0.95})


def test_non_fraction_splits_only_report(bench):
    table = pd.DataFrame([{"label": "A", "dataset": "d1", "split": "official", "seeds": [0], "base_jm": 40.0,
                           "scaled_jm": 50.0, "ratio": 0.8}])
    result = bench.verdict(table)
    assert result.met and result.full_split is None
