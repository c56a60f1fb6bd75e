"""Config files are data, and names cannot lead out of the folders hsbench writes (issue 12, parts 1 and 2).

Each test here reproduces an observed fault: a YAML payload that ran code, a Python config read without the user
saying they trust it, a name that was a path, a report writer that deleted files it never wrote.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import yaml
from conftest import make_tiny_dataset, register_tiny_provider

from hsbench.cli import build_parser, main
from hsbench.cli.run import resolve_run_request
from hsbench.data import Dataset, OfficialSplit, Sample
from hsbench.errors import ConfigError
from hsbench.registry import DATASETS

PAYLOAD = '!!python/object/apply:os.system ["echo X > PWNED"]'
SVM = {"model": "svm", "svm_max_pixels": 300}
SUITE = {"name": "trusttiny", "seeds": [0], "splits": ["fraction=0.5"], "datasets": ["tiny_trust"],
         "strategies": [{"strategy": "in_domain", "label": "svm", "options": SVM}]}


@pytest.fixture(autouse=True)
def _restore_logging():
    """``main`` points the hsbench logger at this test's captured stderr; later tests must not log into it."""
    logger = logging.getLogger("hsbench")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:], logger.level = handlers, level


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# ------------------------------------------------------------------------------------------------ run configs
def test_run_config_yaml_payload_runs_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("run.yaml").write_text(f"strategy: in_domain\noptions: {{note: {PAYLOAD}}}\n")
    assert main(["run", "--config", "run.yaml", "--results", "results", "--no-progress"]) == 2
    assert not Path("PWNED").exists()
    assert "run.yaml" in _one_error_line(capsys)
    assert not Path("results").exists()


def test_python_run_config_is_refused_without_trust_config(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("run.py").write_text("import pathlib\npathlib.Path('PWNED').write_text('x')\nstrategy = 'in_domain'\n")
    assert main(["run", "--config", "run.py", "--results", "results", "--no-progress"]) == 2
    assert not Path("PWNED").exists()
    assert "--trust-config" in _one_error_line(capsys)


def test_trusted_python_run_config_is_read(tmp_path: Path) -> None:
    config = tmp_path / "run.py"
    config.write_text("strategy = 'in_domain'\nseeds = [1, 2]\noptions = dict(epochs=3)\n")
    request = resolve_run_request(build_parser().parse_args(["run", "--config", str(config), "--trust-config"]))
    assert (request["strategy"], request["seeds"], request["options"]) == ("in_domain", [1, 2], {"epochs": 3})


def test_run_config_unknown_key_gets_did_you_mean(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"strategi": "in_domain"}))
    with pytest.raises(ConfigError, match=r"'strategi'.*did you mean 'strategy'"):
        resolve_run_request(build_parser().parse_args(["run", "--config", str(config)]))


def test_run_help_names_trust_config(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    assert "--trust-config" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------- suites
def test_suite_unknown_keys_get_did_you_mean(tmp_path: Path) -> None:
    from hsbench.suite import load_suite

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**SUITE, "datasets": ["synthetic_drive"], "stratgies": SUITE["strategies"]}))
    with pytest.raises(ConfigError, match=r"'stratgies'.*did you mean 'strategies'"):
        load_suite(path)
    path.write_text(yaml.safe_dump({**SUITE, "datasets": [{"name": "synthetic_drive", "split": ["fraction=1.0"]}]}))
    with pytest.raises(ConfigError, match=r"'split'.*did you mean 'splits'"):
        load_suite(path)


def test_suite_yaml_payload_runs_nothing(tmp_path: Path, monkeypatch) -> None:
    from hsbench.suite import load_suite

    monkeypatch.chdir(tmp_path)
    Path("suite.yaml").write_text(f"name: {PAYLOAD}\n")
    with pytest.raises(ConfigError, match="suite.yaml"):
        load_suite("suite.yaml")
    assert not Path("PWNED").exists()


def test_suite_name_that_is_a_path_is_refused(tmp_path: Path) -> None:
    from hsbench.suite import load_suite

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**SUITE, "name": "../../../../elsewhere/escape", "datasets": ["synthetic_drive"]}))
    with pytest.raises(ConfigError, match=r"suite name '\.\./\.\./\.\./\.\./elsewhere/escape' cannot be used"):
        load_suite(path)


