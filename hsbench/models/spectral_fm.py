"""Spectral foundation model: a per-pixel transformer over band tokens with a wavelength positional encoding.

The layout follows HyperSL's spectral shared encoder (the model the 2026 cross-domain study transfers from
EnMAP / DESIS spectra to driving scenes), so that its checkpoints map onto this module by name
(:mod:`hsbench.models.spectral_fm_import`):

* bands are sorted by wavelength first: the 1-D convolutions below look at spectral neighbours, and a cube in
  sensor order (HSI-Drive's is not sorted) would silently feed them nonsense;
* multi-scale 1-D convolution embedding of the spectrum (``embedding_layer_1..3``: kernels 5, 9, 13, each
  Conv1d + BatchNorm1d + GELU), concatenated and fused by a 1x1 convolution (``embedding_layer_4``): one token
  per band;
* sinusoidal positional encoding of the *wavelength value* (not of the band index), so that any band count and
  spacing maps onto the same positions: ``(wavelength - 400 nm) / 10 nm`` times ``div_term`` (HyperSL's
  constants: periods from 2 pi x 10 nm to 2 pi x 1000 nm);
* a learnable global token in front, pre-norm transformer blocks (``encoder_blocks`` plus a last block,
  ``transformer_encoder_layer``);
* pixel embedding = global token output + mean of the band token outputs (HyperSL's ``aggregate``).

The network is not registered in ``MODELS``: it maps pixel spectra to embeddings, not cubes to logits.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from hsbench.errors import ConfigError

__all__ = ["SpectralFMConfig", "SpectralFM", "SIZES", "fm_config", "wavelength_encoding", "Block"]


RESIDUALS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "prenorm": lambda x, attended: x + attended,
    # HyperSL's TransformerEncoderLayer: ``x = attn(norm1(x)); x = x + drop_path(x)``.
    "hypersl": lambda x, attended: attended + attended,
}
"""How a block combines its input with the attention output."""


@dataclass(frozen=True)
class SpectralFMConfig:
    """Sizes and constants of a :class:`SpectralFM` (stored with every checkpoint, so weights are self-describing).

    Attributes:
        dim: token width.
        depth: transformer blocks in all (``depth - 1`` in ``encoder_blocks`` plus the last one).
        heads: attention heads.
        mlp_ratio: hidden width of the blocks' MLP relative to ``dim``.
        kernel_sizes: the three spectral convolution kernels of the embedding.
        wavelength_origin_nm: wavelength at position 0 of the encoding (HyperSL: 400 nm).
        wavelength_unit_nm: wavelength step of one position unit (HyperSL: 10 nm).
        max_period: ratio of the longest to the shortest encoding period (HyperSL: 100).
        final_block: residual form of the last block: ``prenorm`` (``x + attn(norm(x))``) or ``hypersl``
            (HyperSL's ``transformer_encoder_layer`` drops the input and doubles the attention output); only
            imported HyperSL weights need the latter.
    """

    dim: int = 64
    depth: int = 3
    heads: int = 4
    mlp_ratio: float = 4.0
    kernel_sizes: tuple[int, int, int] = (5, 9, 13)
    wavelength_origin_nm: float = 400.0
    wavelength_unit_nm: float = 10.0
    max_period: float = 100.0
    final_block: str = "prenorm"

    def __post_init__(self) -> None:
        if self.dim % 2 or self.dim % self.heads:
            raise ConfigError(f"spectral FM dim {self.dim} must be even and divisible by heads {self.heads}")
        if self.depth < 1:
            raise ConfigError(f"spectral FM depth must be >= 1, got {self.depth}")
        if len(self.kernel_sizes) != 3:
            raise ConfigError(f"spectral FM needs three embedding kernels, got {self.kernel_sizes}")
        if self.final_block not in RESIDUALS:
            raise ConfigError(f"unknown final_block {self.final_block!r}; use one of {', '.join(RESIDUALS)}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["kernel_sizes"] = list(self.kernel_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpectralFMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown spectral FM options {sorted(unknown)}; options are {sorted(known)}")
        values = dict(data)
        if "kernel_sizes" in values:
            values["kernel_sizes"] = tuple(int(k) for k in values["kernel_sizes"])
        return cls(**values)


SIZES: dict[str, SpectralFMConfig] = {
    # CPU-friendly: 0.1 M parameters, about 3,000 pixels / s of 25 bands on one core (a 64 x 96 image in 2 s).
    "tiny": SpectralFMConfig(dim=64, depth=2, heads=4),
    # HyperSL's four released sizes (cross-domain-hsi: crossdomainhsi/models/hypersl.py, HyperSLBackbone):
    # embedding_dim, encoder_depth and num_heads; mlp_ratio 4 throughout. ``depth`` counts HyperSL's
    # encoder_depth - 1 ``encoder_blocks`` plus ``transformer_encoder_layer``. The 2026 study's default is small.
    "small": SpectralFMConfig(dim=256, depth=8, heads=8),  # ~6.4 M parameters
    "base": SpectralFMConfig(dim=512, depth=24, heads=16),  # ~76 M
    "large": SpectralFMConfig(dim=1024, depth=32, heads=32),  # ~403 M
    "huge": SpectralFMConfig(dim=2048, depth=48, heads=32),  # ~2.4 G: a GPU with >= 40 GB for fine-tuning
}


def fm_config(size: str, overrides: dict[str, Any] | None = None) -> SpectralFMConfig:
    """The preset ``size`` with ``overrides`` (e.g. ``{"dim": 16, "depth": 1}`` for test-sized models)."""
    if size not in SIZES:
        raise ConfigError(f"unknown spectral FM size {size!r}; sizes are {', '.join(SIZES)}")
    return SpectralFMConfig.from_dict({**SIZES[size].to_dict(), **dict(overrides or {})})


def wavelength_encoding(wavelengths_nm: torch.Tensor, div_term: torch.Tensor, cfg: SpectralFMConfig) -> torch.Tensor:
    """Sinusoidal encoding ``(B, 2 * len(div_term))`` of band wavelengths, sine and cosine interleaved."""
    position = (wavelengths_nm - cfg.wavelength_origin_nm) / cfg.wavelength_unit_nm
    angle = position[:, None] * div_term[None, :]
    return torch.stack((angle.sin(), angle.cos()), dim=-1).flatten(-2)


def make_div_term(dim: int, max_period: float) -> torch.Tensor:
    """Frequencies ``exp(-2i / dim * ln(max_period))``, ``i < dim / 2`` (the transformer form, HyperSL's base)."""
    return torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(max_period) / dim))


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (timm / HyperSL parameter names)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, *, residual: str = "prenorm") -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self._residual = RESIDUALS[residual]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._residual(x, self.attn(self.norm1(x)))
        return x + self.mlp(self.norm2(x))


