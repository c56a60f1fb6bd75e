"""Networks in ``MODELS``: every registered model is built, run and back-propagated on odd image sizes."""

from __future__ import annotations

import optuna
import pytest
import torch
import torch.nn as nn

import hsbench.models  # noqa: F401  (registers the networks)
from hsbench.models import DeepLabV3Plus, MobileNetV2Encoder, RUNet, UNet
from hsbench.registry import MODELS

torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)

MODEL_NAMES = sorted(MODELS.module_dict)
# Small but structurally complete options, so the suite stays fast on two CPU cores.
SMALL_OPTIONS = {
    "unet": {"base_channels": 8},
    "runet": {"base_channels": 8},
    "deeplabv3plus": {"width_mult": 0.5, "aspp_channels": 32},
    # patch classifiers run their network once per pixel: the smallest window each accepts
    "cnn3d": {"patch_size": 3},
    "hybridsn": {"patch_size": 9},
    "ssrn": {"patch_size": 3},
}


def small_options(name: str) -> dict:
    return SMALL_OPTIONS.get(name, {})


def test_expected_models_are_registered() -> None:
    assert {"unet", "runet", "deeplabv3plus"} <= set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("shape", [(1, 5, 37, 53), (2, 25, 64, 96)])
def test_forward_backward_any_size(name: str, shape: tuple[int, int, int, int]) -> None:
    torch.manual_seed(0)
    model = MODELS.module_dict[name](shape[1], 7, **small_options(name))
    cube = torch.randn(shape)
    logits = model(cube)
    assert logits.shape == (shape[0], 7, shape[2], shape[3])
    logits.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_eval_mode_is_deterministic_and_batch_independent(name: str) -> None:
    torch.manual_seed(0)
    model = MODELS.module_dict[name](4, 3, **small_options(name)).eval()
    cube = torch.randn(2, 4, 33, 41)
    with torch.no_grad():
        together = model(cube)
        alone = model(cube[1:])
    torch.testing.assert_close(together[1:], alone, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_search_space_options_build(name: str) -> None:
    cls = MODELS.module_dict[name]
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    options = cls.search_space(trial)
    assert options and set(options) == set(trial.params)
    if "base_channels" in options:
        options["base_channels"] = 8  # keep the forward cheap; the other options are what is under test
    if "width_mult" in options:
        options["aspp_channels"] = 32
    if "patch_size" in options:
        options["patch_size"] = small_options(name).get("patch_size", 1)
    model = cls(3, 2, **options).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 35, 35)).shape == (1, 2, 35, 35)


def test_runet_recipe_batchnorm_and_dropout_before_deepest_down_block() -> None:
    model = RUNet(25, 9)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert isinstance(model.bottleneck_dropout, nn.Dropout) and model.bottleneck_dropout.p == 0.25
    assert RUNet.recipe_hflip_p == 0.1

    calls: list[nn.Module] = []
    for module in model.modules():
        if not list(module.children()):
            module.register_forward_hook(lambda m, *_: calls.append(m))
    model.eval()(torch.randn(1, 25, 32, 32))
    deepest_first_layer = next(m for m in model.downs[-1].modules() if not list(m.children()))
    assert calls[calls.index(deepest_first_layer) - 1] is model.bottleneck_dropout
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 1


def test_plain_unet_has_no_batchnorm_or_dropout() -> None:
    model = UNet(25, 9)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in model.modules())


def test_runet_dropout_is_active_only_in_training() -> None:
    model = RUNet(3, 2, base_channels=4, depth=2)
    cube = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(model.train()(cube), model(cube))
        torch.testing.assert_close(model.eval()(cube), model(cube))


def test_deeplabv3plus_has_a_learnable_1x1_band_to_rgb_input_layer() -> None:
    model = DeepLabV3Plus(25, 9)
    layer = model.input_layer
    assert isinstance(layer, nn.Conv2d)
    assert layer.kernel_size == (1, 1) and layer.in_channels == 25 and layer.out_channels == 3
    assert layer.weight.requires_grad
    assert model.decoder.low_level_projection[0].out_channels == 48


def test_deeplabv3plus_aspp_rates_scale_with_output_stride() -> None:
    def rates(model: DeepLabV3Plus) -> list[int]:
        return [branch[0].dilation[0] for branch in list(model.aspp.branches)[1:-1]]

    assert rates(DeepLabV3Plus(3, 2, width_mult=0.5, aspp_channels=16)) == [6, 12, 18]
    assert rates(DeepLabV3Plus(3, 2, width_mult=0.5, aspp_channels=16, output_stride=8)) == [12, 24, 36]


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_mobilenetv2_feature_strides(output_stride: int) -> None:
    encoder = MobileNetV2Encoder(width_mult=0.5, output_stride=output_stride).eval()
    with torch.no_grad():
        low, high = encoder(torch.randn(1, 3, 64, 96))
    assert low.shape == (1, encoder.low_level_channels, 16, 24)
    assert high.shape == (1, encoder.out_channels, 64 // output_stride, 96 // output_stride)


def test_mobilenetv2_layout_matches_the_reference_numbering() -> None:
    encoder = MobileNetV2Encoder()
    keys = encoder.state_dict().keys()
    assert len(encoder.features) == 18  # stem + 17 inverted residual blocks; the 1x1 to 1280 is not used
    assert {"features.0.0.weight", "features.1.conv.0.0.weight", "features.1.conv.1.weight",
            "features.2.conv.0.0.weight", "features.2.conv.2.weight", "features.17.conv.3.running_var"} <= set(keys)
    # The ImageNet model's feature layers 0-17 have 1,811,712 parameters (3,504,872 in all).
    assert sum(p.numel() for p in encoder.parameters()) == 1_811_712
    assert (encoder.low_level_channels, encoder.out_channels) == (24, 320)
