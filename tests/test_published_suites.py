"""Published tables as suites: rows limited to some datasets, declared weights files checked before any cell, and
the HS3-Bench and 2026 cross-domain suites expressing every row."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsbench.cli import main
from hsbench.errors import ConfigError
from hsbench.suite import load_suite, parse_suite

SVM = {"model": "svm", "svm_c_grid": [10.0], "svm_max_pixels": 300}

# HS3-Bench's README table: (approach, data) per dataset; the RGB-camera row is HCV2's only.
HS3BENCH_ROWS = ["U-Net HSI", "RU-Net HSI", "RU-Net PCA1", "RU-Net pRGB", "DL3+ HSI", "DL3+ PCA1", "DL3+ pRGB",
                 "DL3+(BB) pRGB", "DL3+(PT) pRGB"]


def _suite(**overrides) -> dict:
    suite = {
        "name": "restricted",
        "seeds": [0],
        "splits": ["fraction=0.5"],
        "datasets": ["tiny_segmentation", "tiny_scene"],
        "strategies": [
            {"strategy": "in_domain", "label": "everywhere", "options": SVM},
            {"strategy": "in_domain", "label": "segmentation only", "datasets": ["tiny_segmentation"],
             "options": {**SVM, "svm_c_grid": [1.0]}},
        ],
    }
    suite.update(overrides)
    return suite


def _weights_suite(**overrides) -> dict:
    return _suite(**{
        "datasets": ["tiny_segmentation"],
        "strategies": [
            {"strategy": "in_domain", "label": "plain", "options": SVM},
            {"strategy": "cross_domain", "label": "with weights", "options": {"weights": "@fm"}},
        ],
        "weights": {"fm": {"file": "fm/hypersl.pt", "source": "the FM release page"},
                    "unused": {"file": "other.pt", "source": "nowhere"}},
        **overrides,
    })


def test_a_variant_limited_to_datasets_makes_cells_only_there(tiny_registered) -> None:
    raw = _suite(datasets=["tiny_segmentation", {"name": "tiny_scene", "splits": ["kshot=2"]}])
    suite = parse_suite(raw)
    pairs = {(c.dataset, c.label) for c in suite.cells()}
    assert pairs == {("tiny_segmentation", "everywhere"), ("tiny_segmentation", "segmentation only"),
                     ("tiny_scene", "everywhere")}
    assert [(d.name, v.label) for d, v in suite.rows()] == sorted(pairs, key=lambda p: (p[0] != "tiny_segmentation",
                                                                                          p[1] != "everywhere"))


def test_a_dataset_limited_to_labels_runs_only_those(tiny_registered) -> None:
    raw = _suite(datasets=["tiny_segmentation", {"name": "tiny_scene", "splits": ["kshot=2"],
                                                 "strategies": ["everywhere"]}],
                 strategies=[{"strategy": "in_domain", "label": "everywhere", "options": SVM},
                             {"strategy": "in_domain", "label": "other", "options": {**SVM, "svm_c_grid": [1.0]}}])
    cells = parse_suite(raw).cells()
    assert {(c.dataset, c.label) for c in cells} == {("tiny_segmentation", "everywhere"),
                                                     ("tiny_segmentation", "other"), ("tiny_scene", "everywhere")}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strategies": [{"strategy": "in_domain", "label": "x", "datasets": ["tiny_segmentaton"],
                          "options": SVM}]}, "did you mean 'tiny_segmentation'"),
        ({"datasets": [{"name": "tiny_segmentation", "strategies": ["evrywhere"]}]}, "no variant has"),
        ({"datasets": ["tiny_segmentation"],
          "strategies": [{"strategy": "in_domain", "label": "a", "options": SVM},
                         {"strategy": "in_domain", "label": "b", "datasets": ["tiny_scene"], "options": SVM}]},
         "not in the suite"),
        ({"datasets": [{"name": "tiny_segmentation", "strategies": ["everywhere"]}]}, "runs on no dataset"),
        ({"strategies": [{"strategy": "in_domain", "label": "x", "datasets": "tiny_scene", "options": SVM}]},
         "a non-empty list of names"),
    ],
)
def test_bad_restrictions_fail_at_load(tiny_registered, change, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_suite(_suite(**change))


def test_weights_references_resolve_below_the_weights_dir_and_ids_do_not_depend_on_it(tiny_registered,
                                                                                       tmp_path) -> None:
    suite = parse_suite(_weights_suite())
    unresolved = {c.label: c for c in suite.cells()}
    assert unresolved["with weights"].options["weights"] == "@fm"
    resolved = {c.label: c for c in suite.cells(tmp_path / "w")}
    assert resolved["with weights"].options["weights"] == str((tmp_path / "w" / "fm" / "hypersl.pt").absolute())
    assert "weights" not in resolved["plain"].options
    assert {c.cell_id for c in suite.cells(tmp_path / "elsewhere")} == {c.cell_id for c in unresolved.values()}
    assert [w.name for w, labels in suite.weights_used()] == ["fm"]  # the unused entry is not required


def test_declared_sha256_becomes_the_weights_sha256_option(tiny_registered, tmp_path) -> None:
    digest = "ab" * 32
    suite = parse_suite(_weights_suite(weights={"fm": {"file": "fm.pt", "source": "x", "sha256": digest}}))
    cell = next(c for c in suite.cells(tmp_path) if c.label == "with weights")
    assert cell.options["weights_sha256"] == digest


def test_check_weights_names_every_missing_file_with_its_source(tiny_registered, tmp_path) -> None:
    suite = parse_suite(_weights_suite())
    with pytest.raises(ConfigError, match="pass --weights-dir DIR") as no_dir:
        suite.check_weights(None)
    assert "fm/hypersl.pt (for with weights): the FM release page" in str(no_dir.value)
    with pytest.raises(ConfigError, match="1 of 1 weights file") as missing:
        suite.check_weights(tmp_path)
    assert f"{tmp_path / 'fm' / 'hypersl.pt'} (for with weights): the FM release page" in str(missing.value)
    (tmp_path / "fm").mkdir()
    (tmp_path / "fm" / "hypersl.pt").write_bytes(b"weights")
    suite.check_weights(tmp_path)  # present: no error


@pytest.mark.parametrize(
    ("weights", "options", "message"),
    [
        ({"fm": {"file": "fm.pt", "source": "x"}}, {"weights": "@fn"}, "names no entry of 'weights'"),
        ({"fm": {"file": "../fm.pt", "source": "x"}}, {"weights": "@fm"}, "without '..'"),
        ({"fm": {"file": "/abs/fm.pt", "source": "x"}}, {"weights": "@fm"}, "relative path"),
        ({"fm": {"file": "fm.pt"}}, {"weights": "@fm"}, "give 'file'"),
        ({"fm": {"file": "fm.pt", "source": "x", "sha256": "123"}}, {"weights": "@fm"}, "64 lower-case hex"),
        ({"fm": {"file": "fm.pt", "source": "x", "url": "y"}}, {"weights": "@fm"}, "url"),
    ],
)
def test_bad_weights_declarations_fail_at_load(tiny_registered, weights, options, message) -> None:
    raw = _suite(datasets=["tiny_segmentation"], weights=weights,
                 strategies=[{"strategy": "cross_domain", "label": "fm", "options": options}])
    with pytest.raises(ConfigError, match=message):
        parse_suite(raw)


def test_benchmark_refuses_to_start_without_the_weights_and_runs_no_cell(tiny_registered, tmp_path,
                                                                          capsys) -> None:
    import yaml

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(_weights_suite()))
    results = tmp_path / "results"
    code = main(["benchmark", "--suite", str(path), "--results", str(results), "--weights-dir",
                 str(tmp_path / "w"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "fm/hypersl.pt" in err and "the FM release page" in err
    assert not (results / "runs").exists()


def test_dry_run_lists_every_row_and_the_state_of_each_weights_file(tmp_path, capsys) -> None:
    weights = tmp_path / "w"
    (weights / "rgb").mkdir(parents=True)
    (weights / "rgb" / "mobilenet_v2-b0353104.pth").write_bytes(b"x")
    assert main(["benchmark", "--suite", "hs3bench", "--dry-run", "--results", str(tmp_path / "r"),
                 "--weights-dir", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "28 rows" in out and "140 cells" in out
    for row in HS3BENCH_ROWS + ["DL3+(BB) RGB"]:
        assert f"    {row}: " in out
    assert "rgb/mobilenet_v2-b0353104.pth  [present]" in out
    assert "rgb/best_deeplabv3plus_mobilenet_cityscapes_os16.pth  [MISSING]" in out


def test_hs3bench_suite_is_the_main_table_row_by_row() -> None:
    suite = load_suite("hs3bench")
    rows = [(d.name, v.label) for d, v in suite.rows()]
    expected = [(d, r) for d in ("hyko2", "hsi_drive", "hcv2") for r in HS3BENCH_ROWS]
    assert rows == expected + [("hcv2:camera=rgb", "DL3+(BB) RGB")]
    assert suite.splits_of(suite.datasets[2]) == ("official:hcv2_2024",)  # the 2024 benchmark's HCV2 split
    assert all(v.options["recipe"] == "hs3bench" for v in suite.variants)
    options = {v.label: v.options for v in suite.variants}
    assert options["RU-Net PCA1"]["input"] == "pca=1,per_image" and options["DL3+ pRGB"]["input"] == "prgb"
    assert (options["DL3+(PT) pRGB"]["mode"], options["DL3+(BB) pRGB"]["mode"]) == ("pt", "bb")
    assert {w.file for w, _ in suite.weights_used()} == {
        "rgb/mobilenet_v2-b0353104.pth", "rgb/best_deeplabv3plus_mobilenet_cityscapes_os16.pth"}


def test_cross_domain_2026_suite_has_every_hypersl_size_with_every_head_and_the_study_options() -> None:
    suite = load_suite("cross_domain_2026")
    frozen = {(v.options["fm_size"], v.options["head"]) for v in suite.variants
              if v.strategy == "cross_domain" and v.options["mode"] == "frozen"}
    assert frozen == {(s, h) for s in ("small", "base", "large", "huge") for h in ("mlp", "runet", "unet",
                                                                                     "deeplabv3plus")}
    assert any(v.options.get("mode") == "finetune" for v in suite.variants)
    assert "hsi_drive:wavelengths=cross_domain_2026" in [d.name for d in suite.datasets]
    limited = [s for s in suite.splits if s.startswith("fraction=")]
    assert limited and all(s.endswith(",sampler=cross_domain_2026") for s in limited)
    assert all(v.options["recipe"] == "cross_domain_2026" for v in suite.variants)
    needed = {w.name for w, _ in suite.weights_used()}
    assert needed == {"hypersl_small", "hypersl_base", "hypersl_large", "hypersl_huge", "imagenet_mobilenet_v2"}


def test_a_folder_split_dataset_takes_official_in_a_suite() -> None:
    """WHU-OHS's official split is its distribution's folders, known once prepared: the suite must not refuse it."""
    suite = parse_suite({"name": "w", "seeds": [0], "splits": ["official"], "datasets": ["whu_ohs"],
                         "strategies": [{"strategy": "in_domain", "options": SVM}]})
    assert [c.split for c in suite.cells()] == ["official"]


def test_dry_run_without_weights_dir_lists_the_files_the_suite_needs(tmp_path, capsys) -> None:
    assert main(["benchmark", "--suite", "cross_domain_2026", "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "@hypersl_huge: hypersl/hypersl_huge.pt (for HyperSL-huge frozen + FC" in out
    assert Path(tmp_path).is_dir()


def test_a_restricted_suite_runs_and_reports_each_row_on_its_own_datasets(tiny_registered, tmp_path) -> None:
    import yaml

    raw = _suite(datasets=["tiny_segmentation", {"name": "tiny_scene", "splits": ["kshot=2"]}])
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    results, reports = tmp_path / "results", tmp_path / "reports"
    assert main(["benchmark", "--suite", str(path), "--results", str(results), "--reports", str(reports),
                 "--no-progress"]) == 0
    table = (reports / "restricted" / "leaderboard.csv").read_text()
    rows = [line for line in table.splitlines() if "segmentation only" in line]
    assert rows and all("tiny_scene" not in line for line in rows)
    assert any("tiny_scene" in line and "everywhere" in line for line in table.splitlines())
