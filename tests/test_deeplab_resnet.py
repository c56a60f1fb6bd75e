"""DeepLabV3+ with ResNet encoders: torchvision's sizes and key layout, VainF parity, output stride, old default.

The torchvision and VainF state dicts are generated here from the published layer tables and key names (not from
hsbench's modules), and the VainF reference forward is functional, so a renamed or rewired hsbench layer cannot
make both sides agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from checkpoint_states import bn_state, conv_state, vainf_head_state

from hsbench.errors import ConfigError
from hsbench.models.deeplabv3plus import DeepLabV3Plus
from hsbench.models.resnet import ResNetEncoder
from hsbench.models.rgb_backbones import IMAGENET_MEAN, IMAGENET_STD, rgb_backbone
from hsbench.registry import MODELS, lookup

torch.set_num_threads(1)

BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}  # the ResNet paper's Table 1
WIDTHS = (64, 128, 256, 512)
TORCHVISION_PARAMETERS = {50: 25_557_032, 101: 44_549_160}  # torchvision's documented totals, fc included
FC = 2048 * 1000 + 1000


def _formula_parameters(depth: int) -> int:
    """ResNet parameters from the layer table: stem, bottlenecks (conv + BN affine), projections, fc."""
    total, channels = 3 * 64 * 7 * 7 + 2 * 64, 64
    for width, blocks in zip(WIDTHS, BLOCKS[depth], strict=True):
        out = 4 * width
        block = width * width * 9 + width * out + 2 * (width + width + out)
        total += channels * width + block + channels * out + 2 * out  # first block, with its projection
        total += (blocks - 1) * (out * width + block)
        channels = out
    return total + FC




def torchvision_resnet_state(depth: int, seed: int = 0, prefix: str = "") -> dict[str, torch.Tensor]:
    """torchvision ``resnet{depth}`` key names and shapes (``fc`` only without a prefix, as VainF drops it)."""
    gen = torch.Generator().manual_seed(seed)
    state = conv_state(f"{prefix}conv1.weight", 64, 3, 7, gen) | bn_state(f"{prefix}bn1", 64, gen)
    channels = 64
    for stage, (width, blocks) in enumerate(zip(WIDTHS, BLOCKS[depth], strict=True), start=1):
        for b in range(blocks):
            p = f"{prefix}layer{stage}.{b}"
            state |= conv_state(f"{p}.conv1.weight", width, channels, 1, gen) | bn_state(f"{p}.bn1", width, gen)
            state |= conv_state(f"{p}.conv2.weight", width, width, 3, gen) | bn_state(f"{p}.bn2", width, gen)
            state |= conv_state(f"{p}.conv3.weight", 4 * width, width, 1, gen) | bn_state(f"{p}.bn3", 4 * width, gen)
            if b == 0:
                state |= conv_state(f"{p}.downsample.0.weight", 4 * width, channels, 1, gen)
                state |= bn_state(f"{p}.downsample.1", 4 * width, gen)
            channels = 4 * width
    if not prefix:
        state["fc.weight"] = 0.01 * torch.randn(1000, 2048, generator=gen)
        state["fc.bias"] = torch.zeros(1000)
    return state


def vainf_resnet_state(depth: int, num_classes: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """A VainF ``deeplabv3plus_resnet{depth}`` ``model_state``: torchvision's ResNet under ``backbone.``, the head."""
    gen = torch.Generator().manual_seed(seed + 100)
    state = torchvision_resnet_state(depth, seed, prefix="backbone.")
    state |= vainf_head_state(256, 2048, num_classes, gen)
    state["classifier.classifier.3.bias"] = 0.1 * torch.randn(num_classes, generator=gen)
    return state


# Per output stride: (stride, first-block dilation, later-block dilation) of layer1..4, and VainF's ASPP rates;
# written out from torchvision's replace_stride_with_dilation ([F, F, T] at 16, [F, T, T] at 8).
REFERENCE_PLAN = {
    16: ([(1, 1, 1), (2, 1, 1), (2, 1, 1), (1, 1, 2)], (6, 12, 18)),
    8: ([(1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 2, 4)], (12, 24, 36)),
}


