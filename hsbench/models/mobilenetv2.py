"""MobileNetV2 encoder for DeepLabV3+ (Sandler et al., CVPR 2018), with dilation for output stride 8 / 16.

Module names follow the common ``features.N`` layout (``features.0`` the stem, ``features.1`` to ``features.17``
the inverted residual blocks, each with a ``conv`` sequence), so ImageNet checkpoints saved in that layout load
with ``load_state_dict(..., strict=False)``; only the final 1x1 conv to 1280 channels (``features.18``), which
segmentation does not use, is absent. The code is written from the paper's layer table.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["MobileNetV2Encoder", "INVERTED_RESIDUAL_SETTINGS", "make_divisible"]

INVERTED_RESIDUAL_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    # (expansion t, output channels c, repeats n, first stride s): Table 2 of the MobileNetV2 paper.
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LOW_LEVEL_END = 4
"""``features[:4]`` ends at stride 4 with 24 channels: the low-level features DeepLabV3+ decodes with."""


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor``, never more than 10% below ``value``.

    Multiples of 8 are what the reference width-multiplier models use (and what hardware kernels like).
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn_relu6(
    in_channels: int, out_channels: int, *, kernel_size: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1
) -> nn.Sequential:
    """Convolution, BatchNorm, ReLU6 (numbered 0, 1, 2 as in the reference layout)."""
    padding = (kernel_size - 1) // 2 * dilation
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
            groups=groups, bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise 3x3 (possibly strided or dilated), linear project (1x1); residual when shapes match.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: depthwise stride (1 or 2).
        expansion: hidden width as a multiple of ``in_channels``; 1 skips the expansion layer.
        dilation: depthwise dilation, used instead of striding once the output stride is reached.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, expansion: int, dilation: int = 1) -> None:
        super().__init__()
        hidden = int(round(in_channels * expansion))
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_relu6(in_channels, hidden, kernel_size=1))
        layers += [
            conv_bn_relu6(hidden, hidden, stride=stride, dilation=dilation, groups=hidden),
            nn.Conv2d(hidden, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 feature extractor returning low-level (stride 4) and high-level (stride ``output_stride``) maps.

    Once the running stride reaches ``output_stride``, further stride-2 stages keep the resolution and dilate
    their depthwise convolutions instead (atrous convolution, DeepLabV3), so the receptive field still grows.

    Args:
        in_channels: input channels (3 when fed through DeepLabV3+'s spectral adapter).
        width_mult: channel multiplier of every layer (the paper's alpha).
        output_stride: stride of the high-level features: 8, 16 or 32 (32 = no dilation).

    Attributes:
        low_level_channels: channels of the stride-4 features.
        out_channels: channels of the high-level features.
    """

    def __init__(self, in_channels: int = 3, *, width_mult: float = 1.0, output_stride: int = 16) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        self.output_stride = output_stride
        stem = make_divisible(STEM_CHANNELS * width_mult)
        layers: list[nn.Module] = [conv_bn_relu6(in_channels, stem, stride=2)]
        channels, stride, dilation = stem, 2, 1
        for expansion, base_out, repeats, first_stride in INVERTED_RESIDUAL_SETTINGS:
            out = make_divisible(base_out * width_mult)
            block_dilation = dilation
            if first_stride > 1 and stride >= output_stride:
                dilation *= first_stride  # keep resolution; later blocks of the stage see the wider dilation
                first_stride = 1
            stride *= first_stride
            for i in range(repeats):
                layers.append(
                    InvertedResidual(
                        channels, out, stride=first_stride if i == 0 else 1, expansion=expansion,
                        dilation=block_dilation if i == 0 else dilation,
                    )
                )
                channels = out
        self.features = nn.Sequential(*layers)
        self.low_level_channels = make_divisible(INVERTED_RESIDUAL_SETTINGS[1][1] * width_mult)
        self.out_channels = channels
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation (fan-out) as in the reference ImageNet training; only matters when not loading weights.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low_level, high_level)`` feature maps for an input batch ``(N, C, H, W)``."""
        low = self.features[:LOW_LEVEL_END](x)
        high = self.features[LOW_LEVEL_END:](low)
        return low, high
