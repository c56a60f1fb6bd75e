"""Every RGB weight layout loads from files the tests write in the real format.

The torchvision and VainF files are generated here from the published key naming (not from hsbench's modules),
so a renamed hsbench layer cannot silently make both sides agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F
from checkpoint_states import bn_state, conv_state, vainf_head_state

from hsbench.errors import ConfigError
from hsbench.models.rgb_backbones import IMAGENET_MEAN, IMAGENET_STD, rgb_backbone
from hsbench.seeding import SeedStreams
from hsbench.strategy import RunContext

torch.set_num_threads(1)

# MobileNetV2 (width 1.0) inverted residual settings: expansion t, channels c, repeats n (the paper's Table 2).
_BLOCKS = ((1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3), (6, 320, 1))




def torchvision_mobilenet_v2_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with torchvision ``mobilenet_v2`` key names and shapes (width 1.0, 1000 classes)."""
    gen = torch.Generator().manual_seed(seed)
    state = {**conv_state("features.0.0.weight", 32, 3, 3, gen), **bn_state("features.0.1", 32, gen)}
    index, channels = 1, 32
    for t, c, n in _BLOCKS:
        for _ in range(n):
            hidden, p, layer = channels * t, f"features.{index}.conv", 0
            if t != 1:
                state |= conv_state(f"{p}.0.0.weight", hidden, channels, 1, gen) | bn_state(f"{p}.0.1", hidden, gen)
                layer = 1
            state |= conv_state(f"{p}.{layer}.0.weight", hidden, 1, 3, gen) | bn_state(f"{p}.{layer}.1", hidden, gen)
            state |= conv_state(f"{p}.{layer + 1}.weight", c, hidden, 1, gen) | bn_state(f"{p}.{layer + 2}", c, gen)
            index, channels = index + 1, c
    state |= conv_state("features.18.0.weight", 1280, 320, 1, gen) | bn_state("features.18.1", 1280, gen)
    state["classifier.1.weight"] = 0.01 * torch.randn(1000, 1280, generator=gen)
    state["classifier.1.bias"] = torch.zeros(1000)
    return state


def vainf_deeplabv3plus_mobilenet_state(num_classes: int = 19, seed: int = 1) -> dict[str, torch.Tensor]:
    """A VainF ``deeplabv3plus_mobilenet`` ``model_state`` (backbone split at ``features[:4]`` / ``[4:-1]``)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in torchvision_mobilenet_v2_state(seed).items():
        if not key.startswith("features."):
            continue
        index, rest = key.removeprefix("features.").split(".", 1)
        if int(index) < 4:
            state[f"backbone.low_level_features.{index}.{rest}"] = value
        elif int(index) < 18:
            state[f"backbone.high_level_features.{int(index) - 4}.{rest}"] = value
    state |= vainf_head_state(24, 320, num_classes, gen)
    state["classifier.classifier.3.bias"] = torch.zeros(num_classes)
    return state


def test_generated_torchvision_state_has_the_published_size() -> None:
    state = torchvision_mobilenet_v2_state()
    # torchvision documents 3,504,872 parameters for mobilenet_v2 (BN running statistics are buffers).
    parameters = sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var", "tracked")))
    assert parameters == 3_504_872


def test_torchvision_mobilenet_v2_state_dict_loads_into_the_encoder(tmp_path: Path) -> None:
    state = torchvision_mobilenet_v2_state()
    path = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(state, path)
    network, report = rgb_backbone("deeplabv3plus_mnv2").from_weights(str(path), 5, {}, False)
    assert report.layout == "torchvision_mobilenet_v2"
    own = network.state_dict()
    for key in ("features.0.0.weight", "features.1.conv.1.weight", "features.7.conv.1.0.weight",
                "features.17.conv.3.running_var"):
        torch.testing.assert_close(own[f"encoder.{key}"], state[key])
    assert report.loaded == sum(1 for k in state if k.startswith("features.") and not k.startswith("features.18."))
    assert {"features.18", "classifier.1"} <= set(report.summary()["weights_unused_modules"])
    assert "aspp.branches" in report.summary()["weights_random_modules"]  # only the encoder was pretrained


def _vainf_reference_features(state: dict[str, torch.Tensor], low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """VainF's DeepLabHeadV3Plus up to its classifier, computed functionally from the checkpoint tensors."""

    def bn_relu(x: torch.Tensor, prefix: str) -> torch.Tensor:
        p = f"classifier.{prefix}"
        normed = F.batch_norm(x, state[f"{p}.running_mean"], state[f"{p}.running_var"], state[f"{p}.weight"],
                              state[f"{p}.bias"], training=False, eps=1e-5)
        return F.relu(normed)

    w = {k.removeprefix("classifier."): v for k, v in state.items() if k.startswith("classifier.")}
    branches = [bn_relu(F.conv2d(high, w["aspp.convs.0.0.weight"]), "aspp.convs.0.1")]
    for branch, rate in zip((1, 2, 3), (6, 12, 18)):
        conv = F.conv2d(high, w[f"aspp.convs.{branch}.0.weight"], padding=rate, dilation=rate)
        branches.append(bn_relu(conv, f"aspp.convs.{branch}.1"))
    pooled = bn_relu(F.conv2d(high.mean((2, 3), keepdim=True), w["aspp.convs.4.1.weight"]), "aspp.convs.4.2")
    branches.append(pooled.expand_as(branches[0]))
    aspp = bn_relu(F.conv2d(torch.cat(branches, 1), w["aspp.project.0.weight"]), "aspp.project.1")
    up = F.interpolate(aspp, size=low.shape[-2:], mode="bilinear", align_corners=False)
    projected = bn_relu(F.conv2d(low, w["project.0.weight"]), "project.1")
    return bn_relu(F.conv2d(torch.cat([projected, up], 1), w["classifier.0.weight"], padding=1), "classifier.1")


