"""Integrity of what hsbench writes and trusts later (zoo, feature caches, prepared data, user weights), and strict
loading of checkpoints. Each fault test damages a real file the way a disk, a copy or a user would."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from hsbench.errors import ConfigError, DataError, HsbenchError
from hsbench.runner import Runner, RunSpec
from hsbench.zoo import Zoo, read_weights_file

torch.set_num_threads(1)

MICRO = {
    "fm_options": {"dim": 16, "depth": 1, "heads": 2},
    "source_options": {"num_images": 3, "height": 16, "width": 16},
    "pretrain_pixels": 512, "pretrain_epochs": 1, "pretrain_batch_size": 128,
    "head": "mlp", "epochs": 3, "lr": 0.01,
}
RECIPE = {"model": "x", "epochs": 1}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HSBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def damage(path: Path, how: str) -> None:
    """Damage a file in place: same-shape zeros (``.npy`` / safetensors tensors), truncation, or one flipped bit."""
    if how == "zeros" and path.suffix == ".npy":
        array = np.load(path)
        np.save(path, np.zeros_like(array))
    elif how == "zeros":
        tensors = safetensors.torch.load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata()
        safetensors.torch.save_file({k: torch.zeros_like(v) for k, v in tensors.items()}, str(path), metadata=header)
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "bitflip":
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x10
        path.write_bytes(bytes(data))
    _forget()


def _forget() -> None:
    try:  # the per-process hash memo keys on mtime; a rewrite within one clock tick must not be served stale
        from hsbench.integrity import forget
    except ImportError:  # code before hsbench.integrity existed
        return
    forget()


def counting_build(calls: list[int]):
    def build():
        calls.append(1)
        return {"w": torch.arange(4.0)}, {"loss_curve": [1.0]}

    return build


def run(dataset: str, results: Path, options: dict):
    spec = RunSpec(dataset, "cross_domain", "fraction=0.5", 0, {**MICRO, **options})
    return Runner(results, progress=False).run(spec)


def facts_of(outcome) -> dict:
    assert outcome.status == "completed", outcome.error
    return json.loads((outcome.run_dir / "facts.json").read_text())


def metrics_of(outcome) -> dict:
    return json.loads((outcome.run_dir / "metrics.json").read_text())


# ------------------------------------------------------------------------------------------------ hsbench.integrity
def test_file_hash_is_sha256_streamed_and_remembered(tmp_path, monkeypatch) -> None:
    from hsbench import integrity

    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (3 << 20))
    assert integrity.file_hash(path) == sha256(path)
    opened = []
    monkeypatch.setattr(integrity, "open", lambda *a, **k: opened.append(a) or open(*a, **k), raising=False)
    assert integrity.file_hash(path) == sha256(path) and opened == []  # remembered: no second read
    path.write_bytes(b"y" * 10)  # other size: hashed again
    assert integrity.file_hash(path) == sha256(path) and len(opened) == 1


def test_verify_names_the_file_and_both_hashes(tmp_path) -> None:
    from hsbench.integrity import IntegrityError, verify

    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert verify(path, sha256(path)) == sha256(path)
    with pytest.raises(IntegrityError) as info:
        verify(path, "0" * 64)
    message = str(info.value)
    assert str(path) in message and "0" * 64 in message and sha256(path) in message and "\n" not in message
    assert isinstance(info.value, DataError)
    with pytest.raises(IntegrityError, match=f"{tmp_path / 'gone'}.*unreadable"):
        verify(tmp_path / "gone", "0" * 64)


def test_move_aside_keeps_the_file_and_warns_once(tmp_path, caplog) -> None:
    from hsbench.integrity import move_aside

    path = tmp_path / "cache.npy"
    path.write_bytes(b"bad")
    with caplog.at_level(logging.WARNING, logger="hsbench"):
        moved = move_aside(path, "test")
        assert move_aside(path, "again") is None  # already gone (another process moved it): nothing, no warning
    assert not path.exists() and moved.read_bytes() == b"bad" and moved.name.startswith("cache.npy.corrupt-")
    assert len(caplog.records) == 1 and str(path) in caplog.records[0].getMessage()


# ---------------------------------------------------------------------------------------------------------- zoo
@pytest.mark.parametrize("how", ["zeros", "truncated", "bitflip"])
def test_a_damaged_zoo_artifact_is_moved_aside_and_rebuilt(home, how, caplog) -> None:
    calls: list[int] = []
    zoo = Zoo()
    first = zoo.get_or_create(RECIPE, "fp", counting_build(calls))
    damage(first.weights_path, how)
    with caplog.at_level(logging.WARNING, logger="hsbench"):
        again = Zoo().get_or_create(RECIPE, "fp", counting_build(calls))
    assert calls == [1, 1]  # rebuilt, never served
    assert again.checkpoint_hash == sha256(again.weights_path) == first.checkpoint_hash
    assert torch.equal(again.state_dict()["w"], torch.arange(4.0))
    aside = [p for p in zoo.root.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and Zoo().artifacts() == [again]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(first.path) in warnings[0].getMessage()


def test_unreadable_zoo_metadata_is_moved_aside_and_rebuilt(home) -> None:
    calls: list[int] = []
    first = Zoo().get_or_create(RECIPE, "fp", counting_build(calls))
    (first.path / "metadata.json").write_text("{not json")
    assert Zoo().get(RECIPE, "fp") is None
    assert Zoo().get_or_create(RECIPE, "fp", counting_build(calls)) is not None and calls == [1, 1]


@pytest.mark.parametrize("how", ["zeros", "truncated"])
def test_cross_domain_records_the_verified_hash_of_zoo_weights(tiny_registered, tmp_path, home, how) -> None:
    dataset = tiny_registered["segmentation"]
    facts_of(run(dataset, tmp_path / "r1", {}))
    (artifact,) = Zoo().artifacts()
    damage(artifact.weights_path, how)
    facts = facts_of(run(dataset, tmp_path / "r2", {}))  # not a crash naming no file, not a silent zero model
    (rebuilt,) = Zoo().artifacts()
    assert facts["fm_checkpoint_hash"] == sha256(rebuilt.weights_path)


# ----------------------------------------------------------------------------------------------- feature caches
@pytest.mark.parametrize("how", ["zeros", "truncated"])
def test_a_damaged_feature_cache_is_rebuilt_and_not_called_a_hit(tiny_registered, tmp_path, home, how) -> None:
    dataset = tiny_registered["segmentation"]
    intact = run(dataset, tmp_path / "r1", {})
    assert facts_of(intact)["feature_cache_hit"] is False
    files = sorted((home / "features").rglob("*.npy"))
    assert files
    for path in files:
        damage(path, how)
    rerun = run(dataset, tmp_path / "r2", {})
    facts = facts_of(rerun)
    assert facts["feature_cache_hit"] is False and facts["feature_extracted_samples"] == len(files)
    assert metrics_of(rerun)["test"] == metrics_of(intact)["test"]  # the same numbers as from the intact cache
    assert len(list((home / "features").rglob("*.corrupt-*"))) == len(files)
    assert facts_of(run(dataset, tmp_path / "r3", {}))["feature_cache_hit"] is True


def test_a_feature_file_damaged_after_the_check_is_recomputed_on_read(tiny_dataset, home) -> None:
    from hsbench.features import FeatureCache, FrozenFeatures
    from hsbench.models.spectral_fm import SpectralFM, fm_config

    model = SpectralFM(fm_config("tiny", MICRO["fm_options"])).eval()
    cache = FeatureCache(checkpoint_hash="c" * 64, dataset_fingerprint=tiny_dataset.fingerprint,
                         wavelengths_nm=tiny_dataset.card.wavelengths_nm)
    features = FrozenFeatures(model, tiny_dataset.card.wavelengths_nm, cache=cache)
    assert cache.build(tiny_dataset, features.extract)["feature_cache_hit"] is False
    cube = tiny_dataset.load(tiny_dataset.sample_ids[0]).cube
    good = features.raw(cube)
    before = features.computed
    for path in cache.folder.glob("*.npy"):
        damage(path, "zeros")
    np.testing.assert_allclose(features.raw(cube), good, atol=2e-3)  # float32 now, float16 stored
    assert features.computed == before + 1


# ------------------------------------------------------------------------------------------ user weights files
def _fm_file(tmp_path: Path) -> Path:
    from hsbench.models.spectral_fm import SpectralFM, fm_config

    torch.manual_seed(0)
    path = tmp_path / "fm.pt"
    torch.save({"model": SpectralFM(fm_config("tiny", MICRO["fm_options"])).state_dict()}, path)
    return path


def test_weights_sha256_mismatch_is_one_line_naming_the_file_and_both_hashes(tiny_registered, tmp_path) -> None:
    path = _fm_file(tmp_path)
    wrong = "ab" * 32
    with pytest.raises(HsbenchError) as info:
        run(tiny_registered["segmentation"], tmp_path / "r", {"weights": str(path), "weights_sha256": wrong})
    message = str(info.value)
    assert str(path) in message and wrong in message and sha256(path) in message and "\n" not in message
    facts = facts_of(run(tiny_registered["segmentation"], tmp_path / "r2",
                         {"weights": str(path), "weights_sha256": sha256(path).upper()}))
    assert facts["fm_weights_sha256"] == sha256(path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_truncated_user_weights_file_is_one_error_naming_it(tmp_path, suffix) -> None:
    path = tmp_path / f"w{suffix}"
    tensors = {"a": torch.randn(64, 64)}
    safetensors.torch.save_file(tensors, str(path)) if suffix == ".safetensors" else torch.save(tensors, path)
    damage(path, "truncated")
    with pytest.raises(HsbenchError, match=str(path)) as info:
        read_weights_file(path)
    assert "\n" not in str(info.value)


def test_a_truncated_rgb_weights_file_is_one_error_naming_it(tmp_path) -> None:
    from hsbench.models.rgb_weights import read_checkpoint

    path = tmp_path / "rgb.safetensors"
    safetensors.torch.save_file({"features.0.0.weight": torch.randn(8, 3, 3, 3)}, str(path))
    damage(path, "truncated")
    with pytest.raises(HsbenchError, match=str(path)):
        read_checkpoint(path)


# --------------------------------------------------------------------------------------------- strict loading
def test_hsbench_own_safetensors_file_loads_strictly(tmp_path, home) -> None:
    from hsbench.models.spectral_fm_import import load_weights_file

    artifact = Zoo().get_or_create(RECIPE, "fp", _fm_state_build())
    tensors = artifact.state_dict()
    del tensors[sorted(tensors)[-1]]
    from safetensors import safe_open

    with safe_open(str(artifact.weights_path), framework="pt") as handle:
        header = handle.metadata()
    path = tmp_path / "own.safetensors"
    safetensors.torch.save_file(tensors, str(path), metadata=header)
    with pytest.raises(ConfigError, match=f"{path}.*missing: {sorted(artifact.state_dict())[-1]}"):
        load_weights_file(path, strict=False)  # own files are never loaded in part, whatever the option says


def _fm_state_build():
    from hsbench.models.spectral_fm import SpectralFM, fm_config
    from hsbench.models.spectral_fm_import import MODEL_CONFIG_KEY

    cfg = fm_config("tiny", MICRO["fm_options"])

    def build():
        return SpectralFM(cfg).state_dict(), {MODEL_CONFIG_KEY: cfg.to_dict(), "loss_curve": [1.0]}

    return build


def test_a_partial_foreign_checkpoint_needs_strict_false(tiny_registered, tmp_path) -> None:
    path = tmp_path / "hypersl.pt"
    from hsbench.models.spectral_fm import SpectralFM, fm_config

    state = SpectralFM(fm_config("tiny", MICRO["fm_options"])).state_dict()
    dropped = next(k for k in state if k.endswith(".bias"))
    torch.save({"model": {**{k: v for k, v in state.items() if k != dropped}, "extra.weight": torch.ones(2)}}, path)
    dataset = tiny_registered["segmentation"]
    with pytest.raises(ConfigError, match=f"missing: {dropped}.*unexpected: extra.weight.*strict=false"):
        run(dataset, tmp_path / "r1", {"weights": str(path)})
    facts = facts_of(run(dataset, tmp_path / "r2", {"weights": str(path), "strict": False}))
    assert facts["fm_unmatched_keys"] == [dropped, "extra.weight"]


def test_a_partial_rgb_checkpoint_needs_strict_false(tmp_path, tiny_dataset) -> None:
    from test_rgb_weights import vainf_deeplabv3plus_mobilenet_state

    from hsbench.seeding import SeedStreams
    from hsbench.strategy import RunContext
    from strategies.cross_modality import CrossModality

    def strategy(**options) -> CrossModality:
        ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)
        return CrossModality({**CrossModality.defaults, **options}, ctx, tiny_dataset.card)

    state = vainf_deeplabv3plus_mobilenet_state()
    dropped = next(k for k in state if k.startswith("classifier.aspp.convs.1."))
    path = tmp_path / "vainf.pth"
    torch.save({"model_state": {k: v for k, v in state.items() if k != dropped}}, path)
    with pytest.raises(ConfigError, match="load only in part: missing: aspp.branches.1.*strict=false"):
        strategy(weights=str(path)).pretrained_network()
    _, facts = strategy(weights=str(path), strict=False).pretrained_network()
    assert facts["weights_sha256"] == sha256(path) and "aspp.branches" in facts["weights_random_modules"]


# ---------------------------------------------------------------------------------------------- prepared datasets
@pytest.fixture
def raw(tmp_path: Path) -> Path:
    """Raw files of ``test_prepared``'s fake dataset (six samples)."""
    from test_prepared import OFFICIAL, _write_raw

    for i, sample_id in enumerate(OFFICIAL.train + OFFICIAL.val + OFFICIAL.test):
        _write_raw(tmp_path / "raw", sample_id, i)
    return tmp_path / "raw"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def registered():
    from test_prepared import FakeProvider

    from hsbench.registry import DATASETS, _ensure_plugins_loaded

    _ensure_plugins_loaded()
    DATASETS.register_module(name="fake_hsi", module=FakeProvider, force=True)
    yield FakeProvider
    DATASETS.module_dict.pop("fake_hsi", None)


