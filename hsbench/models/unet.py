"""U-Net and RU-Net, the in-domain HSI baselines of HS3-Bench.

The layout follows the U-Net variant that HS3-Bench trains on raw hyperspectral cubes (Theisen et al., IROS 2024):
double 3x3 convolutions per level, max-pool down-sampling, bilinear up-sampling with the deepest level at half
width so that each decoder block sees as many up-sampled as skip channels, and a 1x1 classifier. RU-Net
("regularised U-Net") adds BatchNorm and dropout p = 0.25 in front of the deepest down block; its horizontal
flip augmentation (p = 0.1) belongs to the training recipe (``EngineConfig.hflip_p``), not to the network.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from hsbench.models._padding import crop_to, pad_to_multiple
from hsbench.registry import MODELS

__all__ = ["UNet", "RUNet"]


def conv_block(
    in_channels: int, out_channels: int, *, mid_channels: int | None = None, batch_norm: bool
) -> nn.Sequential:
    """Two (3x3 conv, [BatchNorm], ReLU) layers; the conv bias is redundant before BatchNorm, so dropped."""
    mid_channels = mid_channels or out_channels
    layers: list[nn.Module] = []
    for cin, cout in ((in_channels, mid_channels), (mid_channels, out_channels)):
        layers.append(nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DownBlock(nn.Sequential):
    """Halve the resolution (2x2 max-pool), then a double convolution."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool) -> None:
        super().__init__(nn.MaxPool2d(2), conv_block(in_channels, out_channels, batch_norm=batch_norm))


class UpBlock(nn.Module):
    """Bilinear 2x up-sampling, concatenation with the skip connection, then a double convolution."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool) -> None:
        super().__init__()
        self.conv = conv_block(in_channels, out_channels, mid_channels=in_channels // 2, batch_norm=batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        return self.conv(torch.cat([skip, x], dim=1))


@MODELS.register_module(name="unet")
class UNet(nn.Module):
    """U-Net for dense prediction on hyperspectral cubes of any size.

    Args:
        in_channels: number of spectral bands.
        num_classes: number of output classes (logit channels).
        base_channels: width of the first level; level ``l`` has ``base_channels * 2**l`` channels. HS3-Bench
            uses 64; 32 is the default here to keep CPU runs short.
        depth: number of down-sampling steps; inputs are padded to a multiple of ``2**depth``.
        batch_norm: BatchNorm after every convolution.
        dropout: dropout probability applied to the input of the deepest down block (0 disables it).
    """

    recipe_hflip_p: ClassVar[float] = 0.0
    """Horizontal-flip probability of the published training recipe (a hint for ``EngineConfig.hflip_p``)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        base_channels: int = 32,
        depth: int = 4,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = depth
        widths = [base_channels * 2**level for level in range(depth)]
        self.stem = conv_block(in_channels, widths[0], batch_norm=batch_norm)
        # The deepest level keeps the width of the level above it: with bilinear up-sampling (no learned
        # channel reduction) each decoder block then concatenates two tensors of equal width.
        down_widths = [*widths[1:], widths[-1]]
        self.downs = nn.ModuleList(
            DownBlock(cin, cout, batch_norm=batch_norm) for cin, cout in zip(widths, down_widths)
        )
        self.bottleneck_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.ups = nn.ModuleList(
            UpBlock(2 * widths[level], widths[max(level - 1, 0)], batch_norm=batch_norm)
            for level in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    @property
    def stride(self) -> int:
        """Total down-sampling factor; inputs are padded internally to a multiple of it."""
        return 2**self.depth

    def forward(self, cube: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, H, W)`` for a batch of cubes ``(N, C, H, W)``."""
        size = cube.shape[-2:]
        skips = [self.stem(pad_to_multiple(cube, self.stride))]
        for level, down in enumerate(self.downs):
            x = skips[-1]
            if level == self.depth - 1:
                x = self.bottleneck_dropout(x)
            skips.append(down(x))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return crop_to(self.head(x), size)

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        """Options an Optuna sweep varies for this network."""
        return {
            "base_channels": trial.suggest_categorical("base_channels", [16, 32, 64]),
            "depth": trial.suggest_int("depth", 3, 5),
            "batch_norm": trial.suggest_categorical("batch_norm", [False, True]),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }


@MODELS.register_module(name="runet")
class RUNet(UNet):
    """RU-Net of HS3-Bench: U-Net with BatchNorm and dropout 0.25 before the deepest down block.

    Args:
        in_channels: number of spectral bands.
        num_classes: number of output classes.
        base_channels: width of the first level.
        depth: number of down-sampling steps.
        dropout: dropout probability in front of the deepest down block (HS3-Bench: 0.25).
    """

    recipe_hflip_p: ClassVar[float] = 0.1  # HS3-Bench's RU-Net recipe

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        base_channels: int = 32,
        depth: int = 4,
        dropout: float = 0.25,
    ) -> None:
        super().__init__(
            in_channels, num_classes, base_channels=base_channels, depth=depth, batch_norm=True, dropout=dropout
        )

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        """Options an Optuna sweep varies (BatchNorm stays on: it defines RU-Net)."""
        return {
            "base_channels": trial.suggest_categorical("base_channels", [16, 32, 64]),
            "depth": trial.suggest_int("depth", 3, 5),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }
