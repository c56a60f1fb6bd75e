"""U-Net and RU-Net, the in-domain HSI baselines of HS3-Bench.

The layout follows the U-Net variant that HS3-Bench trains on raw hyperspectral cubes (Theisen et al., IROS 2024):
double 3x3 convolutions per level, max-pool down-sampling, bilinear up-sampling with the deepest level at half
width so that each decoder block sees as many up-sampled as skip channels, and a 1x1 classifier. RU-Net
("regularised U-Net") adds BatchNorm and dropout p = 0.25 in front of the deepest down block; its horizontal
flip augmentation (p = 0.1) belongs to the training recipe (``EngineConfig.hflip_p``), not to the network.

``layout`` picks how the levels are wired (:data:`LAYOUTS`). ``hsbench`` (the default, so stored results keep
their meaning) pads the input to a multiple of the stride, applies the dropout before the deepest max-pool and
resizes up-sampled maps to the skip size. ``hyperseg`` reproduces ``nickstheisen/hyperseg``'s ``UNet`` layer for
layer (``hyperseg/models/unet.py``): base width 64, each down block pools, then drops out, then convolves; each up
block up-samples by 2 and zero-pads to the skip size; the input is not padded. Parameter shapes are the same in
both layouts; weights of real hyperseg checkpoints load through :mod:`hsbench.models.hyperseg_import`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from hsbench.errors import ConfigError
from hsbench.models._padding import crop_to, pad_to_multiple
from hsbench.registry import MODELS

__all__ = ["UNet", "RUNet", "Layout", "LAYOUTS"]


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


class PoolDropoutDownBlock(nn.Sequential):
    """hyperseg's down block: 2x2 max-pool, dropout, double convolution (the dropout module exists at p = 0 too,
    so that the convolution sits at index 2 as in hyperseg's ``maxpool_conv``)."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool, dropout: float = 0.0) -> None:
        super().__init__(
            nn.MaxPool2d(2), nn.Dropout(dropout), conv_block(in_channels, out_channels, batch_norm=batch_norm)
        )


class UpBlock(nn.Module):
    """Bilinear 2x up-sampling, concatenation with the skip connection, then a double convolution."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool) -> None:
        super().__init__()
        self.conv = conv_block(in_channels, out_channels, mid_channels=in_channels // 2, batch_norm=batch_norm)

    def upsample(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``x`` at the skip's size (inputs are padded to a multiple of the stride, so this is an exact 2x)."""
        return F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.upsample(x, skip)], dim=1))


