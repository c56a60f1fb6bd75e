"""Building blocks of S2Former: token embeddings and the dual-branch block with bidirectional cross-attention."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["FeedForward", "DualBranchBlock", "sincos_2d", "masked_mean"]


class FeedForward(nn.Module):
    """Pre-norm transformer MLP (LayerNorm, Linear, GELU, Linear)."""

    def __init__(self, dim: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Attend(nn.Module):
    """Pre-norm multi-head attention of ``queries`` on ``context`` (self-attention when they are the same)."""

    def __init__(self, dim: int, heads: int, *, cross: bool) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross else None
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q = self.norm_q(queries)
        kv = q if self.norm_kv is None else self.norm_kv(context)
        return self.attention(q, kv, kv, need_weights=False)[0]


class DualBranchBlock(nn.Module):
    """Self-attention in each branch, then bidirectional cross-attention, then an MLP per branch.

    Both cross-attentions read the branches' states after self-attention, so neither direction sees the other's
    update first (the exchange is symmetric). Without ``cross_attention`` (the ablation) the two branches run
    independently and meet only in the encoder's late fusion.

    Args:
        dim: token width of both branches.
        heads: attention heads.
        mlp_ratio: MLP hidden width relative to ``dim``.
        cross_attention: whether to build the two cross-attention layers.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, *, cross_attention: bool = True) -> None:
        super().__init__()
        self.spatial_self = _Attend(dim, heads, cross=False)
        self.spectral_self = _Attend(dim, heads, cross=False)
        self.spatial_from_spectral = _Attend(dim, heads, cross=True) if cross_attention else None
        self.spectral_from_spatial = _Attend(dim, heads, cross=True) if cross_attention else None
        self.spatial_mlp = FeedForward(dim, mlp_ratio)
        self.spectral_mlp = FeedForward(dim, mlp_ratio)

    def forward(self, spatial: torch.Tensor, spectral: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``spatial`` ``(B, N, D)`` pixel tokens and ``spectral`` ``(B, S, D)`` band-group tokens, updated."""
        spatial = spatial + self.spatial_self(spatial, spatial)
        spectral = spectral + self.spectral_self(spectral, spectral)
        if self.spatial_from_spectral is not None and self.spectral_from_spatial is not None:
            spatial, spectral = (
                spatial + self.spatial_from_spectral(spatial, spectral),
                spectral + self.spectral_from_spatial(spectral, spatial),
            )
        return spatial + self.spatial_mlp(spatial), spectral + self.spectral_mlp(spectral)


def sincos_2d(height: int, width: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding ``(height * width, dim)`` (MAE's), so any tile size works."""
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / max(quarter, 1)))
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    parts = [f(c.reshape(-1, 1) * omega) for c in (ys, xs) for f in (torch.sin, torch.cos)]
    embedding = torch.cat(parts, dim=1)
    return F.pad(embedding, (0, dim - embedding.shape[1]))


def masked_mean(values: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``values`` over ``dim`` weighted by ``weights`` (broadcastable), 0 where all weights are 0."""
    return (values * weights).sum(dim) / weights.sum(dim).clamp_min(math.ulp(1.0))
