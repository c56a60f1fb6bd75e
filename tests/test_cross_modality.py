"""Strategy ``cross_modality``: modes, synthetic RGB pretraining through the zoo, weights, end-to-end runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.nn as nn

from hsbench.data.synthetic_datasets import SyntheticDrive
from hsbench.errors import ConfigError
from hsbench.models.rgb_backbones import rgb_backbone
from hsbench.runner import Runner, RunSpec
from hsbench.seeding import SeedStreams
from hsbench.strategy import RunContext, SplitView
from hsbench.zoo import Zoo
from strategies.cross_modality import MODES, AdaptedNetwork, CrossModality

torch.set_num_threads(1)

SMALL_MNV2 = {"width_mult": 0.25, "aspp_channels": 16}
TINY_TRAINING = {"epochs": 2, "batch_size": 4, "lr": 0.005, "backbone_options": SMALL_MNV2}
TINY_PRETRAINING = {"pretrain_source_options": {"num_images": 4, "height": 32, "width": 32}, "pretrain_epochs": 2,
                    "pretrain_batch_size": 4}


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HSBENCH_HOME", str(tmp_path / "home"))


def _weights_file(folder: Path, num_classes: int = 7) -> Path:
    network = rgb_backbone("deeplabv3plus_mnv2").build(num_classes, SMALL_MNV2)
    path = folder / "mnv2.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(path))
    return path


def _strategy(tmp_path: Path, card, **options) -> CrossModality:
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)
    return CrossModality({**CrossModality.defaults, **options}, ctx, card)


def test_label_says_synthetic_rgb_pretraining_unless_weights_are_given() -> None:
    options = dict(CrossModality.defaults)
    assert CrossModality.label(options) == "cross_modality/deeplabv3plus_mnv2/bb/prgb+synthetic-rgb-pretraining"
    with_weights = {**options, "weights": "x.pth", "mode": "pt"}
    assert CrossModality.label(with_weights) == "cross_modality/deeplabv3plus_mnv2/pt/prgb"


def test_pt_trains_only_the_classifier_and_bb_everything() -> None:
    spec = rgb_backbone("deeplabv3plus_mnv2")
    network = spec.build(4, SMALL_MNV2)
    MODES["pt"](network, spec)
    assert {n for n, p in network.named_parameters() if p.requires_grad} == {"classifier.weight", "classifier.bias"}
    model = AdaptedNetwork(nn.Conv2d(6, 3, 1), network).train()
    assert model.training and model.adapter.weight.requires_grad  # a learned adapter is not part of the pretraining
    assert all(not m.training for m in network.modules() if isinstance(m, nn.BatchNorm2d))  # frozen statistics
    MODES["bb"](network, spec)
    assert all(p.requires_grad for p in network.parameters())
    assert all(m.training for m in AdaptedNetwork(nn.Identity(), network).train().modules())


def test_pt_keeps_a_trainable_decoder_batchnorm_in_training_mode() -> None:
    pytest.importorskip("transformers")
    spec = rgb_backbone("dinov2")
    config = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
              "patch_size": 4}
    network = spec.build(4, {"config": config})
    MODES["pt"](network, spec)
    trainable = {n for n, p in network.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.0.weight", "classifier.0.bias", "classifier.1.weight", "classifier.1.bias"}
    AdaptedNetwork(nn.Identity(), network).train()
    assert network.classifier[0].training and not network.backbone.training


def test_pt_fit_changes_nothing_but_the_classifier(tmp_path: Path, tiny_dataset) -> None:
    path = _weights_file(tmp_path)
    strategy = _strategy(tmp_path, tiny_dataset.card, weights=str(path), mode="pt", **TINY_TRAINING)
    split = tiny_dataset.card.official()
    train = SplitView(tiny_dataset, dict.fromkeys(split.train), "train")
    val = SplitView(tiny_dataset, dict.fromkeys(split.val), "val")
    facts = strategy.fit(train, val)
    saved = safetensors.torch.load_file(str(path))
    trained = strategy.learner.network.network.state_dict()
    changed = {k for k, v in trained.items() if not k.startswith("classifier.") and not torch.equal(v, saved[k])}
    assert changed == set()  # encoder, ASPP, decoder and every BatchNorm statistic as loaded
    assert facts["trainable_parameters"] == strategy.learner.network.network.classifier.weight.numel() + 4
    assert facts["pretraining"] == f"weights {path}" and facts["weights_layout"] == "hsbench"
    prediction = strategy.predict(tiny_dataset.load(split.test[0]))
    assert prediction.shape == (24, 32) and prediction.dtype == np.int64


def test_cie_is_refused_on_a_near_infrared_sensor(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="adapter cie.*synthetic_drive"):
        _strategy(tmp_path, SyntheticDrive.card, adapter="cie")


def test_bad_mode_backbone_and_backbone_options_fail_early(tmp_path: Path, tiny_dataset) -> None:
    with pytest.raises(ConfigError, match="valid modes are bb, pt"):
        _strategy(tmp_path, tiny_dataset.card, mode="frozen")
    with pytest.raises(ConfigError, match="backbones are"):
        _strategy(tmp_path, tiny_dataset.card, backbone="resnet50")
    with pytest.raises(ConfigError, match="no option 'width'"):
        _strategy(tmp_path, tiny_dataset.card, backbone_options={"width": 0.5})


def test_missing_weights_fail_with_the_expected_path(tmp_path: Path, tiny_registered) -> None:
    missing = tmp_path / "weights" / "best_deeplabv3plus_mobilenet_cityscapes_os16.pth"
    spec = RunSpec(tiny_registered["segmentation"], "cross_modality", "fraction=0.5", 0,
                   {**TINY_TRAINING, "weights": str(missing)})
    with pytest.raises(ConfigError, match=f"{missing}.*does not exist"):
        Runner(tmp_path / "results", progress=False).run(spec)


def test_synthetic_rgb_pretraining_is_stored_once_and_reused(tmp_path: Path, tiny_registered) -> None:
    runner = Runner(tmp_path / "results", progress=False)
    options = {**TINY_TRAINING, **TINY_PRETRAINING, "adapter": "learned"}
    first = runner.run(RunSpec(tiny_registered["segmentation"], "cross_modality", "fraction=0.5", 0, options))
    second = runner.run(RunSpec(tiny_registered["scene"], "cross_modality", "kshot=10", 1, options))
    assert first.status == second.status == "completed", (first.error, second.error)
    artifacts = Zoo().artifacts()
    assert len(artifacts) == 1 and artifacts[0].metadata["rendering"]["adapter"] == "prgb"  # learned renders as prgb
    facts = [json.loads((o.run_dir / "facts.json").read_text()) for o in (first, second)]
    assert {f["pretraining_artifact"] for f in facts} == {artifacts[0].key}
    assert all(f["pretraining"].startswith("synthetic RGB pretraining (synthetic_aerial") for f in facts)
    assert facts[0]["weights_random_modules"] == []


def test_end_to_end_on_synthetic_drive_from_the_cli(tmp_path: Path, capsys) -> None:
    from hsbench.cli import main
    from hsbench.store import ResultsStore

    options = [f"{k}={json.dumps(v)}" for k, v in {**TINY_TRAINING, **TINY_PRETRAINING}.items()]
    code = main(["run", "--strategy", "cross_modality", "--dataset", "synthetic_drive", "--split", "fraction=0.05",
                 "--results", str(tmp_path / "results"), "--no-progress", "--cfg-options", *options])
    assert code == 0
    assert "cross_modality/deeplabv3plus_mnv2/bb/prgb+synthetic-rgb-pretraining" in capsys.readouterr().out
    runs = ResultsStore(tmp_path / "results" / "hsbench.db").runs()
    assert list(runs["strategy_label"]) == ["cross_modality/deeplabv3plus_mnv2/bb/prgb+synthetic-rgb-pretraining"]


def test_dinov2_from_a_local_folder_end_to_end(tmp_path: Path, tiny_registered) -> None:
    transformers = pytest.importorskip("transformers")
    folder = tmp_path / "dinov2-tiny"
    config = transformers.Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=32, patch_size=4, image_size=16)
    transformers.Dinov2Model(config).save_pretrained(folder)
    options = {"epochs": 3, "batch_size": 4, "lr": 0.05, "backbone": "dinov2", "weights": str(folder),
               "mode": "pt", "adapter": "pca3", "backbone_options": {"layers": 2}}
    outcome = Runner(tmp_path / "results", progress=False).run(
        RunSpec(tiny_registered["segmentation"], "cross_modality", "fraction=0.5", 0, options))
    assert outcome.status == "completed", outcome.error
    assert outcome.label == "cross_modality/dinov2/pt/pca3"
    facts = json.loads((outcome.run_dir / "facts.json").read_text())
    assert facts["weights_layout"] == "transformers_dinov2" and facts["weights_random_modules"] == []


def test_bb_backbone_lr_scale_slows_the_pretrained_layers_only(tmp_path: Path, tiny_dataset) -> None:
    path = _weights_file(tmp_path)
    options = {**TINY_TRAINING, "epochs": 1, "weights": str(path), "backbone_lr_scale": 0.1}
    strategy = _strategy(tmp_path, tiny_dataset.card, **options)
    split = tiny_dataset.card.official()
    strategy.fit(SplitView(tiny_dataset, dict.fromkeys(split.train), "train"),
                 SplitView(tiny_dataset, dict.fromkeys(split.val), "val"))
    network = strategy.learner.network.network
    assert network.encoder.features[0][0].weight.lr_scale == 0.1 and network.aspp.project[0][0].weight.lr_scale == 0.1
    assert network.classifier.weight.lr_scale == 1.0


def test_search_space_suggests_known_options() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = CrossModality.search_space(optuna.create_study().ask(), {"mode": "bb"})
    assert "backbone_lr_scale" in space and set(space) <= set(CrossModality.defaults)
    assert "backbone_lr_scale" not in CrossModality.search_space(optuna.create_study().ask(), {"mode": "pt"})
