"""Self-supervised S2Former pretraining: masked spatial and spectral reconstruction plus a frequency constraint.

Every step draws a batch of grid tiles (standardised per domain by
:func:`hsbench.spectral_grid.fit_grid_standardizer`) and hides information two ways:

* **spatial masking**: ``spatial_mask_ratio`` of the patch tokens of every tile are replaced by the mask token
  (SimMIM-style: kept in place, so the bidirectional cross-attention keeps its shapes);
* **spectral masking**: with probability ``window_p`` only a random contiguous window of the domain's band groups
  stays visible (it imitates narrower target sensors: the 679-956 nm driving camera, the 468-643 nm visible
  one), then ``spectral_mask_ratio`` of the remaining groups are hidden at random. Hidden bands look exactly like
  bands a sensor does not have, so pretraining teaches the cross-sensor case.

Losses (all on standardised values; labels are never read):

* ``spatial``: mean squared error of the reconstructed spectra of masked pixels, on visible bands;
* ``spectral``: mean squared error on hidden bands, of every pixel's reconstruction and of the spectral tokens'
  prediction of the tile-mean spectrum of their group (so the spectral branch has a target of its own);
* ``frequency``: :func:`frequency_loss` between reconstructed and true spectra of masked pixels;
* ``consistency`` (optional, weight 0 by default): 1 - cosine between the mean spatial feature and the mean
  spectral token of a tile.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from hsbench.engine import SCHEDULES
from hsbench.errors import ConfigError, DataError
from hsbench.models.s2former import S2FormerConfig, S2FormerEncoder
from hsbench.pretraining.sources import recipe_source, recipe_source_options
from hsbench.pretraining.spectral_mae import random_masking
from hsbench.strategy import blank_unreadable
from hsbench.tiling import pad_image

__all__ = [
    "S2FormerSSLRecipe", "S2FormerSSL", "TileSource", "PooledTiles", "frequency_loss", "spectral_visibility",
    "ssl_losses", "train_ssl",
]


@dataclass(frozen=True)
class S2FormerSSLRecipe:
    """Everything that determines a source-pretrained S2Former (its zoo key hashes this plus the source data).

    Attributes:
        model: :meth:`S2FormerConfig.to_dict` of the encoder.
        source: registered dataset whose images are the unlabelled source data, or a list of them (each fitted
            to the grid and standardised on its own, batches drawn from one source each: :class:`PooledTiles`;
            a one-element list is stored as the plain name).
        source_options: options of the source dataset's ``open``; for a list, a mapping source name -> options.
        tile_size: tile side in pixels.
        steps: optimiser steps.
        batch_size: tiles per step.
        lr: AdamW peak learning rate (5 % linear warm-up, then cosine decay).
        weight_decay: AdamW weight decay.
        spatial_mask_ratio: fraction of patch tokens masked per tile.
        spectral_mask_ratio: fraction of the window's band groups hidden per tile.
        window_p: probability of keeping only a random contiguous window of band groups.
        spectral_weight: weight of the spectral term.
        frequency_weight: weight of the frequency term (0: the ``no_frequency_loss`` ablation).
        frequency_cutoff: fraction of the rFFT bins, from the low end, that the frequency term ignores.
        consistency_weight: weight of the cross-branch consistency term.
        fit_pixels: source pixels the grid standardisation is fitted on (per source).
        seed: seed of the initialisation, the tiles and the masks.
    """

    model: dict[str, Any]
    source: str | list[str] = "synthetic_aerial"
    source_options: dict[str, Any] = field(default_factory=dict)
    tile_size: int = 32
    steps: int = 400
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.05
    spatial_mask_ratio: float = 0.6
    spectral_mask_ratio: float = 0.25
    window_p: float = 0.5
    spectral_weight: float = 1.0
    frequency_weight: float = 0.5
    frequency_cutoff: float = 0.25
    consistency_weight: float = 0.0
    fit_pixels: int = 50_000
    seed: int = 0

    def __post_init__(self) -> None:
        # One normal form per source list (a one-element list is the plain name), so equal sources share a key.
        object.__setattr__(self, "source", recipe_source(self.source))
        object.__setattr__(self, "source_options", recipe_source_options(self.source, self.source_options))
        for name in ("spatial_mask_ratio", "spectral_mask_ratio", "window_p", "frequency_cutoff"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ConfigError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if min(self.tile_size, self.steps, self.batch_size, self.fit_pixels) < 1:
            raise ConfigError("tile_size, steps, batch_size and fit_pixels must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def frequency_loss(prediction: torch.Tensor, target: torch.Tensor, cutoff: float) -> torch.Tensor:
    """L1 between rFFT magnitudes along the last (spectral) axis, on bins above ``cutoff`` of the spectrum.

    Reconstruction losses in the value domain favour smooth, averaged spectra; narrow absorption features and
    sharp transitions live in the high-frequency bins, so matching their magnitudes keeps that detail. The DC
    bin is always excluded (it is brightness, which the value losses already cover).
    """
    bins = prediction.shape[-1] // 2 + 1
    first = max(1, math.ceil(cutoff * bins))
    if first >= bins or prediction.numel() == 0:  # no bin above the cutoff, or no pixel to compare
        return prediction.new_zeros(())
    spectrum = torch.fft.rfft(prediction, dim=-1, norm="ortho")[..., first:].abs()
    reference = torch.fft.rfft(target, dim=-1, norm="ortho")[..., first:].abs()
    return F.l1_loss(spectrum, reference)


def spectral_visibility(
    domain_valid: torch.Tensor, batch: int, group_size: int, *, ratio: float, window_p: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """``(batch, G)`` float: which grid bands each tile shows (a subset of ``domain_valid``, see module doc)."""
    group_valid = domain_valid.view(-1, group_size).any(1)
    groups = group_valid.nonzero().flatten()
    visible = torch.zeros(batch, len(group_valid), dtype=torch.bool)
    for row in range(batch):
        shown = groups
        if len(shown) > 1 and float(torch.rand((), generator=generator)) < window_p:
            length = int(torch.randint(max(1, len(shown) // 2), len(shown) + 1, (), generator=generator))
            start = int(torch.randint(0, len(shown) - length + 1, (), generator=generator))
            shown = shown[start : start + length]
        hide = min(round(ratio * len(shown)), len(shown) - 1)
        keep = torch.randperm(len(shown), generator=generator)[: len(shown) - hide]
        visible[row, shown[keep]] = True
    return (visible.repeat_interleave(group_size, 1) & domain_valid.bool()).float()


class TileSource:
    """Grid cubes of one domain and its band validity; draws random tiles.

    Pixels outside an image's ``readable`` mask (a scene's val and test pixels and the guard band around the test
    pixels, see :meth:`hsbench.strategy.SplitView.readable`) are set to 0, the domain mean after standardisation,
    before anything else happens, and every tile comes with a ``keep`` mask that :func:`ssl_losses` uses to leave
    them out of every loss term and statistic. So their values cannot reach the weights: a tile may overlap them
    (a disjoint split's train region is often narrower than a tile), but it sees only the constant. Tiles are drawn
    at uniform positions of an image chosen by readable area (a function of the masks, never of the values).

    Args:
        cubes: ``(G, H, W)`` standardised grid cubes (images smaller than a tile are padded).
        band_valid: ``(G,)`` bool, the grid bands the domain's sensor covers.
        tile: tile side.
        readable: per cube, a bool ``(H, W)`` mask of the pixels that may be read, or ``None`` (all); ``None``
            for the whole list means every pixel of every cube (a source domain).
    """

    def __init__(self, cubes: list[np.ndarray], band_valid: np.ndarray, tile: int,
                 readable: list[np.ndarray | None] | None = None) -> None:
        self.tile = tile
        masks = readable if readable is not None and any(m is not None for m in readable) else None
        if masks is not None:
            masks = [np.ones(c.shape[-2:], bool) if m is None else np.asarray(m, bool) for c, m in zip(cubes, masks)]
            cubes = [blank_unreadable(c, m) for c, m in zip(cubes, masks)]
        self.cubes = [pad_image(torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32)), tile) for c in cubes]
        self.keep = None if masks is None else [pad_image(torch.from_numpy(m[None].astype(np.float32)), tile)
                                                for m in masks]
        self.band_valid = torch.as_tensor(band_valid, dtype=torch.bool)
        areas = torch.tensor([float(c.shape[-2] * c.shape[-1]) for c in self.cubes]) if self.keep is None else \
            torch.stack([k.sum() for k in self.keep])
        if float(areas.sum()) <= 0:
            raise DataError("no readable pixel to pretrain on: every pixel is held out for val or test")
        self.image_p = areas / areas.sum()

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(batch, G, T, T)`` tiles (an image by readable area, then a uniform position) and their ``keep`` masks
        ``(batch, 1, T, T)`` (``None``: every pixel may be read)."""
        images = torch.multinomial(self.image_p, batch, replacement=True, generator=generator)
        tiles, keeps = [], []
        for index in images.tolist():
            cube = self.cubes[index]
            top = int(torch.randint(0, cube.shape[-2] - self.tile + 1, (), generator=generator))
            left = int(torch.randint(0, cube.shape[-1] - self.tile + 1, (), generator=generator))
            window = (slice(None), slice(top, top + self.tile), slice(left, left + self.tile))
            tiles.append(cube[window])
            if self.keep is not None:
                keeps.append(self.keep[index][window])
        return torch.stack(tiles), torch.stack(keeps) if keeps else None

    def draw(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """:meth:`sample` plus the band validity of the batch's domain (what :func:`train_ssl` asks for)."""
        return (*self.sample(batch, generator), self.band_valid)


class PooledTiles:
    """Tiles of several domains (source datasets), each with its own grid cubes and band validity.

    Every batch comes from one domain, chosen with equal probability (so each source gets an equal share of the
    steps in expectation, whatever its size), because the losses take one band validity per batch.
    """

    def __init__(self, domains: list[TileSource]) -> None:
        if not domains:
            raise DataError("no source domain to draw tiles from")
        self.domains = domains

    def draw(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        domain = self.domains[int(torch.randint(len(self.domains), (), generator=generator))]
        return domain.draw(batch, generator)


class S2FormerSSL(nn.Module):
    """The encoder plus light reconstruction heads (dropped after pretraining)."""

    def __init__(self, cfg: S2FormerConfig) -> None:
        super().__init__()
        self.encoder = S2FormerEncoder(cfg)
        self.reconstruct = nn.Linear(cfg.dim, cfg.grid_bands * cfg.patch_size**2)
        self.group_mean = nn.Linear(cfg.dim, cfg.group_size)

    def forward(
        self, x: torch.Tensor, band_valid: torch.Tensor, token_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstructed cube ``(B, G, H, W)``, group means ``(B, S, g)``, features and spectral tokens."""
        features, spectral = self.encoder(x, band_valid, token_mask)
        b, _, h, w = features.shape
        tokens = self.reconstruct(features.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)
        return F.pixel_shuffle(tokens, self.encoder.cfg.patch_size), self.group_mean(spectral), features, spectral


def _masked_mse(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return ((prediction - target) ** 2 * weight).sum() / weight.expand_as(prediction).sum().clamp_min(1.0)


def ssl_losses(
    model: S2FormerSSL, tiles: torch.Tensor, domain_valid: torch.Tensor, recipe: S2FormerSSLRecipe,
    generator: torch.Generator, keep: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The weighted loss terms of one batch of tiles (``total`` is what is optimised).

    ``keep`` ``(B, 1, T, T)`` (see :class:`TileSource`): pixels at 0 are left out of every target, mean and term.
    """
    cfg = model.encoder.cfg
    b, g, t, _ = tiles.shape
    side = t // cfg.patch_size
    _, token_mask = random_masking(b, side * side, recipe.spatial_mask_ratio, generator)
    token_mask = token_mask.view(b, side, side).to(tiles.device)
    visible = spectral_visibility(domain_valid.cpu(), b, cfg.group_size, ratio=recipe.spectral_mask_ratio,
                                  window_p=recipe.window_p, generator=generator).to(tiles.device)
    recon, group_mean, features, spectral = model(tiles, visible, token_mask)
    known = domain_valid.to(tiles.dtype).expand(b, -1)
    hidden = (known - visible)[:, :, None, None]
    masked_pixels = token_mask.repeat_interleave(cfg.patch_size, 1).repeat_interleave(cfg.patch_size, 2)[:, None]
    group_hidden = hidden.view(b, cfg.num_groups, cfg.group_size)
    if keep is None:
        tile_mean = tiles.mean((2, 3))
    else:
        count = keep.sum((2, 3))
        tile_mean = (tiles * keep).sum((2, 3)) / count.clamp_min(1.0)
        masked_pixels, hidden = masked_pixels & keep.bool(), hidden * keep
        group_hidden = group_hidden * (count > 0)[:, :, None]
    tile_mean = tile_mean.view(b, cfg.num_groups, cfg.group_size)
    terms = {
        "spatial": _masked_mse(recon, tiles, masked_pixels * visible[:, :, None, None]),
        "spectral": 0.5 * (_masked_mse(recon, tiles, hidden) + _masked_mse(group_mean, tile_mean, group_hidden)),
    }
    band = domain_valid.nonzero().flatten()
    spectra = recon.permute(0, 2, 3, 1)[masked_pixels[:, 0]][:, band[0] : band[-1] + 1]
    truth = tiles.permute(0, 2, 3, 1)[masked_pixels[:, 0]][:, band[0] : band[-1] + 1]
    terms["frequency"] = frequency_loss(spectra, truth, recipe.frequency_cutoff)
    pooled = features.mean((2, 3))
    terms["consistency"] = 1 - F.cosine_similarity(pooled, spectral.mean(1), dim=1).mean()
    weights = {"spatial": 1.0, "spectral": recipe.spectral_weight, "frequency": recipe.frequency_weight,
               "consistency": recipe.consistency_weight}
    terms["total"] = sum(weights[k] * v for k, v in terms.items() if weights[k] > 0)
    return terms


def _lr_factor(total_steps: int) -> Callable[[int], float]:
    warmup = max(1, total_steps // 20)
    cosine = SCHEDULES["cosine"]
    return lambda step: (step + 1) / warmup if step < warmup else cosine((step - warmup) / max(1, total_steps - warmup))


def train_ssl(
    model: S2FormerSSL,
    source: TileSource | PooledTiles,
    recipe: S2FormerSSLRecipe,
    *,
    steps: int,
    lr: float,
    generator: torch.Generator,
    device: torch.device,
    progress: bool = False,
    desc: str = "pretrain s2former",
) -> dict[str, Any]:
    """Optimise :func:`ssl_losses` on tiles of ``source``; returns the loss curve and throughput.

    The curve holds the mean total loss over each tenth of the run (10 points), enough to see it fall
    without storing every step.
    """
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=recipe.weight_decay, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(steps))
    chunk = max(1, steps // 10)
    curve: list[float] = []
    sums = {name: 0.0 for name in ("total", "spatial", "spectral", "frequency", "consistency")}
    running = torch.zeros((), device=device)
    start = time.perf_counter()
    for step in tqdm(range(steps), desc=desc, unit="step", leave=False, disable=not progress):
        tiles, keep, band_valid = source.draw(recipe.batch_size, generator)
        terms = ssl_losses(model, tiles.to(device), band_valid.to(device), recipe, generator,
                           None if keep is None else keep.to(device))
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running += terms["total"].detach()
        if (step + 1) % chunk == 0 or step + 1 == steps:
            curve.append(float(running) / ((step % chunk) + 1))
            running.zero_()
        if step + 1 == steps:
            sums = {name: float(value.detach()) for name, value in terms.items()}
    seconds = time.perf_counter() - start
    return {"loss_curve": curve, "final_terms": sums, "seconds": seconds,
            "tiles_per_s": steps * recipe.batch_size / max(seconds, 1e-9)}