# ----------------------------------------------------------------------------------------------------- sweeps
def test_study_name_that_is_a_path_is_refused(tmp_path: Path, capsys) -> None:
    from hsbench.sweep import SweepConfig

    with pytest.raises(ConfigError, match="study name"):
        SweepConfig(study="../../escape", storage=str(tmp_path / "optuna.journal"))
    assert main(["sweep", "--strategy", "in_domain", "--study", "../../escape", "--trials", "1",
                 "--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports")]) == 2
    assert "study name '../../escape'" in _one_error_line(capsys)


def test_sweep_plots_never_go_through_a_symlink_out_of_reports(tmp_path: Path, capsys) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "sweeps").symlink_to(elsewhere, target_is_directory=True)
    args = ["sweep", "--strategy", "in_domain", "--model", "svm", "--cfg-options", "svm_max_pixels=300",
            "--study", "mystudy", "--trials", "1", "--no-progress", "--device", "cpu",
            "--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports")]
    assert main(args) == 2
    assert "outside" in _one_error_line(capsys)
    assert list(elsewhere.iterdir()) == []
    assert not (tmp_path / "results").exists()  # refused before any trial ran


# ------------------------------------------------------------------------------------- sample ids as file names
def _renamed(dataset: Dataset, rename) -> Dataset:
    """``dataset`` with every sample id replaced by ``rename(id)``."""
    names = {rename(i): i for i in dataset.sample_ids}

    def load(sample_id: str) -> Sample:
        sample = dataset.load(names[sample_id])
        return Sample(sample_id, sample.cube, sample.labels)

    official = {key: OfficialSplit(*(tuple(map(rename, ids)) for ids in (split.train, split.val, split.test)))
                for key, split in dataset.card.official_splits.items()}
    card = dataclasses.replace(dataset.card, official_splits=official)
    return Dataset(card, list(names), load, fingerprint=dataset.fingerprint)


def test_sample_ids_that_are_paths_stay_inside_the_predictions_folder(tmp_path: Path) -> None:
    from hsbench.report.qualitative import _prediction_files
    from hsbench.runner import Runner, RunSpec

    dataset = _renamed(make_tiny_dataset(), lambda i: f"../../../{i}")
    provider = register_tiny_provider("tiny_escaping_ids")
    provider.open = classmethod(lambda cls, **_: dataset)
    try:
        outcome = Runner(tmp_path / "results", progress=False).run(
            RunSpec("tiny_escaping_ids", "in_domain", "fraction=0.5", 0, SVM))
    finally:
        DATASETS.module_dict.pop("tiny_escaping_ids", None)
    assert outcome.status == "completed", outcome.error
    escaped = [p for p in tmp_path.rglob("*.png") if p.parent.name != "predictions"]
    assert escaped == []
    found = _prediction_files(str(outcome.run_dir))
    assert found and all(name.startswith("../../../img") for name in found)
    assert all(path.parent == outcome.run_dir / "predictions" for path in found.values())


# ------------------------------------------------------------------------------------------------ the report
@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """A one-cell suite run once; yields (suite file, results folder, report data)."""
    from hsbench.benchmark import BenchmarkConfig, run_benchmark
    from hsbench.report import load_suite_results
    from hsbench.store import ResultsStore
    from hsbench.suite import load_suite

    root = tmp_path_factory.mktemp("trust_report")
    register_tiny_provider("tiny_trust")
    suite_path = root / "suite.yaml"
    suite_path.write_text(yaml.safe_dump(SUITE))
    suite = load_suite(suite_path)
    run_benchmark(suite, BenchmarkConfig(results_dir=root / "results", device="cpu", progress=False))
    yield suite_path, root / "results", load_suite_results(ResultsStore(root / "results" / "hsbench.db"), suite)
    DATASETS.module_dict.pop("tiny_trust", None)


def _users_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "holiday_photos"
    folder.mkdir()
    (folder / "beach.png").write_bytes(b"user's picture")
    return folder


def test_report_deletes_only_the_files_it_wrote(one_run, tmp_path: Path) -> None:
    from hsbench.report import write_report
    from hsbench.report.writer import MANIFEST

    out = tmp_path / "report"
    first = write_report(one_run[2], out)
    (out / "figures" / "users_own.png").write_bytes(b"keep me")
    stale = out / "figures" / "figure_of_an_older_suite.png"
    stale.write_bytes(b"written by an earlier report")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"].append("figures/figure_of_an_older_suite.png")
    manifest["files"].append("../outside.png")  # a tampered manifest cannot lead the writer out of the folder
    (out / MANIFEST).write_text(json.dumps(manifest))
    (tmp_path / "outside.png").write_bytes(b"not the report's")

    second = write_report(one_run[2], out)
    assert (out / "figures" / "users_own.png").read_bytes() == b"keep me"
    assert (tmp_path / "outside.png").exists()
    assert not stale.exists()
    assert [f.png for f in second.figures] == [f.png for f in first.figures]
    listed = json.loads((out / MANIFEST).read_text())["files"]
    assert "figures/users_own.png" not in listed
    assert {f"figures/{f.png.name}" for f in second.figures} <= set(listed)
    assert "leaderboard.md" in listed


