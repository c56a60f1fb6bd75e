"""Suites: YAML files expand into a validated matrix; every shipped suite loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hsbench.errors import ConfigError, UnknownNameError
from hsbench.registry import STRATEGIES, lookup
from hsbench.suite import load_suite, parse_suite, shipped_suites

SVM = {"model": "svm", "svm_c_grid": [10.0], "svm_max_pixels": 300}


def _write(tmp_path: Path, suite: dict) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def _tiny_suite(**overrides) -> dict:
    suite = {
        "name": "tiny",
        "description": "two SVM variants on the tiny dataset",
        "seeds": [0, 1],
        "splits": ["fraction=0.5", "official"],
        "datasets": ["tiny_segmentation"],
        "strategies": [
            {"strategy": "in_domain", "label": "svm-c10", "options": SVM},
            {"strategy": "in_domain", "options": {**SVM, "svm_c_grid": [0.1]}, "label": "svm-c0.1"},
        ],
    }
    suite.update(overrides)
    return suite


def test_suite_file_expands_seed_major_with_canonical_splits(tmp_path, tiny_registered) -> None:
    suite = load_suite(_write(tmp_path, _tiny_suite()))
    cells = suite.cells()
    assert len(cells) == 2 * 2 * 2
    assert [c.seed for c in cells] == [0] * 4 + [1] * 4  # a partial matrix holds whole seeds
    assert [c.position for c in cells] == list(range(8))
    assert {c.split for c in cells} == {"fraction=0.5", "official"}
    assert [c.label for c in cells[:2]] == ["svm-c10", "svm-c0.1"]
    assert len({c.cell_id for c in cells}) == 8
    assert [c.cell_id for c in load_suite(_write(tmp_path, _tiny_suite())).cells()] == [c.cell_id for c in cells]
    spec = cells[0].run_spec()
    assert (spec.dataset, spec.strategy, spec.split, spec.seed) == ("tiny_segmentation", "in_domain", "fraction=0.5", 0)
    assert spec.options == SVM


def test_dataset_entries_override_splits_and_add_options(tmp_path, tiny_registered) -> None:
    raw = _tiny_suite(datasets=[{"name": "tiny_segmentation", "splits": ["fraction=1"],
                                 "options": {"svm_max_pixels": 100}}])
    cells = parse_suite(raw).cells()
    assert {c.split for c in cells} == {"fraction=1.0"}
    assert all(c.options["svm_max_pixels"] == 300 for c in cells)  # the variant's own option wins
    raw["strategies"][0]["options"] = {"model": "svm"}
    assert parse_suite(raw).cells()[0].options["svm_max_pixels"] == 100


def test_only_datasets_keeps_those_cells_with_their_ids(tiny_registered) -> None:
    suite = parse_suite(_tiny_suite(datasets=["tiny_segmentation", "tiny_scene"],
                                    splits=["fraction=0.5"],
                                    strategies=[{"strategy": "in_domain", "label": "svm", "options": SVM}]))
    whole = {(c.dataset, c.seed): c.cell_id for c in suite.cells()}
    only = suite.only_datasets(["tiny_scene"])
    assert [d.name for d in only.datasets] == ["tiny_scene"]
    assert {c.dataset for c in only.cells()} == {"tiny_scene"}
    assert {(c.dataset, c.seed): c.cell_id for c in only.cells()} == {k: v for k, v in whole.items()
                                                                      if k[0] == "tiny_scene"}
    with pytest.raises(ConfigError, match="has no dataset 'tiny_scen'.*did you mean 'tiny_scene'"):
        suite.only_datasets(["tiny_scen"])


def test_default_label_comes_from_the_strategy(tiny_registered) -> None:
    raw = _tiny_suite(strategies=[{"strategy": "in_domain", "options": SVM}])
    assert parse_suite(raw).labels == [lookup(STRATEGIES, "in_domain").label({"model": "svm"})]


def test_changed_default_option_makes_a_new_cell(tiny_registered, monkeypatch) -> None:
    before = parse_suite(_tiny_suite()).cells()[0].cell_id
    strategy = lookup(STRATEGIES, "in_domain")
    monkeypatch.setattr(strategy, "defaults", {**strategy.defaults, "svm_gamma": 0.5})
    assert parse_suite(_tiny_suite()).cells()[0].cell_id != before


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"strategies": [{"strategy": "in_domian"}]}, UnknownNameError, "did you mean 'in_domain'"),
        ({"strategies": [{"strategy": "in_domain", "options": {"epocs": 3}}]}, ConfigError, "epochs"),
        ({"datasets": ["tiny_segmentaton"]}, UnknownNameError, "tiny_segmentation"),
        ({"splits": ["fraction=2"]}, ConfigError, "fraction"),
        ({"splits": ["official:nope"]}, ConfigError, "no official split 'nope'"),
        ({"seeds": []}, ConfigError, "seeds"),
        ({"seeds": [0, 0]}, ConfigError, "repeat"),
        ({"extra": 1}, ConfigError, "unknown key 'extra'"),
        ({"strategies": [{"strategy": "in_domain", "label": "a"}, {"strategy": "in_domain", "label": "a"}]},
         ConfigError, "appears twice"),
        ({"datasets": [{"name": "tiny_segmentation", "options": {"not_an_option": 1}}]}, ConfigError,
         "no option 'not_an_option'"),
    ],
)
def test_mistakes_fail_when_the_suite_loads(tiny_registered, change, error, message) -> None:
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_suite(_tiny_suite(**change))


def test_unknown_suite_name_lists_the_shipped_suites() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'quick'"):
        load_suite("quik")


def test_official_split_on_a_scene_without_one_fails_at_load(tiny_registered) -> None:
    with pytest.raises(ConfigError, match="no official split"):
        parse_suite(_tiny_suite(datasets=["tiny_scene"]))


@pytest.mark.parametrize("name", shipped_suites())
def test_every_shipped_suite_loads_and_expands(name) -> None:
    suite = load_suite(name)
    cells = suite.cells()
    assert suite.name == name and suite.description
    assert len(cells) == len({c.cell_id for c in cells})
    assert len(cells) == len(suite.seeds) * sum(len(suite.splits_of(d)) * len(suite.variants_of(d))
                                                for d in suite.datasets)


def test_shipped_suites_are_the_issue_s_five() -> None:
    assert set(shipped_suites()) >= {"quick", "synthetic", "hs3bench", "scenes", "ablations"}


def test_quick_is_the_four_strategies_on_both_synthetic_targets() -> None:
    quick = load_suite("quick")
    assert [d.name for d in quick.datasets] == ["synthetic_drive", "synthetic_hyko"]
    assert {v.strategy for v in quick.variants} == {"in_domain", "cross_modality", "cross_domain", "s2former"}
    assert quick.splits == ("fraction=0.05", "fraction=1.0") and quick.seeds == (0, 1, 2)
    assert len(quick.cells()) == 48


def test_synthetic_uses_the_six_fractions() -> None:
    fractions = tuple(f"fraction={p!r}" for p in (0.01, 0.05, 0.1, 0.25, 0.5, 1.0))
    synthetic = load_suite("synthetic")
    assert synthetic.splits == fractions and len(synthetic.seeds) == 5


def test_scenes_and_ablations() -> None:
    scenes = load_suite("scenes")
    assert set(scenes.splits) == {f"kshot={k}{d}" for k in (5, 10, 20) for d in ("", ",disjoint")}
    ablations = load_suite("ablations")
    flags = {"no_cross_attention", "no_frequency_loss", "no_daft", "no_pretrain"}
    assert all(v.strategy == "s2former" for v in ablations.variants)
    assert {f for v in ablations.variants for f in flags if v.options.get(f)} == flags


def test_scenes_transfer_pairs_each_scene_with_another_scene_as_source(tmp_path, capsys) -> None:
    from hsbench.cli.main import main

    suite = load_suite("scenes_transfer")
    assert set(suite.splits) == {"kshot=5", "kshot=20"} and len(suite.seeds) == 5
    pretrained = [v for v in suite.variants if "source" in v.options]
    assert {v.strategy for v in pretrained} == {"s2former", "cross_domain"}
    for variant in pretrained:
        assert variant.datasets and variant.options["source"] not in variant.datasets  # never its own target
    for entry in suite.datasets:  # every scene has both transfer strategies and every in-domain baseline
        strategies = [v.strategy for v in suite.variants_of(entry)]
        assert strategies.count("s2former") == 1 and strategies.count("cross_domain") == 1
        models = {v.options.get("model") for v in suite.variants_of(entry) if v.strategy == "in_domain"}
        assert models == {"svm", "spectral_spatial_svm", "cnn1d", "cnn3d", "hybridsn", "ssrn"}
    assert main(["benchmark", "--suite", "scenes_transfer", "--datasets", "jasper_ridge,samson", "--dry-run",
                 "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "not started 200" in out and "s2former/from_samson" in out and "indian_pines" not in out