def _cli(argv: list[str]) -> int:
    from test_prepared import _cli as prepare_cli

    return prepare_cli(argv)


def _prepared_file(root: Path, sample: str = "s2", name: str = "cube.npy") -> Path:
    return root / "fake_hsi" / "samples" / sample / name


@pytest.mark.parametrize("how", ["truncated", "padded", "header"])
def test_a_prepared_file_of_wrong_size_or_header_is_one_error_naming_it(raw, root, registered, how) -> None:
    from hsbench.data.prepared import open_prepared, prepare_dataset

    prepare_dataset(registered, raw, root, progress=False)
    path = _prepared_file(root)
    cube = np.load(path)
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:-8])
    elif how == "padded":
        path.write_bytes(path.read_bytes() + b"\0" * 16)
    else:  # same bytes, another shape: a band-count mistake that reads "fine"
        np.save(path, cube.reshape(cube.shape[0] * 2, -1, cube.shape[2]))
    dataset = open_prepared(registered, root)
    with pytest.raises(DataError) as info:
        dataset.load("s2")
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    if how != "header":
        size = path.stat().st_size
        assert f"has {size} bytes" in message and "header implies" in message


def test_prepare_verify_finds_a_flipped_bit_and_the_next_prepare_restores_it(raw, root, registered, capsys) -> None:
    args = ["fake_hsi", "--data-root", str(root), "--no-progress"]
    assert _cli([*args, "--raw", str(raw)]) == 0
    damage(_prepared_file(root), "bitflip")  # same size, same header: only the full hash sees it
    assert _cli([*args, "--verify"]) == 1
    out = capsys.readouterr().out
    assert "s2:" in out and str(_prepared_file(root)) in out and "expected sha256" in out
    assert _cli([*args, "--raw", str(raw)]) == 0 and "prepared 1, skipped 5" in capsys.readouterr().out
    assert _cli([*args, "--verify"]) == 0 and "verified 6 sample(s)" in capsys.readouterr().out


