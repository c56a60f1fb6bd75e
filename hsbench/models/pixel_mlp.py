"""A per-pixel MLP classifier in the ``MODELS`` contract (1x1 convolutions: no spatial context at all).

It is the head of the spectral-classification setting of the cross-domain study (a classifier on per-pixel
foundation-model features), and a no-context baseline for any input: whatever it scores comes from the pixel's
own channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from hsbench.registry import MODELS

__all__ = ["PixelMLP"]


@MODELS.register_module(name="pixel_mlp")
class PixelMLP(nn.Module):
    """``hidden_layers`` x (1x1 conv, GELU, dropout), then a 1x1 classifier.

    Args:
        in_channels: input channels per pixel.
        num_classes: output classes.
        hidden_channels: width of the hidden layers.
        hidden_layers: number of hidden layers (0: a linear classifier).
        dropout: dropout after every hidden layer.
    """

    def __init__(
        self, in_channels: int, num_classes: int, *, hidden_channels: int = 128, hidden_layers: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for _ in range(hidden_layers):
            layers += [nn.Conv2d(width, hidden_channels, kernel_size=1), nn.GELU(), nn.Dropout(dropout)]
            width = hidden_channels
        layers.append(nn.Conv2d(width, num_classes, kernel_size=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, cube: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, H, W)`` for inputs ``(N, C, H, W)``."""
        return self.layers(cube)

    @classmethod
    def search_space(cls, trial: Any, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Options an Optuna sweep varies for this network."""
        return {
            "hidden_channels": trial.suggest_categorical("hidden_channels", [64, 128, 256]),
            "hidden_layers": trial.suggest_int("hidden_layers", 0, 2),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }
