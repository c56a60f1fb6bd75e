"""DeepLabV3+ with a MobileNetV2 or ResNet encoder and a learnable spectral adapter (HS3-Bench's DL3+ baselines).

HS3-Bench feeds hyperspectral cubes to an RGB architecture through a learnable 1x1 convolution from C bands to
3 channels; the rest is DeepLabV3+ (Chen et al., ECCV 2018): atrous spatial pyramid pooling on the stride-16
features, a decoder that fuses them with stride-4 features projected to 48 channels, and bilinear up-sampling
to the input size. Whether the encoder starts from pretrained weights, or stays frozen, is the strategy's choice.

Encoders (:data:`ENCODERS`) and decoders (:data:`DECODER_FUSION_LAYERS`) are registries: ``hsbench``'s decoder
fuses with two 3x3 convolutions as the DeepLabV3+ paper; ``vainf`` with one, as VainF/DeepLabV3Plus-Pytorch (the
implementation HS3-Bench trains).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from hsbench.models._padding import crop_to, pad_to_multiple
from hsbench.models.mobilenetv2 import MobileNetV2Encoder
from hsbench.models.resnet import ResNetEncoder
from hsbench.registry import MODELS

__all__ = ["DeepLabV3Plus", "ASPP", "ENCODERS", "DECODER_FUSION_LAYERS"]

LOW_LEVEL_PROJECTION_CHANNELS = 48  # the DeepLabV3+ paper's choice (Table 1)


def _resnet(depth: int) -> Callable[[float, int], nn.Module]:
    def build(width_mult: float, output_stride: int) -> nn.Module:
        if width_mult != 1.0:
            raise ValueError(f"resnet{depth} has no width multiplier (width_mult must be 1.0, got {width_mult})")
        return ResNetEncoder(depth, 3, output_stride=output_stride)

    return build


ENCODERS: dict[str, Callable[[float, int], nn.Module]] = {
    "mobilenet_v2": lambda width_mult, output_stride: MobileNetV2Encoder(
        3, width_mult=width_mult, output_stride=output_stride
    ),
    "resnet50": _resnet(50),
    "resnet101": _resnet(101),
}
"""``build(width_mult, output_stride)`` of each encoder on three channels; each returns ``(low, high)`` features
and has ``low_level_channels``, ``out_channels`` and ``output_stride``."""

DECODER_FUSION_LAYERS: dict[str, int] = {"hsbench": 2, "vainf": 1}
"""3x3 fusion convolutions of each decoder variant: the paper's two, or VainF's (and so HS3-Bench's) one."""


def conv_bn_relu(in_channels: int, out_channels: int, *, kernel_size: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = (kernel_size - 1) // 2 * dilation
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ImagePooling(nn.Module):
    """ASPP's global-context branch: average over the image, 1x1 conv, broadcast back.

    No BatchNorm here: on a 1x1 map it would see one value per channel and image, which fails for batch size
    one in training (and is noisy for small batches); a biased convolution carries the same information.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.relu(self.conv(x.mean(dim=(2, 3), keepdim=True)))
        return pooled.expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 branch, one 3x3 branch per rate, image pooling, then a 1x1 fusion.

    Args:
        in_channels: channels of the encoder's high-level features.
        out_channels: channels of every branch and of the output.
        rates: dilation rates of the 3x3 branches.
        dropout: dropout after the fusion (0.1 as common DeepLabV3 implementations).
    """

    def __init__(self, in_channels: int, out_channels: int, rates: Sequence[int], *, dropout: float = 0.1) -> None:
        super().__init__()
        branches: list[nn.Module] = [conv_bn_relu(in_channels, out_channels)]
        branches += [conv_bn_relu(in_channels, out_channels, kernel_size=3, dilation=r) for r in rates]
        branches.append(ImagePooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(conv_bn_relu(len(branches) * out_channels, out_channels), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class Decoder(nn.Module):
    """DeepLabV3+ decoder: up-sample ASPP features to stride 4, fuse with projected low-level features.

    The fusion input is ``cat([aspp, low])``; VainF concatenates ``[low, aspp]``, which its weight mapping
    reorders exactly.
    """

    def __init__(self, low_level_channels: int, aspp_channels: int, *, fusion_layers: int = 2) -> None:
        super().__init__()
        self.low_level_projection = conv_bn_relu(low_level_channels, LOW_LEVEL_PROJECTION_CHANNELS)
        fused = aspp_channels + LOW_LEVEL_PROJECTION_CHANNELS
        self.fuse = nn.Sequential(*(
            conv_bn_relu(fused if i == 0 else aspp_channels, aspp_channels, kernel_size=3)
            for i in range(fusion_layers)
        ))

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([high, self.low_level_projection(low)], dim=1))


@MODELS.register_module(name="deeplabv3plus")
class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ (MobileNetV2 or ResNet encoder) on hyperspectral cubes through a learnable 1x1 band-to-RGB layer.

    Args:
        in_channels: number of spectral bands.
        num_classes: number of output classes.
        backbone: encoder, a key of :data:`ENCODERS` (``mobilenet_v2``, ``resnet50``, ``resnet101``).
        decoder: ``hsbench`` (two 3x3 fusion convolutions, the default) or ``vainf`` (one, as VainF / HS3-Bench).
        width_mult: MobileNetV2 width multiplier (1.0 for ResNets).
        output_stride: stride of the encoder's high-level features (8, 16 or 32).
        aspp_channels: width of ASPP and decoder.
        aspp_rates: dilation rates at output stride 16; scaled by ``16 / output_stride``. The paper's
            (6, 12, 18) is the default; smaller rates suit small images, where a large rate only samples padding.
    """

    recipe_hflip_p: ClassVar[float] = 0.0
    """Horizontal-flip probability of the published training recipe (a hint for ``EngineConfig.hflip_p``)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        backbone: str = "mobilenet_v2",
        decoder: str = "hsbench",
        width_mult: float = 1.0,
        output_stride: int = 16,
        aspp_channels: int = 256,
        aspp_rates: Sequence[int] = (6, 12, 18),
    ) -> None:
        super().__init__()
        for option, value, known in (("backbone", backbone, ENCODERS), ("decoder", decoder, DECODER_FUSION_LAYERS)):
            if value not in known:
                raise ValueError(f"DeepLabV3+ {option} must be one of {', '.join(known)}, got {value!r}")
        self.input_layer = nn.Conv2d(in_channels, 3, kernel_size=1)
        self.encoder = ENCODERS[backbone](width_mult, output_stride)
        rates = [max(1, r * 16 // output_stride) for r in aspp_rates]
        self.aspp = ASPP(self.encoder.out_channels, aspp_channels, rates)
        self.decoder = Decoder(
            self.encoder.low_level_channels, aspp_channels, fusion_layers=DECODER_FUSION_LAYERS[decoder]
        )
        self.classifier = nn.Conv2d(aspp_channels, num_classes, kernel_size=1)

    @property
    def stride(self) -> int:
        """Total down-sampling factor; inputs are padded internally to a multiple of it."""
        return self.encoder.output_stride

    def forward(self, cube: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, H, W)`` for a batch of cubes ``(N, C, H, W)``."""
        size = cube.shape[-2:]
        x = self.input_layer(pad_to_multiple(cube, self.stride))
        low, high = self.encoder(x)
        logits = self.classifier(self.decoder(self.aspp(high), low))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return crop_to(logits, size)

    @classmethod
    def search_space(cls, trial: Any, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Options an Optuna sweep varies for this network; ``fixed``: the network options the run sets (a ResNet
        backbone has no width multiplier, so none is suggested for it)."""
        space: dict[str, Any] = {"aspp_channels": trial.suggest_categorical("aspp_channels", [128, 256])}
        if (fixed or {}).get("backbone", "mobilenet_v2") == "mobilenet_v2":
            space["width_mult"] = trial.suggest_categorical("width_mult", [0.5, 0.75, 1.0])
        return space
