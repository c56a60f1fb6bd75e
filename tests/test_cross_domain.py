"""Strategy ``cross_domain``: the feature cache, both modes, options, and the run a user types."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import torch

from hsbench.cli import main
from hsbench.errors import ConfigError
from hsbench.features import FeatureCache, FrozenFeatures, extract_cube
from hsbench.models.spectral_fm import SpectralFM, fm_config
from hsbench.models.spectral_fm_import import fm_from_artifact
from hsbench.registry import STRATEGIES, lookup
from hsbench.runner import Runner, RunSpec
from hsbench.seeding import SeedStreams
from hsbench.splits import make_split
from hsbench.strategy import RunContext, SplitView
from hsbench.zoo import Zoo

torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)

MICRO_OPTIONS = {
    "fm_options": {"dim": 16, "depth": 1, "heads": 2},
    "source_options": {"num_images": 3, "height": 16, "width": 16},
    "pretrain_pixels": 512,
    "pretrain_epochs": 1,
    "pretrain_batch_size": 128,
}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HSBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def micro_fm() -> SpectralFM:
    torch.manual_seed(0)
    return SpectralFM(fm_config("tiny", {"dim": 16, "depth": 1, "heads": 2})).eval()


def test_extraction_matches_the_model_pixel_by_pixel(tiny_dataset) -> None:
    model, cube = micro_fm(), tiny_dataset.load(tiny_dataset.sample_ids[0]).cube
    wavelengths = np.asarray(tiny_dataset.card.wavelengths_nm)
    features = extract_cube(model, cube, wavelengths, batch_pixels=100)
    with torch.no_grad():
        pixel = model(torch.from_numpy(cube[:, 5, 7][None].copy()), torch.tensor(wavelengths, dtype=torch.float32))
    assert features.shape == (16, *cube.shape[1:])
    np.testing.assert_allclose(features[:, 5, 7], pixel[0].numpy(), rtol=1e-5, atol=1e-5)


def make_cache(dataset, **kwargs) -> FeatureCache:
    return FeatureCache(checkpoint_hash="c" * 64, dataset_fingerprint=dataset.fingerprint,
                        wavelengths_nm=dataset.card.wavelengths_nm, **kwargs)


def test_a_cache_hit_skips_extraction(tiny_dataset, home) -> None:
    model = micro_fm()
    first = FrozenFeatures(model, tiny_dataset.card.wavelengths_nm, cache=make_cache(tiny_dataset))
    stats = first.cache.build(tiny_dataset, first.extract)
    assert not stats["feature_cache_hit"] and first.computed == len(tiny_dataset)
    assert first.cache.folder.is_relative_to(home / "features")

    second = FrozenFeatures(model, tiny_dataset.card.wavelengths_nm, cache=make_cache(tiny_dataset))
    stats = second.cache.build(tiny_dataset, second.extract)
    cube = tiny_dataset.load(tiny_dataset.sample_ids[3]).cube
    cached = second.raw(cube)
    assert stats["feature_cache_hit"] and second.computed == 0
    np.testing.assert_allclose(cached, extract_cube(model, cube, tiny_dataset.card.wavelengths_nm), atol=2e-3)
    # A cube the cache does not hold is computed, never confused with a stored one.
    assert second.raw(cube + 1.0).shape == cached.shape and second.computed == 1


def test_the_cache_key_includes_checkpoint_dataset_and_wavelengths(tiny_dataset) -> None:
    base = make_cache(tiny_dataset).folder
    other_checkpoint = FeatureCache(checkpoint_hash="d" * 64, dataset_fingerprint=tiny_dataset.fingerprint,
                                    wavelengths_nm=tiny_dataset.card.wavelengths_nm).folder
    other_bands = FeatureCache(checkpoint_hash="c" * 64, dataset_fingerprint=tiny_dataset.fingerprint,
                               wavelengths_nm=tuple(w + 1 for w in tiny_dataset.card.wavelengths_nm)).folder
    assert len({base, other_checkpoint, other_bands}) == 3


def test_an_interrupted_extraction_resumes(tiny_dataset) -> None:
    model = micro_fm()
    features = FrozenFeatures(model, tiny_dataset.card.wavelengths_nm, cache=make_cache(tiny_dataset))
    calls = []

    def dies_after_two(cube):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return features.extract(cube)

    with pytest.raises(KeyboardInterrupt):
        features.cache.build(tiny_dataset, dies_after_two)
    assert not features.cache.complete
    assert not [p for p in features.cache.folder.iterdir() if p.name.endswith(".tmp")]
    stats = features.cache.build(tiny_dataset, features.extract)
    index = json.loads(features.cache.index_path.read_text())
    assert not stats["feature_cache_hit"] and index["extracted_samples"] == len(tiny_dataset) - 2


def run(tiny_registered, tmp_path, options: dict, task: str = "segmentation"):
    split = "fraction=0.5" if task == "segmentation" else "kshot=10"
    spec = RunSpec(tiny_registered[task], "cross_domain", split, 0, {**MICRO_OPTIONS, **options})
    return Runner(tmp_path / "results", progress=False).run(spec)


def test_finetune_trains_the_foundation_model_and_the_head(tiny_dataset, tmp_path) -> None:
    cls = lookup(STRATEGIES, "cross_domain")
    options = {**cls.defaults, **MICRO_OPTIONS, "mode": "finetune", "head": "mlp", "epochs": 3, "lr": 0.01,
               "finetune_crop_size": 16, "finetune_eval_every": 3}
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)
    strategy = cls(options, ctx, tiny_dataset.card)
    split = make_split(tiny_dataset, "fraction=0.5", 0)
    facts = strategy.fit(*(SplitView(tiny_dataset, split.parts[p], p) for p in ("train", "val")))
    pretrained = fm_from_artifact(Zoo().artifacts()[0]).state_dict()
    tuned = strategy.mode.learner.network.fm.state_dict()
    assert facts["epochs_run"] == 3 and not torch.equal(tuned["global_token"], pretrained["global_token"])
    # BatchNorm statistics stay the pretrained ones (the FM's BatchNorm is kept in eval mode).
    assert torch.equal(tuned["embedding_layer_1.1.running_mean"], pretrained["embedding_layer_1.1.running_mean"])
    sample = tiny_dataset.load(next(iter(split.parts["test"])))
    assert strategy.predict(sample).shape == sample.labels.shape


def test_learning_rate_groups_follow_the_fm_scale() -> None:
    from hsbench.engine import EngineConfig
    from hsbench.finetune import adamw_lr_scaled

    fm, head = micro_fm(), torch.nn.Linear(2, 2)
    for p in fm.parameters():
        p.lr_scale = 0.1
    optimizer = adamw_lr_scaled([*fm.parameters(), *head.parameters()], EngineConfig(lr=0.01))
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx([0.001, 0.01])


def test_user_weights_file_is_used_instead_of_the_zoo(tiny_registered, tmp_path, home) -> None:
    path = tmp_path / "fm.pt"
    torch.save({"model": {f"module.{k}": v for k, v in micro_fm().state_dict().items()}}, path)
    outcome = run(tiny_registered, tmp_path, {"weights": str(path), "head": "mlp", "epochs": 4, "lr": 0.01})
    assert outcome.status == "completed", outcome.error
    facts = json.loads((outcome.run_dir / "facts.json").read_text())
    assert facts["fm_source"] == str(path) and facts["fm_unmatched_keys"] == []
    assert not (home / "zoo").exists()


def test_labels_options_and_search_spaces() -> None:
    cls = lookup(STRATEGIES, "cross_domain")
    assert cls.name == "cross_domain" and STRATEGIES.module_dict["cross_domain"] is cls
    assert cls.label(cls.defaults) == "cross_domain/runet"
    assert cls.label({**cls.defaults, "mode": "finetune", "head": "mlp"}) == "cross_domain/mlp/finetune"
    for options in ({}, {"head": "mlp"}, {"mode": "finetune", "head": "deeplabv3plus"}):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        space = cls.search_space(trial, options)
        assert {"lr", "head_options"} <= set(space)
        assert ("fm_lr_scale" in space) == (options.get("mode") == "finetune")


@pytest.mark.parametrize(("option", "value"), [("mode", "partial"), ("head", "svm"), ("fm_size", "gigantic")])
def test_bad_options_fail_clearly(tiny_registered, tmp_path, option, value) -> None:
    with pytest.raises(ConfigError, match=option if option != "fm_size" else "sizes are"):
        run(tiny_registered, tmp_path, {option: value})


@pytest.mark.slow
def test_cli_run_on_synthetic_drive_end_to_end(tmp_path, home, capsys) -> None:
    """``hsbench run --strategy cross_domain --dataset synthetic_drive --split fraction=0.05 --epochs 2``, test-sized.

    Two seeds: the first pretrains into the zoo and extracts features, the second reuses both.
    """
    argv = ["run", "--strategy", "cross_domain", "--dataset", "synthetic_drive", "--split", "fraction=0.05",
            "--epochs", "2", "--seeds", "0,1", "--results", str(tmp_path / "results"), "--no-progress",
            "--cfg-options", "fm_options={dim: 16, depth: 1, heads: 2}", "pretrain_epochs=1", "pretrain_pixels=1024",
            "source_options={num_images: 3}", "head_options.base_channels=8", "min_steps_per_epoch=1"]
    assert main(argv) == 0
    assert "cross_domain/runet" in capsys.readouterr().out
    facts = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*/facts.json")]
    assert sorted(f["feature_cache_hit"] for f in facts) == [False, True]
    assert {f["fm_source"] for f in facts} == {str(next((home / "zoo").iterdir()))}


def test_a_cube_outside_the_cache_is_computed_once_and_gives_the_same_features() -> None:
    """A scene's val view (test pixels hidden) is not in the cache; it is evaluated after every epoch, so its
    features are kept in memory: computed once, identical each time, and never changed by a caller."""
    import numpy as np
    import torch

    from hsbench.features import FrozenFeatures
    from hsbench.models.spectral_fm import SpectralFM, SpectralFMConfig

    torch.manual_seed(0)
    model = SpectralFM(SpectralFMConfig(dim=16, depth=1, heads=2)).eval()
    features = FrozenFeatures(model, tuple(np.linspace(400, 900, 12)), as_cached=True)
    cube = np.random.default_rng(0).random((12, 6, 5), dtype=np.float32)
    first = features.raw(cube)
    first += 1.0  # a caller scaling in place must not change what the next call gets
    again = features.raw(cube)
    np.testing.assert_array_equal(again, first - 1.0)
    assert features.computed == 1
    other = features.raw(cube[:, :3])  # another cube: computed, not mixed up with the first
    assert features.computed == 2 and other.shape == (16, 3, 5)
    no_memo = FrozenFeatures(model, tuple(np.linspace(400, 900, 12)), as_cached=True, memo_bytes=0)
    np.testing.assert_array_equal(no_memo.raw(cube), again)
    no_memo.raw(cube)
    assert no_memo.computed == 2
