"""``layout=hyperseg`` U-Net / RU-Net against hyperseg's ``UNet`` (``nickstheisen/hyperseg``, hyperseg/models/unet.py).

Everything expected here is derived from hyperseg's architecture by hand, not from hsbench's code: the parameter
count formula, the key names and shapes of its module tree in its order, and a functional forward pass.
hyperseg (bilinear=True): inc DoubleConv(C, 64); down1..4 = MaxPool2d(2), Dropout(p), DoubleConv with outputs
128, 256, 512, 512 (p = 0.25 only in down4 for RU-Net); up1..4 = Upsample(x2, bilinear, align_corners) + centred
zero pad, DoubleConv(in, out, mid=in // 2) with (1024, 256), (512, 128), (256, 64), (128, 64); outc 1x1 conv with
bias. DoubleConv is (3x3 conv, BN, ReLU) x 2 with bias-free convs under BatchNorm, (3x3 conv + bias, ReLU) x 2
without.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from hsbench.errors import ConfigError
from hsbench.integrity import IntegrityError, file_hash
from hsbench.models import RUNet, UNet
from hsbench.models.hyperseg_import import hyperseg_to_hsbench, load_state

# (name, in, mid, out) of every DoubleConv in hyperseg's module order.
_DOUBLE_CONVS = [
    ("inc.double_conv", None, 64, 64),
    ("down1.maxpool_conv.2.double_conv", 64, 128, 128),
    ("down2.maxpool_conv.2.double_conv", 128, 256, 256),
    ("down3.maxpool_conv.2.double_conv", 256, 512, 512),
    ("down4.maxpool_conv.2.double_conv", 512, 512, 512),
    ("up1.conv.double_conv", 1024, 512, 256),
    ("up2.conv.double_conv", 512, 256, 128),
    ("up3.conv.double_conv", 256, 128, 64),
    ("up4.conv.double_conv", 128, 64, 64),
]


def _double_convs(in_channels: int) -> list[tuple[str, int, int, int]]:
    return [(name, in_channels if cin is None else cin, mid, out) for name, cin, mid, out in _DOUBLE_CONVS]


def hyperseg_param_count(in_channels: int, num_classes: int, *, batch_norm: bool) -> int:
    """Trainable parameters of hyperseg's UNet, by formula."""
    total = 0
    for _, cin, mid, out in _double_convs(in_channels):
        convs = 9 * cin * mid + 9 * mid * out
        total += convs + (2 * mid + 2 * out if batch_norm else mid + out)  # BN weight+bias, or conv biases
    return total + 64 * num_classes + num_classes


def hyperseg_state_shapes(in_channels: int, num_classes: int, *, batch_norm: bool) -> list[tuple[str, tuple]]:
    """``state_dict`` keys and shapes of hyperseg's UNet, in its module order."""
    shapes: list[tuple[str, tuple]] = []
    for name, cin, mid, out in _double_convs(in_channels):
        if batch_norm:
            for conv, bn, (a, b) in ((0, 1, (cin, mid)), (3, 4, (mid, out))):
                shapes.append((f"{name}.{conv}.weight", (b, a, 3, 3)))
                shapes += [(f"{name}.{bn}.{p}", (b,)) for p in ("weight", "bias", "running_mean", "running_var")]
                shapes.append((f"{name}.{bn}.num_batches_tracked", ()))
        else:
            for conv, (a, b) in ((0, (cin, mid)), (2, (mid, out))):
                shapes += [(f"{name}.{conv}.weight", (b, a, 3, 3)), (f"{name}.{conv}.bias", (b,))]
    return shapes + [("outc.conv.weight", (num_classes, 64, 1, 1)), ("outc.conv.bias", (num_classes,))]


