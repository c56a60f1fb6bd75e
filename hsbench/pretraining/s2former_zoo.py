"""Pretrained S2Former encoders through the zoo: source pretraining, then continued pretraining on the target.

Two stages, two artifacts, because they are shared differently:

1. **Source** (:class:`~hsbench.pretraining.s2former_ssl.S2FormerSSLRecipe`): self-supervised on the source
   dataset's images (``synthetic_aerial`` by default), or on several source datasets (a list, e.g. prepared
   scenes ``[samson, jasper_ridge]``: each fitted to the grid on its own wavelengths and standardised with its own
   statistics, batches drawn from one source each, :class:`~hsbench.pretraining.s2former_ssl.PooledTiles`).
   Keyed by the recipe and the source's fingerprint (a list: the hash of its fingerprints in order), so every
   run, dataset and label fraction with the same recipe reuses it.
2. **Target** (:class:`TargetStage`): the source model continues the same objective on the target's unlabelled
   training images, briefly and at a lower learning rate, to meet the target sensor's band coverage and
   radiometry. Keyed by the source artifact, the target dataset's fingerprint and the images used, so ablations
   that change only fine-tuning (``no_daft``) reuse it.

Labels are never read: tiles are cut from cubes only. Of a target's images only the pixels its view allows are read
(:meth:`hsbench.strategy.SplitView.readable`: a scene's train region), unless the run is transductive.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hsbench.data.transforms import PixelTransform
from hsbench.models.s2former import S2FormerConfig
from hsbench.pretraining.s2former_ssl import PooledTiles, S2FormerSSL, S2FormerSSLRecipe, TileSource, train_ssl
from hsbench.pretraining.sources import open_sources, sources_fingerprint
from hsbench.pretraining.spectral_mae import sample_pixels
from hsbench.spectral_grid import fit_grid_standardizer
from hsbench.strategy import readable_mask
from hsbench.zoo import Artifact, Zoo

__all__ = [
    "TargetStage", "pretrained_s2former", "encoder_state", "fit_domain", "domain_tiles", "readable_digest",
    "MODEL_CONFIG_KEY",
]

log = logging.getLogger("hsbench")

MODEL_CONFIG_KEY = "s2former_config"
"""Metadata entry holding the encoder's :class:`S2FormerConfig` (weights are self-describing)."""
ENCODER_PREFIX = "encoder."


@dataclass(frozen=True)
class TargetStage:
    """Continued pretraining on the target's unlabelled training images.

    Attributes:
        dataset: target dataset name.
        fingerprint: target dataset content hash.
        sample_ids: the unlabelled images used (sorted).
        readable: :func:`readable_digest` of the pixels read (the train region, or whole images when transductive).
        steps: optimiser steps.
        lr: AdamW peak learning rate.
        seed: seed of tiles and masks (from the run's seed streams).
        fit_pixels: pixels the target's grid standardisation was fitted on.
    """

    dataset: str
    fingerprint: str
    sample_ids: tuple[str, ...]
    readable: str
    steps: int
    lr: float
    seed: int
    fit_pixels: int

    def recipe(self, base_key: str) -> dict[str, Any]:
        return {"stage": "target", "base": base_key, "dataset": self.dataset, "sample_ids": list(self.sample_ids),
                "readable": self.readable, "steps": self.steps, "lr": self.lr, "seed": self.seed,
                "fit_pixels": self.fit_pixels}


def fit_domain(images: Any, wavelengths_nm: tuple[float, ...], cfg: S2FormerConfig, *, fit_pixels: int,
               rng: np.random.Generator) -> tuple[PixelTransform, np.ndarray]:
    """A domain's grid standardisation and band validity, fitted on at most ``fit_pixels`` of its images' pixels.

    Args:
        images: a :class:`~hsbench.data.dataset.Dataset` or a split view (only cubes are read, never labels).
        wavelengths_nm: the domain's band centres in cube order.
        cfg: the encoder configuration (its grid).
        fit_pixels: pixels sampled uniformly over the images.
        rng: generator of the pixel sample.
    """
    return fit_grid_standardizer(wavelengths_nm, cfg.grid, sample_pixels(images, fit_pixels, rng))


