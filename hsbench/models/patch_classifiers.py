"""Patch classifiers of the HSI literature (the DeepHyperX baselines) in the dense ``MODELS`` contract.

These networks label one pixel from the ``patch_size x patch_size`` window centred on it, which is how the field
compares hyperspectral classifiers. :class:`PatchClassifier` turns such a network into a dense one: the forward
pass classifies the window of every pixel, chunk by chunk (``chunk_pixels`` windows at a time, so a 100x100 scene
never holds all of its windows at once), and returns logits ``(N, K, H, W)`` like every other hsbench network.
Training on labelled pixels only can skip the dense pass: gather their windows with
:func:`hsbench.models.patches.patches_around` and call :meth:`PatchClassifier.classify`.

Chunks are classified independently; in training mode, BatchNorm (``ssrn``) therefore normalises each chunk by
its own statistics. Evaluation mode gives the same logits whatever the chunk size.

Layer sizes follow the papers; every layer's shape is computed from ``in_channels`` and ``patch_size`` when the
network is built, so parameter counts are known before training. Inputs with fewer bands than a network's spectral
kernels span (``min_bands``; e.g. RGB into ``hybridsn``) are zero-padded along the spectrum up to that minimum, so
every network runs on every dataset; from ``min_bands`` bands on the published layout is used unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from hsbench.errors import ConfigError
from hsbench.models.patches import check_patch_size, iter_patches
from hsbench.registry import MODELS

__all__ = ["PatchClassifier", "HuCNN1D", "HamidaCNN3D", "HybridSN", "SSRN"]


def _out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


class PatchClassifier(nn.Module):
    """Base class: dense prediction by classifying every pixel's window.

    Subclasses build their layers in ``__init__`` (after calling this one) and implement :meth:`classify`.

    Args:
        in_channels: spectral bands of the input.
        num_classes: output classes.
        patch_size: odd window side (``>= min_patch_size``).
        chunk_pixels: windows classified at a time in the dense forward (memory, not results).
    """

    name: ClassVar[str] = "patch classifier"
    min_patch_size: ClassVar[int] = 1
    min_bands: ClassVar[int] = 1

    def __init__(self, in_channels: int, num_classes: int, *, patch_size: int, chunk_pixels: int = 4096) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 1:
            raise ConfigError(f"{self.name}: in_channels and num_classes must be >= 1")
        if chunk_pixels < 1:
            raise ConfigError(f"{self.name}: chunk_pixels must be >= 1, got {chunk_pixels}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.patch_size = check_patch_size(patch_size, minimum=self.min_patch_size, network=self.name)
        self.chunk_pixels = chunk_pixels
        self.bands = max(in_channels, self.min_bands)
        """Spectral depth the layers are built for (``in_channels``, or ``min_bands`` for fewer bands)."""

    def pad_bands(self, patches: torch.Tensor) -> torch.Tensor:
        """``patches`` zero-padded along the spectrum to :attr:`bands` (a no-op with enough bands)."""
        if patches.shape[1] != self.in_channels:
            raise ValueError(f"{self.name}: expected {self.in_channels} bands, got {patches.shape[1]}")
        missing = self.bands - patches.shape[1]
        return F.pad(patches, (0, 0, 0, 0, 0, missing)) if missing else patches

    def classify(self, patches: torch.Tensor) -> torch.Tensor:
        """Logits ``(P, K)`` for windows ``(P, C, patch_size, patch_size)``."""
        raise NotImplementedError

    def forward(self, cube: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, H, W)`` for cubes ``(N, C, H, W)``: each pixel's window, classified."""
        n, _, h, w = cube.shape
        chunks = [self.classify(p) for p in iter_patches(cube, self.patch_size, self.chunk_pixels)]
        if not chunks:
            return cube.new_zeros(n, self.num_classes, h, w)
        return torch.cat(chunks).reshape(n, h, w, self.num_classes).permute(0, 3, 1, 2)