def random_hyperseg_state(in_channels: int, num_classes: int, *, batch_norm: bool) -> dict[str, torch.Tensor]:
    """Random weights and BatchNorm statistics under hyperseg's keys (float64, He-scaled so activations stay O(1))."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in hyperseg_state_shapes(in_channels, num_classes, batch_norm=batch_norm):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=gen, dtype=torch.float64) * (2.0 / fan_in) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.1
    return state


def reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor, *, batch_norm: bool) -> torch.Tensor:
    """hyperseg's UNet forward (eval mode) written with torch.nn.functional only."""

    def double_conv(name: str, t: torch.Tensor) -> torch.Tensor:
        if batch_norm:
            for conv, bn in ((0, 1), (3, 4)):
                t = F.conv2d(t, state[f"{name}.{conv}.weight"], padding=1)
                t = F.batch_norm(t, state[f"{name}.{bn}.running_mean"], state[f"{name}.{bn}.running_var"],
                                 state[f"{name}.{bn}.weight"], state[f"{name}.{bn}.bias"], training=False, eps=1e-5)
                t = F.relu(t)
        else:
            for conv in (0, 2):
                t = F.relu(F.conv2d(t, state[f"{name}.{conv}.weight"], state[f"{name}.{conv}.bias"], padding=1))
        return t

    skips = [double_conv("inc.double_conv", x)]
    for k in range(1, 5):
        skips.append(double_conv(f"down{k}.maxpool_conv.2.double_conv", F.max_pool2d(skips[-1], 2)))
    t = skips.pop()
    for k in range(1, 5):
        skip = skips.pop()
        t = F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)
        dy, dx = skip.shape[2] - t.shape[2], skip.shape[3] - t.shape[3]
        t = F.pad(t, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        t = double_conv(f"up{k}.conv.double_conv", torch.cat([skip, t], dim=1))
    return F.conv2d(t, state["outc.conv.weight"], state["outc.conv.bias"])


NETWORKS = {"runet": (RUNet, True), "unet": (UNet, False)}


@pytest.mark.parametrize(
    ("in_channels", "num_classes", "runet_params", "unet_params"),
    [(25, 9, 17_276_169, 17_271_753), (15, 10, 17_270_474, 17_266_058), (128, 19, 17_336_147, 17_331_731)],
)
def test_parameter_counts_equal_hyperseg(
    in_channels: int, num_classes: int, runet_params: int, unet_params: int
) -> None:
    assert hyperseg_param_count(in_channels, num_classes, batch_norm=True) == runet_params
    assert hyperseg_param_count(in_channels, num_classes, batch_norm=False) == unet_params
    for cls, expected in ((RUNet, runet_params), (UNet, unet_params)):
        model = cls(in_channels, num_classes, layout="hyperseg")
        assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_module_order_and_shapes_match_hyperseg(name: str) -> None:
    cls, batch_norm = NETWORKS[name]
    expected = hyperseg_state_shapes(25, 9, batch_norm=batch_norm)
    mapped, unknown = hyperseg_to_hsbench({key: torch.empty(shape) for key, shape in expected})
    assert not unknown
    own = cls(25, 9, layout="hyperseg").state_dict()
    assert list(mapped) == list(own)  # same keys in the same order
    assert [tuple(v.shape) for v in mapped.values()] == [tuple(v.shape) for v in own.values()]


def test_hyperseg_runet_pools_then_drops_out_then_convolves() -> None:
    model = RUNet(25, 9, layout="hyperseg")
    for level, down in enumerate(model.downs):
        assert [type(m) for m in down] == [nn.MaxPool2d, nn.Dropout, nn.Sequential]
        assert down[1].p == (0.25 if level == 3 else 0.0)
    assert not hasattr(model, "bottleneck_dropout")
    assert all(isinstance(up.up, nn.Upsample) for up in model.ups)


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("size", [(32, 48), (37, 45)])  # odd sizes exercise hyperseg's floor-pool and zero pad
def test_forward_equals_functional_reference(name: str, size: tuple[int, int]) -> None:
    cls, batch_norm = NETWORKS[name]
    state = random_hyperseg_state(6, 4, batch_norm=batch_norm)
    model = cls(6, 4, layout="hyperseg").double().eval()
    load_state(model, state)
    x = torch.randn(2, 6, *size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        out = model(x)
    reference = reference_forward(state, x, batch_norm=batch_norm)
    assert out.shape == (2, 4, *size)
    assert reference.abs().max() > 1e-3  # a non-trivial output
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=0)


def test_lightning_checkpoint_loads_through_model_options(tmp_path: Path) -> None:
    state = random_hyperseg_state(6, 4, batch_norm=True)
    wrapped = {f"model.{k}": v.float() for k, v in state.items()}
    wrapped["criterion.weight"] = torch.ones(4)  # the loss's class weights, saved by Lightning beside the network
    path = tmp_path / "checkpoint-hs3b-epoch-10.ckpt"
    torch.save({"state_dict": wrapped, "epoch": 10, "global_step": 99}, path)
    with pytest.raises(IntegrityError):
        RUNet(6, 4, layout="hyperseg", weights=str(path), weights_sha256="0" * 64)
    model = RUNet(6, 4, layout="hyperseg", weights=str(path), weights_sha256=file_hash(path)).double().eval()
    x = torch.randn(1, 6, 33, 40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_forward(
            {k: v.float().double() if v.is_floating_point() else v for k, v in state.items()}, x, batch_norm=True
        ), atol=1e-5, rtol=0)


def test_mismatched_checkpoint_lists_missing_and_unexpected_keys() -> None:
    state = random_hyperseg_state(6, 4, batch_norm=True)
    del state["up2.conv.double_conv.4.running_var"]
    state["dr_layer.weight"] = torch.zeros(3, 6, 1, 1)
    with pytest.raises(ConfigError, match=r"missing: ups\.1\.conv\.4\.running_var.*unexpected: dr_layer\.weight"):
        load_state(RUNet(6, 4, layout="hyperseg"), state)


def test_weights_need_the_hyperseg_layout(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="layout=hyperseg"):
        UNet(6, 4, weights=str(tmp_path / "x.ckpt"))
    with pytest.raises(ConfigError, match="valid layouts are hsbench, hyperseg"):
        UNet(6, 4, layout="pytorch")


def test_default_layout_is_unchanged() -> None:
    """hsbench's own layout: base width 32, dropout before the deepest pool, counts as before the option existed."""
    model = RUNet(25, 9)
    assert model.stem[0].out_channels == 32 and isinstance(model.bottleneck_dropout, nn.Dropout)
    assert sum(p.numel() for p in model.parameters()) == 4_325_001
    assert sum(p.numel() for p in UNet(25, 9).parameters()) == 4_322_793
    assert len(model.state_dict()) == 110 and "downs.3.1.0.weight" in model.state_dict()