class ScaleAndPadUpBlock(UpBlock):
    """hyperseg's up block: exact 2x bilinear up-sampling, then zero padding (split evenly, extra pixel at the
    bottom / right) to the skip size, which differs by one pixel where a max-pool floored an odd size."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool) -> None:
        super().__init__(in_channels, out_channels, batch_norm=batch_norm)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)

    def upsample(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        return F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])


def _hsbench_down(in_channels: int, out_channels: int, *, batch_norm: bool, dropout: float) -> nn.Module:
    return DownBlock(in_channels, out_channels, batch_norm=batch_norm)  # dropout is the separate bottleneck module


@dataclass(frozen=True)
class Layout:
    """How a U-Net's levels are wired; both layouts have the same parameters, in the same order.

    Attributes:
        base_channels: width of the first level when the user does not set one.
        down: builds a down block ``(in, out, batch_norm=, dropout=)``; ``dropout`` is non-zero only for the
            deepest block, and only when ``bottleneck_dropout`` is false.
        up: the up-block class.
        bottleneck_dropout: a separate dropout module in front of the deepest down block (before its max-pool).
        pad_input: pad the input to a multiple of the stride and crop the logits back.
    """

    base_channels: int
    down: Callable[..., nn.Module]
    up: type[UpBlock]
    bottleneck_dropout: bool
    pad_input: bool


LAYOUTS: dict[str, Layout] = {
    "hsbench": Layout(32, _hsbench_down, UpBlock, bottleneck_dropout=True, pad_input=True),
    "hyperseg": Layout(64, PoolDropoutDownBlock, ScaleAndPadUpBlock, bottleneck_dropout=False, pad_input=False),
}
"""U-Net layouts by name (``model_options.layout``)."""


@MODELS.register_module(name="unet")
class UNet(nn.Module):
    """U-Net for dense prediction on hyperspectral cubes of any size.

    Args:
        in_channels: number of spectral bands.
        num_classes: number of output classes (logit channels).
        base_channels: width of the first level; level ``l`` has ``base_channels * 2**l`` channels. Default: the
            layout's (HS3-Bench uses 64; the ``hsbench`` layout uses 32 to keep CPU runs short).
        depth: number of down-sampling steps; the ``hsbench`` layout pads inputs to a multiple of ``2**depth``.
        batch_norm: BatchNorm after every convolution.
        dropout: dropout probability at the deepest down block (0 disables it); where it sits is the layout's.
        layout: ``hsbench`` or ``hyperseg`` (:data:`LAYOUTS`).
        weights: a hyperseg checkpoint (Lightning ``.ckpt`` or a state dict) to start from; needs the
            ``hyperseg`` layout and is loaded strictly (:func:`hsbench.models.hyperseg_import.load_hyperseg_weights`).
        weights_trusted: unpickle the checkpoint fully (only for files from a source you trust).
        weights_sha256: the checkpoint's SHA-256; another file is refused, and the run id names the content.
    """

    recipe_hflip_p: ClassVar[float] = 0.0
    """Horizontal-flip probability of the published training recipe (a hint for ``EngineConfig.hflip_p``)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        base_channels: int | None = None,
        depth: int = 4,
        batch_norm: bool = False,
        dropout: float = 0.0,
        layout: str = "hsbench",
        weights: str | None = None,
        weights_trusted: bool = False,
        weights_sha256: str | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if layout not in LAYOUTS:
            raise ConfigError(f"unknown U-Net layout {layout!r}; valid layouts are {', '.join(sorted(LAYOUTS))}")
        self.layout = LAYOUTS[layout]
        self.depth = depth
        base_channels = self.layout.base_channels if base_channels is None else base_channels
        widths = [base_channels * 2**level for level in range(depth)]
        self.stem = conv_block(in_channels, widths[0], batch_norm=batch_norm)
        # The deepest level keeps the width of the level above it: with bilinear up-sampling (no learned
        # channel reduction) each decoder block then concatenates two tensors of equal width.
        down_widths = [*widths[1:], widths[-1]]
        in_block_dropout = [0.0] * (depth - 1) + [0.0 if self.layout.bottleneck_dropout else dropout]
        self.downs = nn.ModuleList(
            self.layout.down(cin, cout, batch_norm=batch_norm, dropout=p)
            for cin, cout, p in zip(widths, down_widths, in_block_dropout)
        )
        if self.layout.bottleneck_dropout:
            self.bottleneck_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.ups = nn.ModuleList(
            self.layout.up(2 * widths[level], widths[max(level - 1, 0)], batch_norm=batch_norm)
            for level in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)
        if weights is not None:
            if layout != "hyperseg":
                raise ConfigError("model_options.weights loads hyperseg checkpoints; set model_options.layout=hyperseg")
            from hsbench.models.hyperseg_import import load_hyperseg_weights

            load_hyperseg_weights(self, weights, trusted=weights_trusted, expected_sha256=weights_sha256)

    @property
    def stride(self) -> int:
        """Total down-sampling factor; inputs are padded internally to a multiple of it."""
        return 2**self.depth

    def forward(self, cube: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, H, W)`` for a batch of cubes ``(N, C, H, W)``."""
        size = cube.shape[-2:]
        skips = [self.stem(pad_to_multiple(cube, self.stride) if self.layout.pad_input else cube)]
        for level, down in enumerate(self.downs):
            x = skips[-1]
            if level == self.depth - 1 and self.layout.bottleneck_dropout:
                x = self.bottleneck_dropout(x)
            skips.append(down(x))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return crop_to(self.head(x), size)

    @classmethod
    def search_space(cls, trial: Any, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Options an Optuna sweep varies for this network."""
        return {
            "base_channels": trial.suggest_categorical("base_channels", [16, 32, 64]),
            "depth": trial.suggest_int("depth", 3, 5),
            "batch_norm": trial.suggest_categorical("batch_norm", [False, True]),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }


@MODELS.register_module(name="runet")
class RUNet(UNet):
    """RU-Net of HS3-Bench: U-Net with BatchNorm and dropout 0.25 at the deepest down block.

    Args:
        in_channels: number of spectral bands.
        num_classes: number of output classes.
        base_channels: width of the first level (default: the layout's, 32 or hyperseg's 64).
        depth: number of down-sampling steps.
        dropout: dropout probability at the deepest down block (HS3-Bench: 0.25); ``hsbench`` applies it before
            the max-pool, ``hyperseg`` after it.
        layout: ``hsbench`` or ``hyperseg`` (:data:`LAYOUTS`).
        weights: a hyperseg checkpoint to start from (``hyperseg`` layout only, loaded strictly).
        weights_trusted: unpickle the checkpoint fully (only for files from a source you trust).
        weights_sha256: the checkpoint's SHA-256 (checked; makes the run id name the content).
    """

    recipe_hflip_p: ClassVar[float] = 0.1  # HS3-Bench's RU-Net recipe

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        base_channels: int | None = None,
        depth: int = 4,
        dropout: float = 0.25,
        layout: str = "hsbench",
        weights: str | None = None,
        weights_trusted: bool = False,
        weights_sha256: str | None = None,
    ) -> None:
        super().__init__(
            in_channels, num_classes, base_channels=base_channels, depth=depth, batch_norm=True, dropout=dropout,
            layout=layout, weights=weights, weights_trusted=weights_trusted, weights_sha256=weights_sha256,
        )

    @classmethod
    def search_space(cls, trial: Any, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Options an Optuna sweep varies (BatchNorm stays on: it defines RU-Net)."""
        return {
            "base_channels": trial.suggest_categorical("base_channels", [16, 32, 64]),
            "depth": trial.suggest_int("depth", 3, 5),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }
