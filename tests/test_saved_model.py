"""Each run keeps its selected model (``<run>/model/``): safetensors + JSON, verified on open, exact on reload."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hsbench.errors import DataError
from hsbench.evaluation import evaluate_view
from hsbench.integrity import IntegrityError
from hsbench.registry import STRATEGIES, lookup
from hsbench.runner import Runner, RunSpec
from hsbench.saved_model import MANIFEST_NAME, MODEL_DIR, MODEL_JSON, WEIGHTS_NAME, load_run_model, read_model
from hsbench.splits import Split
from hsbench.strategy import SplitView

BUILT_IN = ("in_domain", "cross_modality", "cross_domain", "s2former")
"""The strategies hsbench ships: every one must keep its model."""

CASES = [(name, index) for name in BUILT_IN for index in range(len(lookup(STRATEGIES, name).smoke_options))]
SVM = {"model": "svm", "input": "standardize", "svm_c_grid": [1.0, 10.0], "svm_max_pixels": 500}
RUNET = lookup(STRATEGIES, "in_domain").smoke_options[0]


def _run(results: Path, dataset: str, strategy: str, options: dict, *, split: str = "fraction=0.5",
         **runner_options):
    outcome = Runner(results, progress=False, **runner_options).run(RunSpec(dataset, strategy, split, 0, options))
    assert outcome.status == "completed", outcome.error
    return outcome


def _stored_test_confusion(run_dir: Path) -> np.ndarray:
    with np.load(run_dir / "confusion.npz") as confusions:
        return confusions["test"]


def _reloaded_test_confusion(run_dir: Path, dataset) -> np.ndarray:
    strategy, _ = load_run_model(run_dir)
    view = SplitView.of(dataset, Split.load(run_dir / "split"), "test")
    return evaluate_view(strategy.predict, view).total()


def test_every_built_in_strategy_saves_its_model() -> None:
    for name in BUILT_IN:
        assert STRATEGIES.module_dict[name].saves_model(), f"{name} cannot save its model"


@pytest.mark.parametrize(("strategy", "index"), CASES)
def test_a_reloaded_model_reproduces_the_run_test_confusion(tmp_path, tiny_registered, strategy: str,
                                                            index: int) -> None:
    options = STRATEGIES.module_dict[strategy].smoke_options[index]
    outcome = _run(tmp_path, tiny_registered["segmentation"], strategy, options)
    facts = json.loads((outcome.run_dir / "facts.json").read_text())
    assert facts["model_saved"] is True and facts["model_bytes"] > 0
    assert facts["model_sha256"] == read_model(outcome.run_dir).weights_sha256
    dataset = Runner(tmp_path, progress=False).dataset(tiny_registered["segmentation"])
    np.testing.assert_array_equal(_reloaded_test_confusion(outcome.run_dir, dataset),
                                  _stored_test_confusion(outcome.run_dir))


IN_DOMAIN_INPUTS = {
    "pixel_mlp": {**RUNET, "model": "pixel_mlp", "model_options": {"hidden_channels": 16}},
    "pca-per-image": {**RUNET, "model": "unet", "input": "pca=2,per_image"},
    "prgb": {**RUNET, "input": "prgb"},
    "pca3": {**RUNET, "input": "pca3"},
    "svm-pca": {**SVM, "input": "pca=3"},
}
"""in_domain's other input maps and pixel models: each fitted part must come back (the smoke options cover
``standardize``, ``pca=3`` and the SVM on standardised spectra)."""


@pytest.mark.parametrize("name", list(IN_DOMAIN_INPUTS))
def test_a_reloaded_in_domain_model_reproduces_the_run_with_every_input(tmp_path, tiny_registered, name) -> None:
    outcome = _run(tmp_path, tiny_registered["segmentation"], "in_domain", IN_DOMAIN_INPUTS[name])
    dataset = Runner(tmp_path, progress=False).dataset(tiny_registered["segmentation"])
    np.testing.assert_array_equal(_reloaded_test_confusion(outcome.run_dir, dataset),
                                  _stored_test_confusion(outcome.run_dir))


@pytest.mark.parametrize("options", [RUNET, SVM], ids=["runet", "svm"])
def test_a_reloaded_model_reproduces_a_scene_run(tmp_path, tiny_registered, options) -> None:
    """Scenes: training on crops of one image, test pixels of the same image."""
    outcome = _run(tmp_path, tiny_registered["scene"], "in_domain", options, split="kshot=10")
    dataset = Runner(tmp_path, progress=False).dataset(tiny_registered["scene"])
    np.testing.assert_array_equal(_reloaded_test_confusion(outcome.run_dir, dataset),
                                  _stored_test_confusion(outcome.run_dir))


_FRESH = """
import sys, numpy as np
from hsbench.evaluation import evaluate_view
from hsbench.saved_model import load_run_model
from hsbench.splits import Split
from hsbench.strategy import SplitView
sys.path.insert(0, sys.argv[2])
from conftest import make_tiny_dataset
run_dir = sys.argv[1]
strategy, stored = load_run_model(run_dir)
dataset = make_tiny_dataset()
print(evaluate_view(strategy.predict, SplitView.of(dataset, Split.load(f"{run_dir}/split"), "test")).total().tolist())
"""


@pytest.mark.parametrize("options", [RUNET, STRATEGIES.module_dict["cross_modality"].smoke_options[2]],
                         ids=["in_domain-runet", "cross_modality-learned"])
def test_a_fresh_process_reproduces_the_run_test_confusion(tmp_path, tiny_registered, options) -> None:
    strategy = "in_domain" if options is RUNET else "cross_modality"
    outcome = _run(tmp_path, tiny_registered["segmentation"], strategy, options)
    done = subprocess.run([sys.executable, "-c", _FRESH, str(outcome.run_dir), str(Path(__file__).parent)],
                          capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
    assert json.loads(done.stdout.strip().splitlines()[-1]) == _stored_test_confusion(outcome.run_dir).tolist()


def test_the_svm_round_trip_predicts_identically_with_the_selected_c(tmp_path, tiny_registered) -> None:
    runner = Runner(tmp_path, progress=False)
    spec = RunSpec(tiny_registered["segmentation"], "in_domain", "fraction=0.5", 0, SVM)
    outcome = runner.run(spec)
    assert outcome.status == "completed", outcome.error
    facts = json.loads((outcome.run_dir / "facts.json").read_text())
    restored, stored = load_run_model(outcome.run_dir)
    assert restored.learner.svm_c == facts["svm_c"] and restored.learner.svm.C == facts["svm_c"]
    # Refit in this process (same seeds, same pixels), then compare the two SVCs pixel for pixel.
    from hsbench.seeding import SeedStreams
    from hsbench.strategy import RunContext

    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path / "refit")
    fitted = lookup(STRATEGIES, "in_domain")(stored.options, ctx, stored.card)
    dataset = runner.dataset(spec.dataset)
    split = Split.load(outcome.run_dir / "split")
    fitted.fit(SplitView.of(dataset, split, "train"), SplitView.of(dataset, split, "val"))
    assert fitted.learner.svm_c == facts["svm_c"]
    rng = np.random.default_rng(0)
    pixels = np.concatenate([rng.normal(size=(2000, dataset.card.num_bands)),
                             fitted.transform.apply_pixels(np.asarray(dataset.load(dataset.sample_ids[0]).cube).reshape(
                                 dataset.card.num_bands, -1).T)])
    np.testing.assert_array_equal(restored.learner.svm.predict(pixels), fitted.learner.svm.predict(pixels))
    np.testing.assert_array_equal(restored.learner.svm.decision_function(pixels),
                                  fitted.learner.svm.decision_function(pixels))
    np.testing.assert_array_equal(restored.learner.svm.support_vectors_, fitted.learner.svm.support_vectors_)


def test_no_save_model_writes_no_model_and_keeps_the_run_id(tmp_path, tiny_registered) -> None:
    dataset = tiny_registered["segmentation"]
    kept = _run(tmp_path / "kept", dataset, "in_domain", SVM)
    skipped = _run(tmp_path / "none", dataset, "in_domain", SVM, save_model=False)
    assert kept.run_id == skipped.run_id
    assert (kept.run_dir / MODEL_DIR / WEIGHTS_NAME).is_file()
    assert not (skipped.run_dir / MODEL_DIR).exists()
    assert json.loads((skipped.run_dir / "facts.json").read_text())["model_saved"] is False
    with pytest.raises(DataError, match="no saved model") as info:
        load_run_model(skipped.run_dir)
    assert "\n" not in str(info.value)


def test_the_cli_flag_reaches_the_runner(tmp_path, tiny_registered) -> None:
    from hsbench.cli.main import main

    args = ["run", "--strategy", "in_domain", "--dataset", tiny_registered["segmentation"], "--split", "fraction=0.5",
            "--cfg-options", "model=svm", "svm_c_grid=[1.0]", "svm_max_pixels=300", "--no-progress"]
    assert main([*args, "--results", str(tmp_path / "a"), "--no-save-model"]) == 0
    assert main([*args, "--results", str(tmp_path / "b")]) == 0
    runs_a = [p.name for p in (tmp_path / "a" / "runs").iterdir()]
    runs_b = [p.name for p in (tmp_path / "b" / "runs").iterdir()]
    assert runs_a == runs_b and len(runs_a) == 1
    assert not (tmp_path / "a" / "runs" / runs_a[0] / MODEL_DIR).exists()
    assert (tmp_path / "b" / "runs" / runs_b[0] / MODEL_DIR / MANIFEST_NAME).is_file()


def test_the_benchmark_config_passes_the_switch_on() -> None:
    from hsbench.benchmark import BenchmarkConfig
    from hsbench.cli.main import build_parser

    assert BenchmarkConfig().save_model is True
    args = build_parser().parse_args(["benchmark", "--suite", "quick", "--no-save-model"])
    assert args.no_save_model is True


def test_a_plugin_strategy_without_a_model_state_runs_with_a_warning(tmp_path, tiny_registered, caplog) -> None:
    from hsbench.strategy import Strategy

    @STRATEGIES.register_module(name="_no_model_state", force=True)
    class NoModel(Strategy):
        name = "_no_model_state"
        defaults: dict = {}

        def fit(self, train, val):
            return {}

        def predict(self, sample):
            return np.zeros(sample.labels.shape, dtype=np.int64)

    try:
        outcome = _run(tmp_path, tiny_registered["segmentation"], "_no_model_state", {})
    finally:
        STRATEGIES.module_dict.pop("_no_model_state", None)
    assert not NoModel.saves_model()
    assert json.loads((outcome.run_dir / "facts.json").read_text())["model_saved"] is False
    assert not (outcome.run_dir / MODEL_DIR).exists()
    assert "cannot save its model" in (outcome.run_dir / "log.txt").read_text()


# ----------------------------------------------------------------------------------------- a stored model's faults
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    """One saved RU-Net run (a network, a fitted transform) whose folder the fault tests copy."""
    from conftest import register_tiny_provider

    from hsbench.registry import DATASETS

    register_tiny_provider("tiny_saved_model")
    try:
        outcome = _run(tmp_path_factory.mktemp("saved"), "tiny_saved_model", "in_domain", RUNET)
    finally:
        DATASETS.module_dict.pop("tiny_saved_model", None)
    return outcome.run_dir


@pytest.fixture
def model_copy(saved_run, tmp_path) -> Path:
    """A private copy of the saved run's model folder (a new path: nothing about it is remembered)."""
    copy = tmp_path / "run"
    shutil.copytree(saved_run / MODEL_DIR, copy / MODEL_DIR)
    return copy


