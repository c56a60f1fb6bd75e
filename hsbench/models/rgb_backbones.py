"""RGB-pretrained segmentation networks for ``cross_modality``, and the registry they live in.

These networks take three-channel images in ``[0, 1]`` (an adapter's output) and return dense logits of any
size. They are not in ``MODELS``: that registry's contract is ``cls(in_channels, num_classes)`` on any band count
with no weights needed, while these exist to be loaded from pretrained weights. Each entry is a frozen
:class:`RGBBackboneSpec` saying how to build the network, how to load a user's weights into it, and which
parameters form its classifier (re-initialised for the target's classes, and the only trainable part in
``pt`` mode: the strategy freezes, the constructors never do).

``deeplabv3plus_mnv2`` is hsbench's DeepLabV3+ with its MobileNetV2 encoder fed three channels; it loads three
weight layouts (:mod:`hsbench.models.rgb_weights`): a torchvision-format ImageNet MobileNetV2 state dict (encoder
only), a VainF DeepLabV3Plus-Pytorch checkpoint (``model_state``; HS3-Bench's Cityscapes models), and hsbench's
own names (zoo artifacts). ``deeplabv3plus_r50`` / ``deeplabv3plus_r101`` are the same network with a ResNet
encoder (HS3-Bench's DL3+ ResNet-101 rows), loading torchvision ImageNet ResNets (encoder only), VainF
``deeplabv3plus_resnet50/101`` checkpoints and hsbench's names. ``dinov2`` and ``segformer``
(:mod:`hsbench.models.hf_backbones`) and ``mmseg`` (:mod:`hsbench.models.mmseg_backend`) register themselves the
same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from hsbench.config_files import did_you_mean
from hsbench.errors import ConfigError
from hsbench.models.deeplabv3plus import DECODER_FUSION_LAYERS, DeepLabV3Plus

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageNormalization",
    "WeightReport",
    "RGBBackboneSpec",
    "RGB_BACKBONES",
    "register_rgb_backbone",
    "rgb_backbone",
    "load_matching",
    "build_deeplabv3plus_mnv2",
    "build_deeplabv3plus_resnet",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Input statistics of torchvision's ImageNet models, VainF's Cityscapes models and DINOv2 / SegFormer."""


