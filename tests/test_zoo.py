"""The zoo: content addressing, atomic artifacts, metadata, user weight files, and ``hsbench pretrain``."""

from __future__ import annotations

import argparse
import json

import pytest
import safetensors.torch
import torch

import hsbench
from hsbench.cli import pretrain
from hsbench.errors import ConfigError
from hsbench.models.spectral_fm import fm_config
from hsbench.models.spectral_fm_import import fm_from_artifact, load_weights_file
from hsbench.zoo import Zoo, read_weights_file

torch.set_num_threads(1)

RECIPE = {"model": "x", "epochs": 1}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HSBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def counting_build(calls: list[int]):
    def build():
        calls.append(1)
        return {"w": torch.arange(4.0)}, {"loss_curve": [2.0, 1.0]}

    return build


def test_default_root_follows_hsbench_home(home) -> None:
    assert Zoo().root == home / "zoo"


def test_get_or_create_builds_once_and_records_metadata(home) -> None:
    calls: list[int] = []
    zoo = Zoo()
    first = zoo.get_or_create(RECIPE, "fp1", counting_build(calls))
    second = Zoo().get_or_create(RECIPE, "fp1", counting_build(calls))
    assert calls == [1] and first == second
    assert first.path.parent == home / "zoo" and first.weights_path.suffix == ".safetensors"
    meta = json.loads((first.path / "metadata.json").read_text())
    assert meta["recipe"] == RECIPE and meta["source_fingerprint"] == "fp1" and meta["loss_curve"] == [2.0, 1.0]
    assert meta["hsbench_version"] == hsbench.__version__ and meta["git_commit"] and meta["created_utc"]
    assert torch.equal(first.state_dict()["w"], torch.arange(4.0))
    assert len(first.checkpoint_hash) == 64 and zoo.artifacts() == [first]


def test_key_depends_on_recipe_and_source_data() -> None:
    key = Zoo.artifact_key(RECIPE, "fp1")
    assert key == Zoo.artifact_key(dict(reversed(list(RECIPE.items()))), "fp1")
    assert key != Zoo.artifact_key({**RECIPE, "epochs": 2}, "fp1")
    assert key != Zoo.artifact_key(RECIPE, "fp2")


def test_an_interrupted_build_leaves_no_artifact(home) -> None:
    zoo = Zoo()

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zoo.get_or_create(RECIPE, "fp1", interrupted)
    assert zoo.get(RECIPE, "fp1") is None
    assert not [p for p in (home / "zoo").iterdir() if p.is_dir()]  # no staged folder left either
    calls: list[int] = []
    assert zoo.get_or_create(RECIPE, "fp1", counting_build(calls)) is not None and calls == [1]


def test_a_half_written_folder_is_not_an_artifact(home) -> None:
    zoo = Zoo()
    folder = zoo.root / Zoo.artifact_key(RECIPE, "fp1")
    folder.mkdir(parents=True)
    (folder / "weights.safetensors").write_bytes(b"truncated")
    assert zoo.get(RECIPE, "fp1") is None


def test_put_keeps_an_existing_artifact() -> None:
    zoo = Zoo()
    first = zoo.put("k", {"w": torch.zeros(2)}, {"recipe": {}})
    again = zoo.put("k", {"w": torch.ones(2)}, {"recipe": {}})
    assert again.checkpoint_hash == first.checkpoint_hash


def test_read_weights_files(tmp_path) -> None:
    safetensors.torch.save_file({"a": torch.ones(2)}, str(tmp_path / "w.safetensors"))
    torch.save({"model": {"module.a": torch.ones(2)}, "epoch": 3}, tmp_path / "w.pth")
    st = read_weights_file(tmp_path / "w.safetensors")
    pt = read_weights_file(tmp_path / "w.pth")
    assert st.format == "safetensors" and set(st.state_dict) == {"a"} and st.metadata == {}
    assert pt.format == "torch" and set(pt.state_dict) == {"module.a"} and len(pt.sha256) == 64
    with pytest.raises(ConfigError, match="does not exist"):
        read_weights_file(tmp_path / "missing.pt")
    (tmp_path / "w.onnx").write_bytes(b"")
    with pytest.raises(ConfigError, match="unknown suffix"):
        read_weights_file(tmp_path / "w.onnx")


def test_untrusted_pickles_are_refused_with_a_hint(tmp_path) -> None:
    torch.save({"model": {"a": torch.ones(1)}, "args": argparse.Namespace(lr=1)}, tmp_path / "w.pt")
    with pytest.raises(ConfigError, match="weights_trusted=true"):
        read_weights_file(tmp_path / "w.pt")
    assert set(read_weights_file(tmp_path / "w.pt", trusted=True).state_dict) == {"a"}


def run_pretrain(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hsbench")
    pretrain.add_parser(parser.add_subparsers(dest="command"))
    return pretrain.run(parser.parse_args(argv))


def test_pretrain_command_stores_a_reusable_artifact(home, capsys) -> None:
    argv = ["pretrain", "spectral_fm", "--source", "synthetic_aerial", "--epochs", "2", "--pixels", "256",
            "--seed", "1", "--no-progress", "--device", "cpu", "--fm-options", "dim=16", "depth=1", "heads=2",
            "--source-options", "num_images=3", "height=16", "width=16"]
    assert run_pretrain(argv) == 0
    out = capsys.readouterr().out
    path = out.split("artifact: ")[1].split()[0]
    assert path.startswith(str(home / "zoo")) and "final loss: " in out
    artifact = Zoo().artifacts()[0]
    meta = artifact.metadata
    assert meta["source"] == "synthetic_aerial" and len(meta["loss_curve"]) == 2 and meta["recipe"]["seed"] == 1
    model = fm_from_artifact(artifact)
    assert model.dim == 16
    # The weights file alone is self-describing: usable as a user's --weights file.
    copy, report, _ = load_weights_file(artifact.weights_path)
    assert copy.cfg == model.cfg and not report.unmatched
    assert run_pretrain(argv) == 0  # found, not trained again
    assert f"artifact: {path}" in capsys.readouterr().out and len(Zoo().artifacts()) == 1
    assert fm_config("tiny").dim == 64