def test_vainf_model_state_checkpoint_maps_exactly(tmp_path: Path) -> None:
    state = vainf_deeplabv3plus_mobilenet_state()
    path = tmp_path / "best_deeplabv3plus_mobilenet_cityscapes_os16.pth"
    torch.save({"cur_itrs": 30000, "model_state": state, "optimizer_state": {}, "best_score": 0.72}, path)
    network, report = rgb_backbone("deeplabv3plus_mnv2").from_weights(str(path), 5, {}, False)
    assert report.layout == "vainf_deeplabv3plus"
    assert report.initialised == []  # everything but the (re-initialised) classifier came from the checkpoint
    assert network.classifier.weight.shape == (5, 256, 1, 1)
    network.eval()
    captured: list[torch.Tensor] = []
    network.classifier.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        network(image)
        mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
        low, high = network.encoder((image - mean) / std)
        expected = _vainf_reference_features(state, low, high)
    torch.testing.assert_close(captured[0], expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(network.encoder.features[5].conv[1][0].weight,
                               state["backbone.high_level_features.1.conv.1.0.weight"])


def test_vainf_checkpoint_with_another_backbone_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet.pth"
    torch.save({"model_state": {"backbone.layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1),
                                "classifier.aspp.convs.0.0.weight": torch.zeros(256, 2048, 1, 1)}}, path)
    with pytest.raises(ConfigError, match="other than MobileNetV2"):
        rgb_backbone("deeplabv3plus_mnv2").from_weights(str(path), 5, {}, False)


def test_hsbench_layout_round_trips_through_safetensors(tmp_path: Path) -> None:
    spec = rgb_backbone("deeplabv3plus_mnv2")
    options = {"width_mult": 0.5, "aspp_channels": 32, "decoder": "hsbench"}
    source = spec.build(7, options)
    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    network, report = spec.from_weights(str(path), 3, {"width_mult": 0.5}, False)  # layout fixes the rest
    assert report.layout == "hsbench" and report.initialised == []
    torch.testing.assert_close(network.decoder.fuse[1][0].weight, source.decoder.fuse[1][0].weight)


def test_missing_and_unreadable_weights_fail_with_the_path(tmp_path: Path) -> None:
    spec = rgb_backbone("deeplabv3plus_mnv2")
    missing = tmp_path / "nowhere" / "mobilenet_v2.pth"
    with pytest.raises(ConfigError, match=f"{missing}.*does not exist"):
        spec.from_weights(str(missing), 5, {}, False)
    odd = tmp_path / "odd.pth"
    torch.save({"something.else": torch.zeros(2)}, odd)
    with pytest.raises(ConfigError, match="unrecognised key layout"):
        spec.from_weights(str(odd), 5, {}, False)
    with pytest.raises(ConfigError, match="differ in shape"):
        spec.from_weights(str(_saved(tmp_path, torchvision_mobilenet_v2_state())), 5, {"width_mult": 0.5}, False)


def _saved(folder: Path, state: dict[str, torch.Tensor]) -> Path:
    path = folder / "state.pth"
    torch.save(state, path)
    return path


@pytest.fixture
def _strategy_factory(tmp_path: Path, tiny_dataset):
    from strategies.cross_modality import CrossModality

    def make(**options) -> CrossModality:
        ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)
        return CrossModality({**CrossModality.defaults, **options}, ctx, tiny_dataset.card)

    return make