def domain_tiles(images: Any, transform: PixelTransform, band_valid: np.ndarray, tile: int) -> TileSource:
    """Tiles of ``images`` (dataset or view) on the grid, through a fitted standardisation.

    A view's pixels outside :func:`~hsbench.strategy.readable_mask` are blanked and left out of the losses (see
    :class:`TileSource`).
    """
    ids = images.sample_ids
    return TileSource([transform.apply(images.load(i).cube) for i in ids], band_valid, tile,
                      [readable_mask(images, i) for i in ids])


def readable_digest(images: Any) -> str:
    """SHA-256 of which pixels of ``images`` are readable, so a target artifact is keyed by the region it read."""
    h = hashlib.sha256()
    for sample_id in images.sample_ids:
        mask = readable_mask(images, sample_id)
        h.update(f"{sample_id}:{'all' if mask is None else mask.shape}:".encode())
        if mask is not None:
            h.update(np.packbits(np.ascontiguousarray(mask, dtype=bool)).tobytes())
    return h.hexdigest()


def _fresh_model(cfg: S2FormerConfig, seed: int) -> S2FormerSSL:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return S2FormerSSL(cfg)


def _train(model: S2FormerSSL, source: TileSource | PooledTiles, recipe: S2FormerSSLRecipe, *, steps: int,
           lr: float, seed: int, device: torch.device, progress: bool,
           desc: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    generator = torch.Generator().manual_seed(seed)
    facts = train_ssl(model, source, recipe, steps=steps, lr=lr, generator=generator, device=device,
                      progress=progress, desc=desc)
    return model.state_dict(), {MODEL_CONFIG_KEY: recipe.model, **facts}


def pretrained_s2former(
    zoo: Zoo,
    recipe: S2FormerSSLRecipe,
    *,
    target: tuple[TargetStage, Callable[[], TileSource]] | None = None,
    device: torch.device | None = None,
    progress: bool = False,
    data_root: Path | None = None,
    logger: logging.Logger | None = None,
) -> Artifact:
    """The zoo artifact of the source stage, or of the target stage on top of it when ``target`` is given.

    Args:
        zoo: the store.
        recipe: the source-stage recipe.
        target: the target stage and a function building its tiles (called only when the artifact is built).
        device: where to train.
        progress: show progress bars.
        data_root: root of prepared real source datasets (a source not prepared there raises its "prepare it
            first" error).
        logger: where to log what is trained.
    """
    logger, device = logger or log, device or torch.device("cpu")
    cfg = S2FormerConfig.from_dict(recipe.model)
    sources = open_sources(recipe.source, recipe.source_options, data_root=data_root)

    def build_source() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        logger.info("pretraining S2Former on %s (%d steps of %d tiles); stored in %s for reuse",
                    ", ".join(s.name for s in sources), recipe.steps, recipe.batch_size, zoo.root)
        rng = np.random.default_rng(recipe.seed)  # one stream, drawn source after source
        domains = []
        for source in sources:  # each on its own wavelengths and with its own statistics
            transform, valid = fit_domain(source.dataset, source.dataset.card.wavelengths_nm, cfg,
                                          fit_pixels=recipe.fit_pixels, rng=rng)
            domains.append(domain_tiles(source.dataset, transform, valid, recipe.tile_size))
        tiles = domains[0] if len(domains) == 1 else PooledTiles(domains)
        return _train(_fresh_model(cfg, recipe.seed), tiles, recipe, steps=recipe.steps, lr=recipe.lr,
                      seed=recipe.seed, device=device, progress=progress, desc="pretrain s2former (source)")

    base = zoo.get_or_create(recipe.to_dict(), sources_fingerprint(sources), build_source)
    if target is None:
        return base
    stage, make_tiles = target

    def build_target() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        logger.info("continuing S2Former pretraining on %d unlabelled %s images (%d steps)",
                    len(stage.sample_ids), stage.dataset, stage.steps)
        model = base.load_into(S2FormerSSL(cfg))  # strict: the source artifact was written for this model
        return _train(model, make_tiles(), recipe, steps=stage.steps, lr=stage.lr, seed=stage.seed,
                      device=device, progress=progress, desc="pretrain s2former (target)")

    return zoo.get_or_create(stage.recipe(str(base.key)), stage.fingerprint, build_target)


def encoder_state(artifact: Artifact) -> dict[str, torch.Tensor]:
    """The encoder's weights of an artifact (reconstruction heads dropped)."""
    return {k.removeprefix(ENCODER_PREFIX): v for k, v in artifact.state_dict().items() if k.startswith(ENCODER_PREFIX)}
