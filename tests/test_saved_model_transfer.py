"""Saved models of the transfer strategies ``cross_domain`` and ``s2former``: a run's model folder, restored with
:func:`hsbench.saved_model.load_run_model`, predicts exactly as the run did, without the zoo or the feature cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hsbench.data.dataset import Sample
from hsbench.evaluation import evaluate_view
from hsbench.features import FeatureCache
from hsbench.models.spectral_fm import SpectralFM, fm_config
from hsbench.models.spectral_fm_import import fm_from_artifact
from hsbench.pretraining.spectral_mae import pretrained_spectral_fm
from hsbench.registry import STRATEGIES
from hsbench.runner import Runner, RunSpec
from hsbench.saved_model import load_run_model, model_dir, read_model
from hsbench.splits import Split
from hsbench.strategy import SplitView, Strategy
from hsbench.zoo import Zoo
from strategies.cross_domain import CrossDomain
from strategies.s2former import S2Former

torch.set_num_threads(1)

SPLIT = "fraction=0.5"


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("HSBENCH_HOME", str(home))
    return home


def _run(
    tmp_path: Path, monkeypatch, dataset: str, name: str, options: dict, split: str = SPLIT
) -> tuple[Path, Strategy, Runner]:
    """One run through the Runner; its folder and the fitted strategy the runner evaluated."""
    captured: dict[str, Strategy] = {}
    evaluate = Runner._evaluate

    def capture(self, strategy, *args, **kwargs):
        captured["strategy"] = strategy
        return evaluate(self, strategy, *args, **kwargs)

    monkeypatch.setattr(Runner, "_evaluate", capture)
    runner = Runner(tmp_path / "results", progress=False, num_prediction_images=0)
    outcome = runner.run(RunSpec(dataset, name, split, 0, options))
    monkeypatch.setattr(Runner, "_evaluate", evaluate)
    assert outcome.status == "completed", outcome.error
    assert (model_dir(outcome.run_dir) / "manifest.json").is_file()  # the runner keeps the selected model
    return outcome.run_dir, captured["strategy"], runner


def _test_view(runner: Runner, dataset: str, run_dir: Path) -> SplitView:
    return SplitView.of(runner.dataset(dataset), Split.load(run_dir / "split"), "test")


def _restore_without_zoo(run_dir: Path, tmp_path: Path, monkeypatch) -> tuple[Strategy, Path]:
    """The run's model, restored with HSBENCH_HOME (zoo and feature cache) pointing at an empty folder."""
    empty = tmp_path / "empty_home"
    empty.mkdir()
    monkeypatch.setenv("HSBENCH_HOME", str(empty))
    strategy, stored = load_run_model(run_dir)
    assert stored.strategy == type(strategy).name
    return strategy, empty


def _assert_same_test_confusion(restored: Strategy, view: SplitView, run_dir: Path) -> None:
    stored = np.load(run_dir / "confusion.npz")["test"]
    again = evaluate_view(restored.predict, view).total()
    assert again.sum() > 0
    np.testing.assert_array_equal(again, stored)