def _one_line_naming(exc: BaseException, name: str) -> None:
    assert "\n" not in str(exc) and name in str(exc), str(exc)


def test_a_flipped_byte_in_the_weights_is_refused(model_copy) -> None:
    weights = model_copy / MODEL_DIR / WEIGHTS_NAME
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as info:
        load_run_model(model_copy)
    _one_line_naming(info.value, WEIGHTS_NAME)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


@pytest.mark.parametrize(("name", "damage"), [(WEIGHTS_NAME, _truncate), (MODEL_JSON, Path.unlink)],
                         ids=["truncated-weights", "missing-model-json"])
def test_a_truncated_or_missing_file_is_refused(model_copy, name, damage) -> None:
    damage(model_copy / MODEL_DIR / name)
    with pytest.raises(IntegrityError) as info:
        read_model(model_copy)
    _one_line_naming(info.value, name)


def _other_options(document: dict) -> None:
    document["options"]["model_options"] = {"base_channels": 16}


def _other_format(document: dict) -> None:
    document["format"] = 99


@pytest.mark.parametrize(("name", "edit", "error", "says"), [
    (MODEL_JSON, _other_options, IntegrityError, MODEL_JSON),  # content no longer matches the manifest
    (MANIFEST_NAME, _other_format, DataError, "model format 99"),  # a layout this hsbench does not read
], ids=["edited-model-json", "other-format-version"])
def test_an_edited_model_file_is_refused(model_copy, name, edit, error, says) -> None:
    path = model_copy / MODEL_DIR / name
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    with pytest.raises(error) as info:
        load_run_model(model_copy)
    _one_line_naming(info.value, says)


