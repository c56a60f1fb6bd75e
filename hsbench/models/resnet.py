"""ResNet-50 / ResNet-101 encoders for DeepLabV3+ (He et al., CVPR 2016), with dilation for output stride 8 / 16.

Module names follow torchvision's ResNet layout (``conv1``, ``bn1``, ``layer1`` to ``layer4`` of ``Bottleneck``
blocks with ``conv1..3`` / ``bn1..3`` / ``downsample.0`` / ``downsample.1``), so a torchvision ImageNet state dict
loads strictly once its ``fc`` is dropped, and VainF's DeepLabV3Plus-Pytorch backbone (the same layout under
``backbone.``) maps by a prefix. The stride sits on the 3x3 convolution of each block (the "v1.5" variant that
torchvision and VainF ship). Written from the papers and the published layout facts.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["ResNetEncoder", "Bottleneck", "RESNET_STAGES", "STEM_CHANNELS"]

RESNET_STAGES: dict[int, tuple[int, int, int, int]] = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
"""Bottleneck blocks per stage (layer1..layer4) by depth: Table 1 of the ResNet paper."""
STEM_CHANNELS = 64
STAGE_WIDTHS = (64, 128, 256, 512)
"""Bottleneck (3x3) width per stage; each block outputs ``Bottleneck.expansion`` times as many channels."""
DILATED_STAGES: dict[int, tuple[bool, bool, bool]] = {
    8: (False, True, True), 16: (False, False, True), 32: (False, False, False),
}
"""torchvision's ``replace_stride_with_dilation`` (layer2..layer4) for each output stride."""


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided or dilated), 1x1 expand, each with BatchNorm; residual via ``downsample`` if needed.

    Args:
        in_channels: input channels.
        width: channels of the 3x3 convolution; the output has ``4 * width``.
        stride: stride of the 3x3 convolution.
        dilation: dilation of the 3x3 convolution.
        downsample: projection of the shortcut when stride or channels change.
    """

    expansion = 4

    def __init__(
        self, in_channels: int, width: int, *, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(
            width, width, kernel_size=3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNetEncoder(nn.Module):
    """ResNet feature extractor returning ``layer1`` (stride 4) and ``layer4`` (stride ``output_stride``) maps.

    For output stride 8 / 16, ``layer2..4`` trade their stride for dilation as torchvision's
    ``replace_stride_with_dilation``: the first block of a dilated stage keeps the previous dilation, the rest use
    the stage's (multiplied) dilation. No ``avgpool`` / ``fc``: segmentation does not use them.

    Args:
        depth: 50 or 101.
        in_channels: input channels (3 for ImageNet weights).
        output_stride: 8, 16 or 32.

    Attributes:
        low_level_channels: channels of the stride-4 features (256).
        out_channels: channels of the high-level features (2048).
    """

    def __init__(self, depth: int = 50, in_channels: int = 3, *, output_stride: int = 16) -> None:
        super().__init__()
        if depth not in RESNET_STAGES:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_STAGES)}, got {depth}")
        if output_stride not in DILATED_STAGES:
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        self.depth = depth
        self.output_stride = output_stride
        self.conv1 = nn.Conv2d(in_channels, STEM_CHANNELS, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self._channels, self._dilation = STEM_CHANNELS, 1
        dilate = (False, *DILATED_STAGES[output_stride])
        stages = [
            self._stage(width, blocks, stride=1 if i == 0 else 2, dilate=dilate[i])
            for i, (width, blocks) in enumerate(zip(STAGE_WIDTHS, RESNET_STAGES[depth], strict=True))
        ]
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.low_level_channels = STAGE_WIDTHS[0] * Bottleneck.expansion
        self.out_channels = self._channels
        self._init_weights()

    def _stage(self, width: int, blocks: int, *, stride: int, dilate: bool) -> nn.Sequential:
        first_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        out_channels = width * Bottleneck.expansion
        downsample = None
        if stride != 1 or self._channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(self._channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        layers = [Bottleneck(self._channels, width, stride=stride, dilation=first_dilation, downsample=downsample)]
        layers += [Bottleneck(out_channels, width, dilation=self._dilation) for _ in range(blocks - 1)]
        self._channels = out_channels
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # He initialisation (fan-out), as the reference ImageNet training; only matters when not loading weights.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low_level, high_level)`` feature maps for an input batch ``(N, C, H, W)``."""
        low = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        return low, self.layer4(self.layer3(self.layer2(low)))