@MODELS.register_module(name="cnn1d")
class HuCNN1D(PatchClassifier):
    """Hu et al., "Deep Convolutional Neural Networks for Hyperspectral Image Classification", J. Sensors 2015.

    A 1D CNN on the centre pixel's spectrum (no spatial context; ``patch_size`` is 1): convolution with 20 kernels
    of length ``k1 = ceil(C / 9)``, max-pooling of length ``k2 = ceil(k1 / 5)``, a 100-unit fully connected layer
    and the classifier, with tanh activations as in the paper (the ``k1``/``k2`` rules are DeepHyperX's reading).
    At 200 bands and 16 classes this implementation has 72,196 parameters.

    Args:
        fc_units: width of the hidden fully connected layer (the paper's ``n4 = 100``).
    """

    name = "cnn1d"

    def __init__(
        self, in_channels: int, num_classes: int, *, patch_size: int = 1, fc_units: int = 100,
        chunk_pixels: int = 4096,
    ) -> None:
        if patch_size != 1:
            raise ConfigError(f"cnn1d classifies one pixel's spectrum; patch_size must be 1, got {patch_size!r}")
        super().__init__(in_channels, num_classes, patch_size=1, chunk_pixels=chunk_pixels)
        kernel = math.ceil(self.bands / 9)
        pool = math.ceil(kernel / 5)
        self.conv = nn.Conv1d(1, 20, kernel)
        self.pool = nn.MaxPool1d(pool)
        self.features = 20 * _out(_out(self.bands, kernel), pool, pool)
        self.fc = nn.Linear(self.features, fc_units)
        self.head = nn.Linear(fc_units, num_classes)

    def classify(self, patches: torch.Tensor) -> torch.Tensor:
        spectra = self.pad_bands(patches)[:, :, 0, 0].unsqueeze(1)  # (P, 1, C)
        x = torch.tanh(self.pool(self.conv(spectra))).flatten(1)
        return self.head(torch.tanh(self.fc(x)))

    @classmethod
    def search_space(cls, trial: Any, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Options an Optuna sweep varies for this network."""
        return {"fc_units": trial.suggest_categorical("fc_units", [50, 100, 200])}


@MODELS.register_module(name="cnn3d")
class HamidaCNN3D(PatchClassifier):
    """Ben Hamida et al., "3-D Deep Learning Approach for Remote Sensing Image Classification", IEEE TGRS 2018.

    The layer stack of the paper as DeepHyperX (``HamidaEtAl``) reads it, on the band x window volume with one
    input channel, every layer followed by ReLU: 3D conv 20 x (3,3,3); a pooling convolution 20 x (3,1,1) with
    spectral stride 2; 3D conv 35 x (3,3,3); pooling convolution 35 x (3,1,1) stride 2; convs 35 x (3,1,1) and
    35 x (2,1,1) stride 2 that shrink the spectrum further; then the linear classifier. The spectral axis is padded
    by 1 from the second layer on; space is not padded, except in the first conv at ``patch_size`` 3 (so the
    stack still ends at 1x1). At 200 bands, 16 classes, patch 5 this implementation has 45,196 parameters.

    Args:
        patch_size: odd window side, >= 3 (paper default 5).
        dropout: dropout before the classifier (0 as in the paper).
    """

    name = "cnn3d"
    min_patch_size = 3
    min_bands = 3

    def __init__(
        self, in_channels: int, num_classes: int, *, patch_size: int = 5, dropout: float = 0.0,
        chunk_pixels: int = 4096,
    ) -> None:
        super().__init__(in_channels, num_classes, patch_size=patch_size, chunk_pixels=chunk_pixels)
        first_pad = 1 if self.patch_size == 3 else 0
        self.layers = nn.Sequential(
            nn.Conv3d(1, 20, (3, 3, 3), padding=(0, first_pad, first_pad)), nn.ReLU(),
            nn.Conv3d(20, 20, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)), nn.ReLU(),
            nn.Conv3d(20, 35, (3, 3, 3), padding=(1, 0, 0)), nn.ReLU(),
            nn.Conv3d(35, 35, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)), nn.ReLU(),
            nn.Conv3d(35, 35, (3, 1, 1), padding=(1, 0, 0)), nn.ReLU(),
            nn.Conv3d(35, 35, (2, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)), nn.ReLU(),
        )
        depth = _out(_out(_out(_out(_out(self.bands, 3), 3, 2, 1), 3, 1, 1), 3, 2, 1), 3, 1, 1)
        depth = _out(depth, 2, 2, 1)
        side = _out(_out(self.patch_size, 3, 1, first_pad), 3)
        self.features = 35 * depth * side * side
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.features, num_classes)

    def classify(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.pad_bands(patches).unsqueeze(1)).flatten(1)
        return self.head(self.dropout(x))

    @classmethod
    def search_space(cls, trial: Any, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Options an Optuna sweep varies for this network."""
        return {
            "patch_size": trial.suggest_categorical("patch_size", [3, 5, 7]),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }


@MODELS.register_module(name="hybridsn")
class HybridSN(PatchClassifier):
    """Roy et al., "HybridSN: Exploring 3-D-2-D CNN Feature Hierarchy for Hyperspectral Image Classification",
    IEEE GRSL 2020 (arXiv:1902.06701).

    Three 3D convolutions 8 x (7,3,3), 16 x (5,3,3), 32 x (3,3,3) on the band x window volume; their 32 maps x
    remaining bands become the channels of a 2D convolution 64 x (3,3); then fully connected 256 and 128 with
    dropout 0.4 each, and the classifier; ReLU throughout, no padding. The paper feeds 30 PCA components (Indian
    Pines) at 25x25; at (30 bands, 16 classes, patch 25) this network has 5,122,176 parameters, the total of the
    paper's layer table for Indian Pines (Roy et al., Table I).

    Args:
        patch_size: odd window side, >= 9 (paper: 25).
        dropout: dropout after each hidden fully connected layer (paper: 0.4).
    """

    name = "hybridsn"
    min_patch_size = 9
    min_bands = 13

    def __init__(
        self, in_channels: int, num_classes: int, *, patch_size: int = 25, dropout: float = 0.4,
        chunk_pixels: int = 4096,
    ) -> None:
        super().__init__(in_channels, num_classes, patch_size=patch_size, chunk_pixels=chunk_pixels)
        self.spectral_spatial = nn.Sequential(
            nn.Conv3d(1, 8, (7, 3, 3)), nn.ReLU(),
            nn.Conv3d(8, 16, (5, 3, 3)), nn.ReLU(),
            nn.Conv3d(16, 32, (3, 3, 3)), nn.ReLU(),
        )
        depth = self.bands - 6 - 4 - 2
        side = self.patch_size - 6
        self.spatial = nn.Sequential(nn.Conv2d(32 * depth, 64, 3), nn.ReLU())
        self.features = 64 * (side - 2) ** 2
        self.classifier = nn.Sequential(
            nn.Linear(self.features, 256), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(256, 128), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(128, num_classes),
        )

    def classify(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.spectral_spatial(self.pad_bands(patches).unsqueeze(1))  # (P, 32, D, s', s')
        x = self.spatial(x.flatten(1, 2))
        return self.classifier(x.flatten(1))

    @classmethod
    def search_space(cls, trial: Any, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Options an Optuna sweep varies for this network."""
        return {
            "patch_size": trial.suggest_categorical("patch_size", [11, 15, 19, 25]),
            "dropout": trial.suggest_float("dropout", 0.2, 0.5),
        }


class _Residual(nn.Module):
    """``relu(x + bn(conv(relu(bn(conv(x))))))``: the residual unit of SSRN's spectral and spatial blocks."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def _spectral_block(filters: int, kernel: int) -> _Residual:
    pad = (kernel // 2, 0, 0)
    return _Residual(nn.Sequential(
        nn.Conv3d(filters, filters, (kernel, 1, 1), padding=pad), nn.BatchNorm3d(filters), nn.ReLU(),
        nn.Conv3d(filters, filters, (kernel, 1, 1), padding=pad), nn.BatchNorm3d(filters),
    ))


def _spatial_block(filters: int) -> _Residual:
    return _Residual(nn.Sequential(
        nn.Conv2d(filters, filters, 3, padding=1), nn.BatchNorm2d(filters), nn.ReLU(),
        nn.Conv2d(filters, filters, 3, padding=1), nn.BatchNorm2d(filters),
    ))


@MODELS.register_module(name="ssrn")
class SSRN(PatchClassifier):
    """Zhong et al., "Spectral-Spatial Residual Network for Hyperspectral Image Classification: A 3-D Deep
    Learning Framework", IEEE TGRS 2018.

    Spectral part: 3D conv 24 x (7,1,1) with spectral stride 2, then two residual blocks of two 24 x (7,1,1)
    convolutions; a 128 x (D,1,1) convolution collapses the remaining spectrum ``D``. Spatial part: a 24 x (3,3)
    convolution over the 128 maps (the paper's 3x3x128 kernel; written as a 2D conv, same parameters), two residual
    blocks of two 24 x (3,3) convolutions (the paper's 3x3x1 kernels), average pooling over the window, and the
    linear classifier. Every convolution is followed by BatchNorm; ReLU after every BatchNorm except the second of
    each residual unit, where it follows the addition. At (200 bands, 16 classes, patch 7) this implementation has
    364,168 parameters (BatchNorm affine weights included).

    Args:
        patch_size: odd window side, >= 3 (paper: 7).
        filters: kernels per residual convolution (paper: 24).
    """

    name = "ssrn"
    min_patch_size = 3
    min_bands = 7

    def __init__(
        self, in_channels: int, num_classes: int, *, patch_size: int = 7, filters: int = 24,
        chunk_pixels: int = 4096,
    ) -> None:
        super().__init__(in_channels, num_classes, patch_size=patch_size, chunk_pixels=chunk_pixels)
        depth = _out(self.bands, 7, 2)
        self.spectral = nn.Sequential(
            nn.Conv3d(1, filters, (7, 1, 1), stride=(2, 1, 1)), nn.BatchNorm3d(filters), nn.ReLU(),
            _spectral_block(filters, 7), _spectral_block(filters, 7),
            nn.Conv3d(filters, 128, (depth, 1, 1)), nn.BatchNorm3d(128), nn.ReLU(),
        )
        self.spatial = nn.Sequential(
            nn.Conv2d(128, filters, 3), nn.BatchNorm2d(filters), nn.ReLU(),
            _spatial_block(filters), _spatial_block(filters),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(filters, num_classes)

    def classify(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.spectral(self.pad_bands(patches).unsqueeze(1))  # (P, 128, 1, s, s)
        return self.head(self.spatial(x.squeeze(2)).flatten(1))

    @classmethod
    def search_space(cls, trial: Any, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Options an Optuna sweep varies for this network."""
        return {
            "patch_size": trial.suggest_categorical("patch_size", [5, 7, 9]),
            "filters": trial.suggest_categorical("filters", [16, 24, 32]),
        }