def test_pt_mode_needs_pretrained_layers_everywhere_but_the_classifier(tmp_path: Path, _strategy_factory) -> None:
    path = _saved(tmp_path, torchvision_mobilenet_v2_state())
    with pytest.raises(ConfigError, match="mode pt.*aspp"):
        _strategy_factory(weights=str(path), mode="pt").pretrained_network()
    network, facts = _strategy_factory(weights=str(path), mode="bb").pretrained_network()
    assert facts["pretraining"] == f"weights {path}" and "aspp.branches" in facts["weights_random_modules"]


def test_fresh_classifier_is_seeded_by_the_run(tmp_path: Path, _strategy_factory) -> None:
    path = tmp_path / "vainf.pth"
    torch.save({"model_state": vainf_deeplabv3plus_mobilenet_state()}, path)
    first, _ = _strategy_factory(weights=str(path), mode="pt").pretrained_network()
    second, _ = _strategy_factory(weights=str(path), mode="pt").pretrained_network()
    torch.testing.assert_close(first.classifier.weight, second.classifier.weight)
    assert first.classifier.weight.shape[0] == 4 and first.classifier.weight.abs().sum() > 0


# ------------------------------------------------------------------------------------------------ transformers
def _tiny_dinov2(folder: Path) -> Path:
    transformers = pytest.importorskip("transformers")
    config = transformers.Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=32, patch_size=4, image_size=16)
    torch.manual_seed(0)
    transformers.Dinov2Model(config).save_pretrained(folder)
    return folder


def _tiny_segformer(folder: Path, num_labels: int = 19) -> Path:
    transformers = pytest.importorskip("transformers")
    config = transformers.SegformerConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                                          num_attention_heads=[1, 1, 2, 2], decoder_hidden_size=16,
                                          num_labels=num_labels)
    torch.manual_seed(0)
    transformers.SegformerForSemanticSegmentation(config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("layers", [1, 2])
def test_dinov2_loads_from_a_save_pretrained_folder_and_trains(tmp_path: Path, layers: int) -> None:
    folder = _tiny_dinov2(tmp_path / "dinov2")
    network, report = rgb_backbone("dinov2").from_weights(str(folder), 5, {"layers": layers}, False)
    assert report.initialised == [] and report.loaded > 0
    saved = safetensors.torch.load_file(str(folder / "model.safetensors"))
    for key in ("embeddings.patch_embeddings.projection.weight", "embeddings.position_embeddings", "layernorm.weight"):
        torch.testing.assert_close(network.backbone.state_dict()[key], saved[key])
    logits = network(torch.rand(2, 3, 37, 53))
    assert logits.shape == (2, 5, 37, 53)
    logits.mean().backward()
    grads = {name: p.grad for name, p in network.named_parameters() if name != "backbone.embeddings.mask_token"}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())  # the mask token is MAE-only


def test_segformer_loads_with_a_new_classifier_and_trains(tmp_path: Path) -> None:
    folder = _tiny_segformer(tmp_path / "segformer")
    network, report = rgb_backbone("segformer").from_weights(str(folder), 5, {}, False)
    assert report.initialised == []
    saved = safetensors.torch.load_file(str(folder / "model.safetensors"))
    torch.testing.assert_close(network.model.decode_head.linear_fuse.weight, saved["decode_head.linear_fuse.weight"])
    assert network.model.decode_head.classifier.out_channels == 5
    logits = network(torch.rand(2, 3, 37, 53))
    assert logits.shape == (2, 5, 37, 53)
    logits.mean().backward()
    assert network.model.decode_head.classifier.weight.grad is not None


@pytest.mark.parametrize("name", ["dinov2", "segformer"])
def test_transformers_backbones_build_from_tiny_configs(name: str) -> None:
    pytest.importorskip("transformers")
    config = ({"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
               "patch_size": 4} if name == "dinov2" else {"hidden_sizes": [8, 8, 8, 8], "decoder_hidden_size": 8,
                                                          "num_attention_heads": [1, 1, 1, 1]})
    network = rgb_backbone(name).build(3, {"config": config})
    logits = network(torch.rand(1, 3, 20, 28))
    assert logits.shape == (1, 3, 20, 28)
    logits.sum().backward()


def test_hugging_face_ids_are_looked_up_offline_only(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="not in the Hugging Face cache.*models--facebook--dinov2-small"):
        rgb_backbone("dinov2").from_weights("facebook/dinov2-small-not-cached", 5, {}, False)
    with pytest.raises(ConfigError, match="does not exist"):
        rgb_backbone("dinov2").from_weights(str(tmp_path / "missing" / "dinov2"), 5, {}, False)