def test_symlinked_figures_folder_is_refused_and_its_files_survive(one_run, tmp_path: Path) -> None:
    from hsbench.report import write_report

    photos = _users_folder(tmp_path)
    out = tmp_path / "report"
    out.mkdir()
    (out / "figures").symlink_to(photos, target_is_directory=True)
    with pytest.raises(ConfigError, match="outside"):
        write_report(one_run[2], out)
    assert [p.name for p in photos.iterdir()] == ["beach.png"]


def test_report_into_a_symlinked_suite_folder_is_refused(one_run, tmp_path: Path, capsys) -> None:
    suite_path, results, _ = one_run
    photos = _users_folder(tmp_path)
    (photos / "figures").mkdir()
    (photos / "figures" / "mine.png").write_bytes(b"user's figure")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / SUITE["name"]).symlink_to(photos, target_is_directory=True)
    assert main(["report", "--suite", str(suite_path), "--results", str(results), "--reports", str(reports)]) == 2
    assert "outside" in _one_error_line(capsys)
    assert sorted(p.name for p in photos.rglob("*")) == ["beach.png", "figures", "mine.png"]


def test_benchmark_refuses_a_symlinked_suite_folder_before_running(one_run, tmp_path: Path, capsys) -> None:
    photos = _users_folder(tmp_path)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / SUITE["name"]).symlink_to(photos, target_is_directory=True)
    args = ["benchmark", "--suite", str(one_run[0]), "--results", str(tmp_path / "results"), "--reports", str(reports),
            "--device", "cpu", "--no-progress"]
    assert main(args) == 2
    assert "outside" in _one_error_line(capsys)
    assert not (tmp_path / "results").exists()
    assert [p.name for p in photos.iterdir()] == ["beach.png"]


# ------------------------------------------------------------------------------------------ mmseg configs
MMSEG_MODEL = {"model": {"type": "EncoderDecoder", "data_preprocessor": {"mean": [127.5] * 3, "std": [51.0] * 3},
                         "decode_head": {"type": "FCNHead", "num_classes": 19, "norm_cfg": {"type": "SyncBN"}}}}


def test_python_mmseg_config_needs_config_trusted(tmp_path: Path, monkeypatch) -> None:
    """Refused before mmsegmentation is imported, so this runs where mmcv is not installed."""
    from hsbench.models.rgb_backbones import rgb_backbone

    monkeypatch.chdir(tmp_path)
    Path("fcn.py").write_text("import pathlib\npathlib.Path('PWNED').write_text('x')\nmodel = dict(type='X')\n")
    with pytest.raises(ConfigError, match=r"fcn\.py is a Python file.*backbone_options\.config_trusted=true"):
        rgb_backbone("mmseg").build(5, {"config": "fcn.py", "config_trusted": False})
    assert not Path("PWNED").exists()


def test_yaml_mmseg_config_payload_runs_nothing(tmp_path: Path, monkeypatch) -> None:
    from hsbench.models.mmseg_backend import build_mmseg_segmentor

    monkeypatch.chdir(tmp_path)
    Path("fcn.yaml").write_text(f"model: {{type: EncoderDecoder, note: {PAYLOAD}}}\n")
    with pytest.raises(ConfigError, match=r"fcn\.yaml"):
        build_mmseg_segmentor("fcn.yaml", 5)
    assert not Path("PWNED").exists()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_data_mmseg_config_is_read_safely(tmp_path: Path, suffix: str) -> None:
    from hsbench.models.mmseg_backend import _model_config

    path = tmp_path / f"fcn{suffix}"
    dump = json.dumps if suffix == ".json" else yaml.safe_dump
    path.write_text(dump(MMSEG_MODEL))
    model, mean, std = _model_config(path, 5)
    assert model["decode_head"]["num_classes"] == 5
    assert model["decode_head"]["norm_cfg"]["type"] == "BN"
    assert mean == pytest.approx((0.5,) * 3) and std == pytest.approx((0.2,) * 3)
    path.write_text(dump({**MMSEG_MODEL, "_base_": ["../_base_/models/fcn.py"]}))
    with pytest.raises(ConfigError, match="_base_"):
        _model_config(path, 5)