# ------------------------------------------------------------------------------------------------------ cross_domain
@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(CrossDomain.smoke_options)))
def test_cross_domain_restored_model_predicts_as_the_run(
    tmp_path: Path, monkeypatch, tiny_registered, _private_home: Path, index: int
) -> None:
    options = CrossDomain.smoke_options[index]
    dataset = tiny_registered["segmentation"]
    run_dir, fitted, runner = _run(tmp_path, monkeypatch, dataset, "cross_domain", options)
    view = _test_view(runner, dataset, run_dir)
    frozen = fitted.cfg["mode"] == "frozen"
    stored = read_model(run_dir)
    if frozen:
        # The FM weights in the model folder are the zoo artifact's, bit for bit.
        artifact = pretrained_spectral_fm(Zoo(), fitted.recipe(), progress=False)
        zoo_weights = fm_from_artifact(artifact).state_dict()
        saved = stored.state.part("fm").tensors
        assert set(saved) == set(zoo_weights)
        for key, tensor in zoo_weights.items():
            assert torch.equal(saved[key], tensor), key
        assert stored.state.meta["fm_checkpoint_hash"] == artifact.checkpoint_hash
    else:
        assert any(key.startswith("network.fm.") for key in stored.state.tensors)
        assert any(key.startswith("network.head.") for key in stored.state.tensors)

    restored, empty = _restore_without_zoo(run_dir, tmp_path, monkeypatch)
    _assert_same_test_confusion(restored, view, run_dir)
    assert not any(empty.rglob("*")), "the restored model read or wrote the zoo or the feature cache"

    # An image from outside the run's dataset (no cache anywhere): the run's model and the restored one agree.
    sample = next(iter(view))
    other = Sample("other", np.asarray(sample.cube, dtype=np.float32)[:, ::-1].copy() * 1.05, sample.labels)
    np.testing.assert_array_equal(restored.predict(other), fitted.predict(other))

    if frozen:
        # Without a cache the restored model computes features from its own FM: the values the cache holds.
        features = restored.mode.features
        assert features.cache is None
        cache = FeatureCache(checkpoint_hash=stored.state.meta["fm_checkpoint_hash"],
                             dataset_fingerprint=runner.dataset(dataset).fingerprint,
                             wavelengths_nm=fitted.card.wavelengths_nm, root=_private_home / "features")
        for test_sample in view:
            cached = cache.lookup(np.asarray(test_sample.cube))
            assert cached is not None
            np.testing.assert_array_equal(features.raw(test_sample.cube), cached)
        # computed from the restored FM (no cache to read), each test image once: later calls hit the memo
        assert features.computed == len(list(view)) + 1  # the test images and the outside image


def _hypersl_checkpoint(path: Path) -> Path:
    """A HyperSL-style torch checkpoint (``module.``-prefixed names, no config): imported with HyperSL's last block."""
    torch.manual_seed(0)
    fm = SpectralFM(fm_config("tiny", {"dim": 16, "depth": 2, "heads": 2}))
    torch.save({"model": {f"module.{k}": v for k, v in fm.state_dict().items()}}, path)
    return path


VARIANTS = {
    "hypersl_unet": {"head": "unet", "head_options": {"base_channels": 8}, "fm_size": "tiny",
                     "fm_options": {"dim": 16, "depth": 2, "heads": 2}},
    "zoo_deeplab_raw": {"head": "deeplabv3plus", "feature_input": "raw",
                        "head_options": {"width_mult": 0.25, "aspp_channels": 16, "aspp_rates": [1, 2, 3]}},
    "hypersl_finetune_runet": {"mode": "finetune", "head": "runet", "head_options": {"base_channels": 8},
                               "fm_options": {"dim": 16, "depth": 2, "heads": 2}, "epochs": 3,
                               "finetune_crop_size": 16, "finetune_eval_every": 3},
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cross_domain_variants_restore_without_their_weights_file(
    tmp_path: Path, monkeypatch, tiny_registered, variant: str
) -> None:
    """Other heads, ``feature_input=raw``, and a HyperSL checkpoint (final block in HyperSL's form) that is gone
    when the model is restored: the model folder carries the FM."""
    options = {**CrossDomain.smoke_options[0], **VARIANTS[variant], "epochs": VARIANTS[variant].get("epochs", 3)}
    weights = None
    if variant.startswith("hypersl"):
        weights = _hypersl_checkpoint(tmp_path / "hypersl.pt")
        options["weights"] = str(weights)
    dataset = tiny_registered["segmentation"]
    run_dir, fitted, runner = _run(tmp_path, monkeypatch, dataset, "cross_domain", options)
    meta = read_model(run_dir).state.meta
    if weights is not None:
        assert meta["fm_config"]["final_block"] == "hypersl"
        weights.unlink()
    restored, _ = _restore_without_zoo(run_dir, tmp_path, monkeypatch)
    _assert_same_test_confusion(restored, _test_view(runner, dataset, run_dir), run_dir)


def test_cross_domain_model_keeps_fm_config_and_source_hash(tmp_path: Path, monkeypatch, tiny_registered) -> None:
    options = {**CrossDomain.smoke_options[1], "epochs": 1}
    dataset = tiny_registered["segmentation"]
    run_dir, fitted, _ = _run(tmp_path, monkeypatch, dataset, "cross_domain", options)
    meta = read_model(run_dir).state.meta
    assert meta["mode"] == "frozen"
    assert meta["fm_config"] == fitted.fm_config.to_dict()
    assert meta["standardize"] == {"kind": "standardize", "out_channels": None}
    state = read_model(run_dir).state
    assert state.part("standardize").array("mean").dtype == np.float64  # fitted statistics kept exactly


# ---------------------------------------------------------------------------------------------------------- s2former
@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(S2Former.smoke_options)))
def test_s2former_restored_model_predicts_as_the_run(tmp_path: Path, monkeypatch, tiny_registered, index: int) -> None:
    options = S2Former.smoke_options[index]
    dataset = tiny_registered["segmentation"]
    run_dir, fitted, runner = _run(tmp_path, monkeypatch, dataset, "s2former", options)
    state = read_model(run_dir).state
    assert not any(key.startswith("network.teacher.") or ".teacher." in key for key in state.tensors)
    np.testing.assert_array_equal(state.array("band_valid"), fitted.band_valid)
    np.testing.assert_array_equal(state.part("transform").array("matrix"), fitted.transform.matrix)
    assert state.meta["tile_size"] == fitted.tile

    restored, empty = _restore_without_zoo(run_dir, tmp_path, monkeypatch)
    view = _test_view(runner, dataset, run_dir)
    _assert_same_test_confusion(restored, view, run_dir)
    assert not any(empty.rglob("*")), "the restored model read or wrote the zoo"
    sample = next(iter(view))
    other = Sample("other", np.asarray(sample.cube, dtype=np.float32)[:, :, ::-1].copy() * 0.95, sample.labels)
    np.testing.assert_array_equal(restored.predict(other), fitted.predict(other))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cross_domain", "s2former"])
