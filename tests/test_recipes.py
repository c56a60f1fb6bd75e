"""Recipe presets (hsbench.recipes): expansion under user options, errors, and docs/recipes.md against the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import strategies  # noqa: F401 - registers the strategies
from hsbench.errors import ConfigError
from hsbench.features import FrozenFeatures
from hsbench.models.spectral_fm import SpectralFM, fm_config
from hsbench.recipes import RECIPES, recipe_rows
from hsbench.strategy import resolve_strategy

DOC = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"
PRESETS = ("hs3bench", "cross_domain_2026")
STRATEGIES = ("in_domain", "cross_domain", "cross_modality")


def test_hs3bench_resolves_to_the_published_in_domain_recipe_on_hcv2() -> None:
    options = resolve_strategy("in_domain", {"recipe": "hs3bench"}, "hcv2")[1]
    expected = {
        "model": "runet", "input": "raw", "model_options": {"layout": "hyperseg", "base_channels": 64},
        "epochs": 500, "early_stopping_patience": None, "lr": 0.001, "schedule": "constant", "grad_clip_norm": None,
        "loss_reduction": "all", "class_weighting": "none", "precision": "fp16", "batch_size": 4,
    }
    assert {k: options[k] for k in expected} == expected


def test_per_dataset_values_follow_the_dataset() -> None:
    drive = resolve_strategy("in_domain", {"recipe": "hs3bench"}, "hsi_drive:wavelengths=cross_domain_2026")[1]
    assert (drive["batch_size"], drive["precision"]) == (32, "fp32")
    study = resolve_strategy("cross_domain", {"recipe": "cross_domain_2026"}, "hcv2")[1]
    assert (study["batch_size"], study["precision"], study["early_stopping_patience"]) == (4, "bf16", 30)
    assert study["feature_input"] == "raw" and study["loss_reduction"] == "labelled"


def test_user_options_win_over_the_preset_including_nested_keys() -> None:
    options = resolve_strategy(
        "in_domain", {"recipe": "hs3bench", "batch_size": 5, "model_options.base_channels": 8}, "hcv2"
    )[1]
    assert options["batch_size"] == 5
    assert options["model_options"] == {"layout": "hyperseg", "base_channels": 8}
    assert options["precision"] == "fp16"  # the untouched preset values stay


def test_the_chosen_network_picks_its_architecture_options() -> None:
    dl = resolve_strategy("in_domain", {"recipe": "hs3bench", "model": "deeplabv3plus"})[1]
    assert dl["model_options"] == {"decoder": "vainf"}


def test_unknown_recipe_is_a_one_line_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as error:
        resolve_strategy("in_domain", {"recipe": "hs3bnch"})
    assert "did you mean 'hs3bench'" in str(error.value) and "\n" not in str(error.value)


def test_a_preset_without_values_for_a_strategy_is_refused() -> None:
    with pytest.raises(ConfigError, match="no values for strategy 'cross_domain'"):
        resolve_strategy("cross_domain", {"recipe": "hs3bench"})


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_default_recipe_changes_nothing_but_its_own_key(strategy: str) -> None:
    cls, options = resolve_strategy(strategy, {}, "hcv2")
    explicit = resolve_strategy(strategy, {"recipe": "hsbench"}, "hcv2")[1]
    assert options == explicit == cls.defaults
    assert options["recipe"] == "hsbench"


def _doc_rows() -> list[list[str]]:
    """Cells of the docs table's body rows (the one whose header starts with ``strategy``)."""
    lines = DOC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| strategy | option |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _cell(text: str) -> object:
    return json.loads(text.strip("`"))


def test_docs_table_equals_the_registry() -> None:
    rows = _doc_rows()
    documented = {(row[0], row[1]): row for row in rows}
    assert len(documented) == len(rows), "duplicate rows in docs/recipes.md"
    for preset_column, name in enumerate(PRESETS, start=3):
        for strategy in STRATEGIES:
            values = dict(recipe_rows(name, strategy)) if strategy in RECIPES[name] else {}
            for key, value in values.items():
                assert _cell(documented[strategy, key][preset_column]) == value, (name, strategy, key)
            for (doc_strategy, key), row in documented.items():
                if doc_strategy == strategy and key not in values:
                    assert row[preset_column] == "—", (name, strategy, key)


def test_docs_table_hsbench_column_and_anchor_for_every_row() -> None:
    for strategy, key, default, *_, anchor, _why in _doc_rows():
        defaults = resolve_strategy(strategy, {})[1]
        assert _cell(default) == defaults[key.split(" [")[0]], (strategy, key)
        assert anchor, (strategy, key)
    for row in _doc_rows():
        differs = any(cell not in ("—", row[2]) for cell in row[3:5])
        assert bool(row[6]) == differs, f"'why' must be given exactly where hsbench differs: {row[:2]}"


def test_raw_feature_input_feeds_frozen_features_unchanged() -> None:
    torch.manual_seed(0)
    model = SpectralFM(fm_config("tiny", {"dim": 8, "depth": 1, "heads": 2})).eval()
    cube = np.random.default_rng(0).random((5, 4, 6), dtype=np.float32)
    wavelengths = (450.0, 500.0, 550.0, 600.0, 650.0)
    raw = FrozenFeatures(model, wavelengths, transform="raw")
    standardised = FrozenFeatures(model, wavelengths)
    pixels = raw.raw(cube).reshape(8, -1).T
    raw.fit(pixels), standardised.fit(pixels)
    np.testing.assert_array_equal(raw.apply(cube), raw.raw(cube))
    np.testing.assert_allclose(standardised.apply(cube).reshape(8, -1).mean(axis=1), 0.0, atol=1e-4)