def _conv_bn_gelu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(in_channels, out_channels, kernel_size, padding="same"), nn.BatchNorm1d(out_channels), nn.GELU()
    )


class SpectralFM(nn.Module):
    """Spectral foundation model: pixel spectra plus band wavelengths in, one embedding per pixel out.

    Args:
        cfg: sizes and encoding constants.
    """

    def __init__(self, cfg: SpectralFMConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SIZES["tiny"]
        dim = cfg.dim
        k1, k2, k3 = cfg.kernel_sizes
        self.embedding_layer_1 = _conv_bn_gelu(1, dim, k1)
        self.embedding_layer_2 = _conv_bn_gelu(1, dim, k2)
        self.embedding_layer_3 = _conv_bn_gelu(1, dim, k3)
        self.embedding_layer_4 = _conv_bn_gelu(3 * dim, dim, 1)
        self.global_token = nn.Parameter(torch.zeros(1, 1, dim))
        # Only masked pretraining uses it; kept here because HyperSL checkpoints hold it in the encoder.
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("div_term", make_div_term(dim, cfg.max_period))
        self.encoder_blocks = nn.ModuleList(Block(dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth - 1))
        self.transformer_encoder_layer = Block(dim, cfg.heads, cfg.mlp_ratio, residual=cfg.final_block)
        self._init_weights()

    @property
    def dim(self) -> int:
        """Width of the pixel embedding."""
        return self.cfg.dim

    def _init_weights(self) -> None:
        # HyperSL's initialisation: tokens N(0, 0.02), Kaiming-uniform convolutions, Xavier linear layers.
        nn.init.normal_(self.global_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Conv1d):
                nn.init.kaiming_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    @staticmethod
    def sort_bands(spectra: torch.Tensor, wavelengths_nm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spectra ``(N, B)`` and wavelengths ``(B,)`` reordered by increasing wavelength."""
        order = torch.argsort(wavelengths_nm, stable=True)
        return spectra[:, order], wavelengths_nm[order]

    def embed(self, spectra: torch.Tensor, wavelengths_nm: torch.Tensor) -> torch.Tensor:
        """Band tokens ``(N, B, dim)`` (convolution embedding plus wavelength encoding) of wavelength-sorted input.

        Callers that sort themselves (masked pretraining) use this directly; :meth:`forward` sorts first.
        """
        x = spectra[:, None, :]
        multi_scale = torch.cat(
            [self.embedding_layer_1(x), self.embedding_layer_2(x), self.embedding_layer_3(x)], dim=1
        )
        tokens = self.embedding_layer_4(multi_scale).transpose(1, 2)
        position = wavelength_encoding(wavelengths_nm.to(tokens.dtype), self.div_term, self.cfg)
        return tokens + position[None]

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Transformer output ``(N, 1 + L, dim)`` for band tokens ``(N, L, dim)``; index 0 is the global token."""
        x = torch.cat([self.global_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        for block in self.encoder_blocks:
            x = block(x)
        return self.transformer_encoder_layer(x)

    @staticmethod
    def aggregate(encoded: torch.Tensor) -> torch.Tensor:
        """Pixel embedding: global token output plus the mean of the band token outputs."""
        return encoded[:, 0] + encoded[:, 1:].mean(dim=1)

    def forward(self, spectra: torch.Tensor, wavelengths_nm: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(N, dim)`` of pixel spectra ``(N, B)`` whose bands lie at ``wavelengths_nm`` ``(B,)``.

        The bands may come in any order (they are sorted here) and any count or spacing.
        """
        if spectra.ndim != 2 or wavelengths_nm.shape != spectra.shape[1:]:
            raise ValueError(
                f"expected spectra (N, B) and wavelengths (B,), got {tuple(spectra.shape)} and "
                f"{tuple(wavelengths_nm.shape)}"
            )
        spectra, wavelengths_nm = self.sort_bands(spectra, wavelengths_nm)
        return self.aggregate(self.encode(self.embed(spectra, wavelengths_nm)))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