def vainf_reference(state: dict[str, torch.Tensor], image: torch.Tensor, output_stride: int) -> torch.Tensor:
    """VainF's DeepLabV3+ ResNet forward (ImageNet normalisation included), functional, from the checkpoint."""
    stages, rates = REFERENCE_PLAN[output_stride]

    def bn(x: torch.Tensor, p: str) -> torch.Tensor:
        return F.batch_norm(x, state[f"{p}.running_mean"], state[f"{p}.running_var"], state[f"{p}.weight"],
                            state[f"{p}.bias"], training=False, eps=1e-5)

    x = (image - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    x = F.relu(bn(F.conv2d(x, state["backbone.conv1.weight"], stride=2, padding=3), "backbone.bn1"))
    x = F.max_pool2d(x, 3, stride=2, padding=1)
    low = x
    for stage, (stride, first, later) in enumerate(stages, start=1):
        b = 0
        while f"backbone.layer{stage}.{b}.conv1.weight" in state:
            p = f"backbone.layer{stage}.{b}"
            s, d = (stride, first) if b == 0 else (1, later)
            out = F.relu(bn(F.conv2d(x, state[f"{p}.conv1.weight"]), f"{p}.bn1"))
            out = F.relu(bn(F.conv2d(out, state[f"{p}.conv2.weight"], stride=s, padding=d, dilation=d), f"{p}.bn2"))
            out = bn(F.conv2d(out, state[f"{p}.conv3.weight"]), f"{p}.bn3")
            if b == 0:
                x = bn(F.conv2d(x, state[f"{p}.downsample.0.weight"], stride=s), f"{p}.downsample.1")
            x, b = F.relu(out + x), b + 1
        if stage == 1:
            low = x
    high = x
    h = "classifier"
    branches = [F.relu(bn(F.conv2d(high, state[f"{h}.aspp.convs.0.0.weight"]), f"{h}.aspp.convs.0.1"))]
    for branch, rate in zip((1, 2, 3), rates):
        conv = F.conv2d(high, state[f"{h}.aspp.convs.{branch}.0.weight"], padding=rate, dilation=rate)
        branches.append(F.relu(bn(conv, f"{h}.aspp.convs.{branch}.1")))
    pooled = F.conv2d(F.adaptive_avg_pool2d(high, 1), state[f"{h}.aspp.convs.4.1.weight"])
    pooled = F.relu(bn(pooled, f"{h}.aspp.convs.4.2"))
    branches.append(F.interpolate(pooled, size=high.shape[-2:], mode="bilinear", align_corners=False))
    aspp = F.relu(bn(F.conv2d(torch.cat(branches, 1), state[f"{h}.aspp.project.0.weight"]), f"{h}.aspp.project.1"))
    up = F.interpolate(aspp, size=low.shape[-2:], mode="bilinear", align_corners=False)
    projected = F.relu(bn(F.conv2d(low, state[f"{h}.project.0.weight"]), f"{h}.project.1"))
    fused = F.conv2d(torch.cat([projected, up], 1), state[f"{h}.classifier.0.weight"], padding=1)
    logits = F.conv2d(F.relu(bn(fused, f"{h}.classifier.1")), state[f"{h}.classifier.3.weight"],
                      state[f"{h}.classifier.3.bias"])
    return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)


@pytest.mark.parametrize("depth", [50, 101])
def test_encoder_parameters_equal_torchvision_totals(depth: int) -> None:
    encoder = ResNetEncoder(depth)
    assert _formula_parameters(depth) == TORCHVISION_PARAMETERS[depth]
    assert sum(p.numel() for p in encoder.parameters()) + FC == TORCHVISION_PARAMETERS[depth]


def test_torchvision_state_dict_loads_strictly_into_the_encoder() -> None:
    state = torchvision_resnet_state(50)
    encoder = ResNetEncoder(50)
    result = encoder.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert set(encoder.state_dict()) == {k for k in state if not k.startswith("fc.")}
    torch.testing.assert_close(encoder.layer3[5].conv2.weight, state["layer3.5.conv2.weight"])
    # ResNet-101: construction and key names only (the extra blocks are all in layer3).
    names = set(ResNetEncoder(101).state_dict())
    assert "layer3.22.bn3.running_var" in names and "layer3.23.conv1.weight" not in names


def test_torchvision_file_fills_the_encoder_and_leaves_the_head_random(tmp_path: Path) -> None:
    state = torchvision_resnet_state(50)
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(state, path)
    network, report = rgb_backbone("deeplabv3plus_r50").from_weights(str(path), 5, {}, False)
    assert report.layout == "torchvision_resnet" and not report.partial
    assert sorted(report.unused) == ["fc.bias", "fc.weight"]
    assert report.initialised and all(k.startswith(("aspp.", "decoder.")) for k in report.initialised)
    torch.testing.assert_close(network.encoder.layer4[2].bn3.running_mean, state["layer4.2.bn3.running_mean"])
    with pytest.raises(ConfigError, match="deeplabv3plus_r50"):  # a ResNet-50 file offered as ResNet-101
        rgb_backbone("deeplabv3plus_r101").from_weights(str(path), 5, {}, False)


