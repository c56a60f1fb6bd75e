"""S2Former: a dual-branch spatial / spectral transformer for hyperspectral tiles (Chao et al.).

Input is a cube resampled to one wavelength grid (:mod:`hsbench.spectral_grid`) and standardised, with a
per-sample ``band_valid`` vector saying which grid bands carry data. Grid bands outside a sensor's range and
bands hidden by spectral masking during pretraining are the same thing to the network: zero values, flag 0.

* **Spatial branch**: one token per ``patch_size`` x ``patch_size`` patch, a linear embedding of its spectra,
  plus a 2-D sine-cosine position and an embedding of ``band_valid``. Random spatial masking replaces tokens by a
  learned mask token.
* **Spectral branch**: one token per group of ``group_size`` adjacent grid bands: every pixel's values in the
  group go through a group-specific linear map and GELU, and the result is averaged over the tile's visible
  pixels (masked pixels must not leak into the spectral tokens). A learned position per group; groups without
  any valid band become a learned spectral mask token.
* **Blocks**: self-attention per branch, then bidirectional cross-attention (spatial queries on spectral
  keys / values and the reverse, with residuals), then MLPs (:class:`DualBranchBlock`).
* **Late fusion**: the mean spectral token is projected and added to every spatial token, so that the spectral
  branch reaches the output even without cross-attention (the ``no_cross_attention`` ablation removes exactly
  the cross-attention layers and nothing else).
* **Dense head** (:class:`S2FormerSegmenter`): token features are unshuffled back to pixels, joined with a 1x1
  projection of the input spectra (patch tokens alone would blur boundaries), refined by a 3x3 convolution.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from hsbench.errors import ConfigError
from hsbench.models._padding import crop_to, pad_to_multiple
from hsbench.models.s2former_blocks import DualBranchBlock, masked_mean, sincos_2d
from hsbench.spectral_grid import SpectralGrid

__all__ = ["S2FormerConfig", "S2FormerEncoder", "EncoderOutput", "S2FormerSegmenter"]


@dataclass(frozen=True)
class S2FormerConfig:
    """Sizes of an S2Former encoder (stored with every zoo artifact, so weights are self-describing).

    Attributes:
        grid_start_nm: first wavelength of the input grid.
        grid_stop_nm: last wavelength of the input grid.
        grid_bands: grid points; must be a multiple of ``group_size``.
        group_size: adjacent grid bands per spectral token.
        patch_size: pixels per side of one spatial token.
        dim: token width of both branches.
        depth: dual-branch blocks.
        heads: attention heads.
        mlp_ratio: MLP hidden width relative to ``dim``.
        cross_attention: bidirectional cross-attention between the branches (``False``: the ablation).
    """

    grid_start_nm: float = 400.0
    grid_stop_nm: float = 1000.0
    grid_bands: int = 32
    group_size: int = 4
    patch_size: int = 2
    dim: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    cross_attention: bool = True

    def __post_init__(self) -> None:
        if self.grid_bands % self.group_size:
            raise ConfigError(f"grid_bands ({self.grid_bands}) must be a multiple of group_size ({self.group_size})")
        if self.dim % self.heads or self.dim % 4:
            raise ConfigError(f"dim ({self.dim}) must be a multiple of heads ({self.heads}) and of 4")
        if min(self.patch_size, self.depth, self.group_size) < 1:
            raise ConfigError("patch_size, depth and group_size must be >= 1")

    @property
    def grid(self) -> SpectralGrid:
        return SpectralGrid(self.grid_start_nm, self.grid_stop_nm, self.grid_bands)

    @property
    def num_groups(self) -> int:
        return self.grid_bands // self.group_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> S2FormerConfig:
        return cls(**values)


class EncoderOutput(NamedTuple):
    """Encoder outputs.

    Attributes:
        features: fused spatial features ``(B, D, H / patch, W / patch)``.
        spectral: band-group tokens ``(B, S, D)`` after the blocks.
    """

    features: torch.Tensor
    spectral: torch.Tensor


class S2FormerEncoder(nn.Module):
    """The dual-branch encoder (see the module docstring)."""

    def __init__(self, cfg: S2FormerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        g, d, s, p = cfg.grid_bands, cfg.dim, cfg.num_groups, cfg.patch_size
        self.patch_embed = nn.Linear(g * p * p, d)
        self.spatial_valid_embed = nn.Linear(g, d, bias=False)
        self.spatial_mask_token = nn.Parameter(torch.zeros(d))
        self.group_weight = nn.Parameter(torch.randn(s, cfg.group_size, d) / cfg.group_size**0.5)
        self.group_bias = nn.Parameter(torch.zeros(s, d))
        self.group_out = nn.Linear(d, d)
        self.group_position = nn.Parameter(torch.randn(s, d) * 0.02)
        self.spectral_valid_embed = nn.Linear(cfg.group_size, d, bias=False)
        self.spectral_mask_token = nn.Parameter(torch.zeros(d))
        self.blocks = nn.ModuleList(
            DualBranchBlock(d, cfg.heads, cfg.mlp_ratio, cross_attention=cfg.cross_attention) for _ in range(cfg.depth)
        )
        self.fuse = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        nn.init.normal_(self.spatial_mask_token, std=0.02)
        nn.init.normal_(self.spectral_mask_token, std=0.02)

    @property
    def dim(self) -> int:
        return self.cfg.dim

    def forward(
        self, x: torch.Tensor, band_valid: torch.Tensor, token_mask: torch.Tensor | None = None
    ) -> EncoderOutput:
        """Encode a batch of grid tiles.

        Args:
            x: ``(B, G, H, W)`` standardised grid cubes; ``H`` and ``W`` multiples of ``patch_size``.
            band_valid: ``(B, G)`` or ``(G,)``: 1 where a grid band carries data, 0 where missing or hidden.
            token_mask: ``(B, H / patch, W / patch)`` bool, ``True`` for spatial tokens hidden by masking.
        """
        b, _, h, w = x.shape
        p = self.cfg.patch_size
        valid = band_valid.to(x.dtype).expand(b, -1)
        x = x * valid[:, :, None, None]
        spatial = self._spatial_tokens(x, valid, token_mask)
        visible = torch.ones(b, 1, h, w, device=x.device, dtype=x.dtype)
        if token_mask is not None:
            visible = (~token_mask).to(x.dtype).repeat_interleave(p, 1).repeat_interleave(p, 2)[:, None]
        spectral = self._spectral_tokens(x, valid, visible)
        for block in self.blocks:
            spatial, spectral = block(spatial, spectral)
        group_valid = valid.view(b, self.cfg.num_groups, -1).amax(2)[..., None]
        context = masked_mean(spectral, group_valid, dim=1)
        fused = self.norm(spatial + self.fuse(context)[:, None])
        return EncoderOutput(fused.transpose(1, 2).reshape(b, self.dim, h // p, w // p), spectral)

    def _spatial_tokens(self, x: torch.Tensor, valid: torch.Tensor, token_mask: torch.Tensor | None) -> torch.Tensor:
        b, _, h, w = x.shape
        p = self.cfg.patch_size
        patches = F.pixel_unshuffle(x, p).flatten(2).transpose(1, 2)  # (B, N, G p p)
        tokens = self.patch_embed(patches)
        if token_mask is not None:
            tokens = torch.where(token_mask.reshape(b, -1, 1), self.spatial_mask_token.to(tokens.dtype), tokens)
        position = sincos_2d(h // p, w // p, self.dim, device=x.device).to(tokens.dtype)
        return tokens + position + self.spatial_valid_embed(valid)[:, None]

    def _spectral_tokens(self, x: torch.Tensor, valid: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        s, g = self.cfg.num_groups, self.cfg.group_size
        groups = x.view(b, s, g, h * w)
        hidden = F.gelu(torch.einsum("bsgn,sgd->bsnd", groups, self.group_weight) + self.group_bias[:, None])
        pooled = masked_mean(hidden, visible.reshape(b, 1, h * w, 1), dim=2)  # (B, S, D)
        group_valid = valid.view(b, s, g)
        tokens = self.group_out(pooled) + self.spectral_valid_embed(group_valid)
        missing = group_valid.amax(2, keepdim=True) <= 0
        tokens = torch.where(missing, self.spectral_mask_token.to(tokens.dtype), tokens)
        return tokens + self.group_position


class S2FormerSegmenter(nn.Module):
    """Encoder plus a dense per-pixel head: grid cubes ``(N, G, H, W)`` of any size to logits ``(N, K, H, W)``.

    Args:
        encoder: the (pretrained or fresh) encoder.
        num_classes: output classes.
        band_valid: ``(G,)`` which grid bands the target sensor covers.
    """

    def __init__(self, encoder: S2FormerEncoder, num_classes: int, band_valid: torch.Tensor) -> None:
        super().__init__()
        cfg = encoder.cfg
        self.encoder = encoder
        half, p = cfg.dim // 2, cfg.patch_size
        self.unpatch = nn.Linear(cfg.dim, half * p * p)
        self.skip = nn.Conv2d(cfg.grid_bands, half, 1)
        self.refine = nn.Sequential(
            nn.GELU(), nn.Conv2d(half, half, 3, padding=1), nn.GELU(), nn.Conv2d(half, num_classes, 1)
        )
        self.register_buffer("band_valid", band_valid.detach().to(torch.float32).clone())

    def encode(self, x: torch.Tensor) -> EncoderOutput:
        """Encoder outputs of a padded batch (the input must already be a multiple of the patch size)."""
        return self.encoder(x, self.band_valid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        padded = pad_to_multiple(x * self.band_valid[:, None, None], self.encoder.cfg.patch_size)
        return crop_to(self.head(padded, self.encode(padded).features), size)

    def head(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Per-pixel logits from the input ``x`` and token ``features``."""
        b, _, h, w = features.shape
        p = self.encoder.cfg.patch_size
        tokens = self.unpatch(features.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)
        return self.refine(F.pixel_shuffle(tokens, p) + self.skip(x))