class ImageNormalization(nn.Module):
    """``(x - mean) / std`` per channel: the input statistics the pretrained weights were trained with.

    The buffers are not persistent, so they never appear in (or clash with) a checkpoint's state dict.
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32)[None, :, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32)[None, :, None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@dataclass
class WeightReport:
    """What loading pretrained weights did (stored as facts of the run).

    Attributes:
        source: the weights file, folder or model name.
        layout: the recognised layout (e.g. ``vainf_deeplabv3plus``).
        loaded: number of tensors loaded.
        initialised: parameter names outside the classifier that the weights did not cover (still random).
        unused: names in the weights that the network has no place for (e.g. an ImageNet classifier).
        expected_random: name prefixes the layout never covers (an ImageNet encoder-only file: ``aspp.``), so
            their absence is no partial load.
        expected_unused: weight-name prefixes the layout knows it does not use (``classifier.1.`` of ImageNet).
    """

    source: str
    layout: str
    loaded: int = 0
    initialised: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    expected_random: tuple[str, ...] = ()
    expected_unused: tuple[str, ...] = ()

    @property
    def missing(self) -> list[str]:
        """Network tensors the layout should have filled but the weights lack."""
        return [k for k in self.initialised if not k.startswith(self.expected_random)]

    @property
    def unexpected(self) -> list[str]:
        """Weights the network has no place for, beyond what the layout knows it does not use."""
        return [k for k in self.unused if not k.startswith(self.expected_unused)]

    @property
    def partial(self) -> bool:
        """Whether the file loaded only in part (needs the user's ``strict=false``)."""
        return bool(self.missing or self.unexpected)

    def listing(self, shown: int = 20) -> str:
        """Missing and unexpected keys, for a one-line error."""
        parts = []
        for kind, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
                parts.append(f"{kind}: {', '.join(keys[:shown])}{more}")
        return "; ".join(parts)

    def summary(self) -> dict[str, Any]:
        return {
            "weights": self.source, "weights_layout": self.layout, "weights_loaded_tensors": self.loaded,
            "weights_random_modules": _module_prefixes(self.initialised),
            "weights_unused_modules": _module_prefixes(self.unused),
        }


def _module_prefixes(names: list[str], depth: int = 2) -> list[str]:
    """Distinct leading name components (``aspp.branches``), for a readable summary of many tensor names."""
    return sorted({".".join(name.split(".")[:depth]) for name in names})


BuildFn = Callable[[int, dict[str, Any]], nn.Module]
"""``build(num_classes, options) -> network`` with random (or default) initialisation."""
FromWeightsFn = Callable[[str, int, dict[str, Any], bool], tuple[nn.Module, WeightReport]]
"""``from_weights(weights, num_classes, options, trusted) -> (network, report)``; the classifier stays fresh."""


@dataclass(frozen=True)
class RGBBackboneSpec:
    """A registered RGB network.

    Attributes:
        name: registry name (the strategy's ``backbone`` option).
        description: one line for ``hsbench show``.
        build: builds the architecture from options alone (for synthetic pretraining).
        from_weights: builds from a user's weights (whose layout may fix some options) and loads them.
        classifier: parameter-name prefixes of the classifier.
        default_options: options of ``build`` and their defaults (unknown user options are an error).
        weights_help: what ``weights`` may be, for error messages and docs.
    """

    name: str
    description: str
    build: BuildFn
    from_weights: FromWeightsFn
    classifier: tuple[str, ...]
    default_options: dict[str, Any] = field(default_factory=dict, hash=False)
    weights_help: str = ""

    def is_classifier(self, parameter_name: str) -> bool:
        return parameter_name.startswith(self.classifier)


RGB_BACKBONES: dict[str, RGBBackboneSpec] = {}
"""Registered RGB networks by name."""


def register_rgb_backbone(spec: RGBBackboneSpec) -> RGBBackboneSpec:
    """Add ``spec`` to :data:`RGB_BACKBONES`; a duplicate name is an error, as in every hsbench registry."""
    if spec.name in RGB_BACKBONES:
        raise KeyError(f"RGB backbone {spec.name!r} is already registered")
    RGB_BACKBONES[spec.name] = spec
    return spec


def rgb_backbone(name: str) -> RGBBackboneSpec:
    """The spec registered as ``name`` (importing the optional backends' registrations first)."""
    import hsbench.models.hf_backbones  # noqa: F401  (registers dinov2, segformer)
    import hsbench.models.mmseg_backend  # noqa: F401  (registers mmseg)

    if name not in RGB_BACKBONES:
        raise ConfigError(f"unknown RGB backbone {name!r}; backbones are {', '.join(sorted(RGB_BACKBONES))}")
    return RGB_BACKBONES[name]


def load_matching(
    network: nn.Module, state: dict[str, torch.Tensor], *, skip: tuple[str, ...], source: str, layout: str,
    expected_random: tuple[str, ...] = (), expected_unused: tuple[str, ...] = (),
) -> WeightReport:
    """Load the tensors of ``state`` whose names the network has, except names starting with ``skip``.

    Shapes must agree (a mismatch is a wrong architecture option, reported with the option to check); names
    the network lacks are reported as unused, network tensors the state lacks as still initialised.
    """
    own = network.state_dict()
    usable = {k: v for k, v in state.items() if k in own and not k.startswith(skip)}
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in usable.items() if v.shape != own[k].shape]
    if wrong:
        raise ConfigError(
            f"weights {source} ({layout}) do not fit the network built from backbone_options: {len(wrong)} tensors "
            f"differ in shape, e.g. {'; '.join(wrong[:3])} (check width_mult / aspp_channels / the model config)"
        )
    network.load_state_dict(usable, strict=False)
    initialised = [
        k for k in own if k not in usable and not k.startswith(skip) and not k.endswith("num_batches_tracked")
    ]
    return WeightReport(source, layout, len(usable), initialised, [k for k in state if k not in own],
                        expected_random, expected_unused)


# ------------------------------------------------------------------------------------------ deeplabv3plus_mnv2
MNV2_DEFAULTS: dict[str, Any] = {
    "width_mult": 1.0,
    "output_stride": 16,
    "aspp_channels": 256,
    "aspp_rates": [6, 12, 18],
    # VainF's (and so HS3-Bench's) decoder has one 3x3 fusion layer; the DeepLabV3+ paper's (hsbench) has two.
    "decoder": "vainf",
}


def _check_decoder(decoder: Any) -> None:
    if decoder not in DECODER_FUSION_LAYERS:
        raise ConfigError(f"decoder must be one of {', '.join(DECODER_FUSION_LAYERS)}, got {decoder!r}"
                          f"{did_you_mean(str(decoder), DECODER_FUSION_LAYERS)}")


def build_deeplabv3plus_mnv2(num_classes: int, options: dict[str, Any]) -> DeepLabV3Plus:
    """hsbench's DeepLabV3+ on three-channel images in ``[0, 1]``.

    The network's 1x1 band adapter becomes the ImageNet input normalisation (band adapters belong to the
    strategy here). ``decoder=vainf`` keeps the first of the paper decoder's two 3x3 fusion layers (built and then
    cut, so a seed initialises every other layer as it always did).
    """
    o = {**MNV2_DEFAULTS, **options}
    _check_decoder(o["decoder"])
    network = DeepLabV3Plus(
        3, num_classes, width_mult=float(o["width_mult"]), output_stride=int(o["output_stride"]),
        aspp_channels=int(o["aspp_channels"]), aspp_rates=tuple(int(r) for r in o["aspp_rates"]),
    )
    network.input_layer = ImageNormalization()
    network.decoder.fuse = network.decoder.fuse[: DECODER_FUSION_LAYERS[str(o["decoder"])]]
    return network