@pytest.mark.parametrize("output_stride", [16, 8])
def test_vainf_checkpoint_reproduces_vainf_forward(tmp_path: Path, output_stride: int) -> None:
    num_classes = 4
    state = vainf_resnet_state(50, num_classes)
    path = tmp_path / f"best_deeplabv3plus_resnet50_voc_os{output_stride}.pth"
    torch.save({"model_state": state, "optimizer_state": {}, "cur_itrs": 3}, path)
    spec = rgb_backbone("deeplabv3plus_r50")
    network, report = spec.from_weights(str(path), num_classes, {"output_stride": output_stride}, False)
    assert report.layout == "vainf_deeplabv3plus" and not report.partial
    assert len(network.decoder.fuse) == 1  # the layout implies VainF's one-conv decoder
    with torch.no_grad():  # the classifier is fresh for the target's classes; give it VainF's for the parity check
        network.classifier.weight.copy_(state["classifier.classifier.3.weight"])
        network.classifier.bias.copy_(state["classifier.classifier.3.bias"])
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        actual = network.eval()(image)
        expected = vainf_reference(state, image, output_stride)
    assert actual.shape == (1, num_classes, 32, 32)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_vainf_checkpoint_of_another_backbone_is_refused(tmp_path: Path) -> None:
    heads = {"classifier.aspp.convs.0.0.weight": torch.zeros(256, 2048, 1, 1)}
    r101 = {f"backbone.layer3.{b}.conv1.weight": torch.zeros(256, 1024, 1, 1) for b in range(23)}
    path = tmp_path / "r101.pth"
    torch.save({"model_state": {**r101, **heads}}, path)
    with pytest.raises(ConfigError, match="23 layer3 blocks.*deeplabv3plus_r101"):
        rgb_backbone("deeplabv3plus_r50").from_weights(str(path), 5, {}, False)
    torch.save({"model_state": {"backbone.low_level_features.0.0.weight": torch.zeros(32, 3, 3, 3), **heads}}, path)
    with pytest.raises(ConfigError, match="deeplabv3plus_mnv2"):
        rgb_backbone("deeplabv3plus_r50").from_weights(str(path), 5, {}, False)


@pytest.mark.parametrize(("output_stride", "high_size"), [(8, 5), (16, 3), (32, 2)])
def test_output_stride_sets_the_high_level_resolution(output_stride: int, high_size: int) -> None:
    encoder = ResNetEncoder(50, output_stride=output_stride).eval()
    with torch.no_grad():
        low, high = encoder(torch.rand(1, 3, 33, 33))
    assert low.shape == (1, 256, 9, 9)  # stride 4, ceil(33 / 4)
    assert high.shape == (1, 2048, high_size, high_size)  # ceil(33 / output_stride)
    dilations = [block.conv2.dilation[0] for block in encoder.layer4]
    assert dilations == {8: [2, 4, 4], 16: [1, 2, 2], 32: [1, 1, 1]}[output_stride]


def test_in_domain_model_takes_a_resnet_backbone_and_the_vainf_decoder() -> None:
    model = lookup(MODELS, "deeplabv3plus")(5, 3, backbone="resnet50", decoder="vainf", aspp_channels=16).eval()
    assert isinstance(model.encoder, ResNetEncoder) and len(model.decoder.fuse) == 1
    with torch.no_grad():
        assert model(torch.rand(1, 5, 33, 33)).shape == (1, 3, 33, 33)
    with pytest.raises(ValueError, match="decoder must be one of hsbench, vainf"):
        DeepLabV3Plus(5, 3, decoder="paper")
    with pytest.raises(ValueError, match="width multiplier"):
        DeepLabV3Plus(5, 3, backbone="resnet101", width_mult=0.5)


def test_default_is_the_unchanged_mobilenet_v2_with_two_fusion_convolutions() -> None:
    def forward(**options: str) -> tuple[torch.Tensor, list[str]]:
        torch.manual_seed(0)
        model = DeepLabV3Plus(7, 5, width_mult=0.5, aspp_channels=32, **options).eval()
        with torch.no_grad():
            return model(torch.rand(2, 7, 33, 45, generator=torch.Generator().manual_seed(1))), list(model.state_dict())

    default, default_keys = forward()
    explicit, explicit_keys = forward(backbone="mobilenet_v2", decoder="hsbench")
    assert torch.equal(default, explicit) and default_keys == explicit_keys
    assert "decoder.fuse.1.0.weight" in default_keys and "encoder.features.17.conv.3.running_var" in default_keys
    _, vainf_keys = forward(decoder="vainf")
    assert set(default_keys) - set(vainf_keys) == {k for k in default_keys if k.startswith("decoder.fuse.1.")}


def test_hsbench_layout_round_trips_with_its_decoder(tmp_path: Path) -> None:
    spec = rgb_backbone("deeplabv3plus_r50")
    source = spec.build(3, {"decoder": "hsbench", "aspp_channels": 16})
    path = tmp_path / "r50.pth"
    torch.save(source.state_dict(), path)
    network, report = spec.from_weights(str(path), 3, {}, False)  # the layout fixes decoder and ASPP width
    assert report.layout == "hsbench" and report.initialised == [] and len(network.decoder.fuse) == 2
    torch.testing.assert_close(network.decoder.fuse[1][0].weight, source.decoder.fuse[1][0].weight)