def test_restored_model_predicts_a_scene_as_the_run(tmp_path: Path, monkeypatch, tiny_registered, name: str) -> None:
    """On a scene (kshot split, tile-centre prediction for s2former; the test scene read whole)."""
    options = STRATEGIES.module_dict[name].smoke_options[0]
    dataset = tiny_registered["scene"]
    run_dir, _, runner = _run(tmp_path, monkeypatch, dataset, name, options, split="kshot=10")
    restored, _ = _restore_without_zoo(run_dir, tmp_path, monkeypatch)
    assert restored.card.task == "scene"
    _assert_same_test_confusion(restored, _test_view(runner, dataset, run_dir), run_dir)


_FRESH = """
import sys
from hsbench.evaluation import evaluate_view
from hsbench.saved_model import load_run_model
from hsbench.splits import Split
from hsbench.strategy import SplitView
sys.path.insert(0, sys.argv[2])
from conftest import make_tiny_dataset
strategy, _ = load_run_model(sys.argv[1])
view = SplitView.of(make_tiny_dataset(), Split.load(sys.argv[1] + "/split"), "test")
print(evaluate_view(strategy.predict, view).total().tolist())
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cross_domain", "s2former"])
def test_a_fresh_process_without_zoo_reproduces_the_run(tmp_path: Path, monkeypatch, tiny_registered, name) -> None:
    """Another Python process, an empty HSBENCH_HOME (no zoo artifact, no feature cache), default thread count."""
    run_dir, _, _ = _run(tmp_path, monkeypatch, tiny_registered["segmentation"], name,
                         STRATEGIES.module_dict[name].smoke_options[0])
    empty = tmp_path / "empty_home"
    empty.mkdir()
    env = {**os.environ, "HSBENCH_HOME": str(empty)}
    done = subprocess.run([sys.executable, "-c", _FRESH, str(run_dir), str(Path(__file__).parent)], env=env,
                          capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
    assert json.loads(done.stdout.strip().splitlines()[-1]) == np.load(run_dir / "confusion.npz")["test"].tolist()
    assert not any(empty.rglob("*"))


def test_both_strategies_say_they_save_models() -> None:
    assert STRATEGIES.module_dict["cross_domain"].saves_model()
    assert STRATEGIES.module_dict["s2former"].saves_model()