def test_nothing_in_the_model_folder_is_a_pickle_and_loading_unpickles_nothing(saved_run, monkeypatch) -> None:
    folder = saved_run / MODEL_DIR
    assert sorted(p.name for p in folder.iterdir()) == sorted([WEIGHTS_NAME, MODEL_JSON, MANIFEST_NAME])
    for path in folder.iterdir():
        data = path.read_bytes()
        assert not data.startswith(b"\x80"), f"{path.name} starts with a pickle protocol opcode"
        assert not data.startswith(b"PK"), f"{path.name} is a zip (torch.save) archive"
        assert b"data.pkl" not in data
    json.loads((folder / MODEL_JSON).read_text())
    json.loads((folder / MANIFEST_NAME).read_text())
    weights = (folder / WEIGHTS_NAME).read_bytes()
    header_length = int.from_bytes(weights[:8], "little")
    header = json.loads(weights[8 : 8 + header_length])  # safetensors: a JSON header, then raw tensor bytes
    assert all(entry["dtype"] in {"F32", "F64", "I64", "I32", "BOOL"} for key, entry in header.items()
               if key != "__metadata__")

    def refuse(*args, **kwargs):
        raise AssertionError("loading a saved model must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    strategy, stored = load_run_model(saved_run)
    assert stored.strategy == "in_domain" and strategy.learner.network is not None


def test_the_weights_file_is_as_readable_as_the_rest_of_the_run(saved_run) -> None:
    """safetensors writes 0600; a shared results folder needs the model readable like model.json."""
    folder = saved_run / MODEL_DIR
    assert (folder / WEIGHTS_NAME).stat().st_mode == (folder / MODEL_JSON).stat().st_mode