def test_prepare_verify_of_an_older_manifest_checks_content_and_records_hashes(raw, root, registered,
                                                                                capsys) -> None:
    args = ["fake_hsi", "--data-root", str(root), "--no-progress"]
    assert _cli([*args, "--raw", str(raw)]) == 0
    manifest_path = root / "fake_hsi" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["samples"]:
        del entry["files"]  # as written before file hashes existed
    manifest_path.write_text(json.dumps(manifest))
    damage(_prepared_file(root, "s3"), "bitflip")
    assert _cli([*args, "--verify"]) == 1
    out = capsys.readouterr().out
    assert "file hashes recorded now for 5" in out and "s3:" in out and "content digest" in out
    assert all(e.get("files") for e in json.loads(manifest_path.read_text())["samples"])


def test_prepare_needs_raw_unless_it_only_verifies(root, registered, capsys) -> None:
    assert _cli(["fake_hsi", "--data-root", str(root)]) == 2
    assert "--raw DIR" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------- splits
@pytest.mark.parametrize("how", ["truncated", "bitflip"])
def test_a_damaged_split_file_is_one_error_naming_it(tiny_dataset, tmp_path, how) -> None:
    from hsbench.splits import make_split
    from hsbench.splits._split import Split

    make_split(tiny_dataset, "fraction=0.5", 0).save(tmp_path)
    masks = tmp_path / "split_masks.npz"
    damage(masks, how)
    with pytest.raises(DataError, match=str(tmp_path)) as info:
        Split.load(tmp_path)
    assert "\n" not in str(info.value)