def _mnv2_from_weights(
    weights: str, num_classes: int, options: dict[str, Any], trusted: bool
) -> tuple[nn.Module, WeightReport]:
    from hsbench.models.rgb_weights import MNV2_LAYOUTS, detect_layout, read_checkpoint

    state = read_checkpoint(weights, trusted=trusted)
    layout = detect_layout(state, MNV2_LAYOUTS, source=weights)
    converted = layout.convert(state)
    network = build_deeplabv3plus_mnv2(num_classes, {**options, **layout.implied_options(converted)})
    return network, load_matching(network, converted, skip=("classifier.",), source=weights, layout=layout.name,
                                  expected_random=layout.expected_random, expected_unused=layout.expected_unused)


register_rgb_backbone(RGBBackboneSpec(
    name="deeplabv3plus_mnv2",
    description="DeepLabV3+ with a MobileNetV2 encoder (HS3-Bench's DL3+), ImageNet / VainF Cityscapes weights",
    build=build_deeplabv3plus_mnv2,
    from_weights=_mnv2_from_weights,
    classifier=("classifier.",),
    default_options=MNV2_DEFAULTS,
    weights_help="a torchvision MobileNetV2 state dict (.pth), a VainF DeepLabV3+ checkpoint with 'model_state' "
    "(.pth), or a .safetensors / .pth file in hsbench's own names",
))


# ------------------------------------------------------------------------------- deeplabv3plus_r50 / _r101
RESNET_DEFAULTS: dict[str, Any] = {
    "output_stride": 16,  # 8 dilates layer3 and layer4, 16 only layer4 (torchvision's replace_stride_with_dilation)
    "aspp_channels": 256,
    "aspp_rates": [6, 12, 18],  # at output stride 16; doubled at 8 (VainF's 12/24/36)
    # VainF's (and so HS3-Bench's) decoder, as for deeplabv3plus_mnv2.
    "decoder": "vainf",
}


def build_deeplabv3plus_resnet(depth: int) -> BuildFn:
    """``build`` of hsbench's DeepLabV3+ with a ResNet-``depth`` encoder on three-channel images in ``[0, 1]``."""

    def build(num_classes: int, options: dict[str, Any]) -> DeepLabV3Plus:
        o = {**RESNET_DEFAULTS, **options}
        _check_decoder(o["decoder"])
        if int(o["output_stride"]) not in (8, 16, 32):
            raise ConfigError(f"output_stride must be 8, 16 or 32, got {o['output_stride']}")
        network = DeepLabV3Plus(
            3, num_classes, backbone=f"resnet{depth}", decoder=str(o["decoder"]),
            output_stride=int(o["output_stride"]), aspp_channels=int(o["aspp_channels"]),
            aspp_rates=tuple(int(r) for r in o["aspp_rates"]),
        )
        network.input_layer = ImageNormalization()
        return network

    return build


def _resnet_from_weights(depth: int) -> FromWeightsFn:
    def from_weights(
        weights: str, num_classes: int, options: dict[str, Any], trusted: bool
    ) -> tuple[nn.Module, WeightReport]:
        from hsbench.models.rgb_weights import detect_layout, read_checkpoint, resnet_layouts

        state = read_checkpoint(weights, trusted=trusted)
        layout = detect_layout(state, resnet_layouts(depth), source=weights)
        converted = layout.convert(state)
        network = build_deeplabv3plus_resnet(depth)(num_classes, {**options, **layout.implied_options(converted)})
        return network, load_matching(
            network, converted, skip=("classifier.",), source=weights, layout=layout.name,
            expected_random=layout.expected_random, expected_unused=layout.expected_unused,
        )

    return from_weights


for _depth in (50, 101):
    register_rgb_backbone(RGBBackboneSpec(
        name=f"deeplabv3plus_r{_depth}",
        description=f"DeepLabV3+ with a ResNet-{_depth} encoder (HS3-Bench's DL3+ ResNet), ImageNet / VainF weights",
        build=build_deeplabv3plus_resnet(_depth),
        from_weights=_resnet_from_weights(_depth),
        classifier=("classifier.",),
        default_options=RESNET_DEFAULTS,
        weights_help=f"a torchvision ResNet-{_depth} state dict (.pth), a VainF deeplabv3plus_resnet{_depth} "
        "checkpoint with 'model_state' (.pth), or a .safetensors / .pth file in hsbench's own names",
    ))
