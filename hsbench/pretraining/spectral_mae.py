"""Masked spectral modelling: pretraining a :class:`SpectralFM` on unlabelled source pixels, stored in the zoo.

Recipe (HyperSL's, scaled for a CPU): each pixel spectrum is embedded band by band, most band tokens (default 90 %)
are dropped, the encoder sees the global token and the visible tokens only, and a light decoder (MAE-style:
narrower and shallower than the encoder) puts learnable mask tokens back at the dropped wavelengths and regresses
their values, standardised per spectrum (MAE's ``norm_pix_loss``); the loss is the mean squared error on masked
bands only, so the model cannot score by copying.

One choice of ours on top: every batch sees a random *band view* of the source spectra (every 1st, 2nd or 3rd
band of a random contiguous window, at least ``min_bands`` long). The source sensor samples 400-1000 nm every
4.7 nm, while target cameras have 15-25 bands 10-15 nm apart over part of that range; without this the embedding
convolutions would only ever see the source's spacing and range.

Several sources (``source=[samson, jasper_ridge]``, :mod:`.sources`) pool their pixels: each source gives an equal
share of ``pixels`` (a source with fewer pixels gives all it has; the shortfall is not moved to the others), sampled
with its own sensor's wavelengths, and every batch holds pixels of one source only, so that it carries that
source's band centres into the positional encoding. Batches of all sources are shuffled together each epoch. One
source gives exactly the draws, weights and zoo key it gave before lists existed.

With ``source="earthlib"`` the pixels are instead simulated from a spectral library (:mod:`.spectral_library`,
:mod:`.sensor_sim`): each batch a new virtual sensor, whose band centres feed the positional encoding. The same
training loop serves both; the dataset path's random draws are those it always made.

Randomness comes from the recipe's own seed (not a run's seed streams): one artifact serves every run, so its
bytes must not depend on which run asked for it first.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from hsbench.errors import ConfigError, DataError
from hsbench.models.spectral_fm import Block, SpectralFM, SpectralFMConfig, make_div_term, wavelength_encoding
from hsbench.models.spectral_fm_import import MODEL_CONFIG_KEY
from hsbench.pretraining.sensor_sim import SensorSimConfig, simulate_batch
from hsbench.pretraining.sources import open_sources, recipe_source, recipe_source_options, sources_fingerprint
from hsbench.pretraining.spectral_library import LIBRARY_SOURCES, SpectralLibrary, load_earthlib
from hsbench.strategy import readable_mask
from hsbench.zoo import Artifact, Zoo

__all__ = [
    "SpectralMAERecipe", "SpectralMAE", "random_masking", "band_view", "sample_pixels", "pretrain_spectral_mae",
    "pretrain_spectral_mae_simulated", "pretrained_spectral_fm", "equal_shares",
]

log = logging.getLogger("hsbench")

_SIMULATOR_STREAM = 17
"""Mixed into the recipe seed for the simulator's generator, so that it is independent of the masks' stream."""


@dataclass(frozen=True)
class SpectralMAERecipe:
    """Everything that determines a pretrained spectral FM (its zoo key hashes this plus the source data).

    Attributes:
        model: :meth:`SpectralFMConfig.to_dict` of the encoder.
        source: registered dataset whose pixels are the (unlabelled) training data, a list of them (pooled, see
            the module doc; a one-element list is stored as the plain name), or ``earthlib``: spectra of that
            spectral library seen through a random virtual sensor per batch (:mod:`.sensor_sim`; needs the
            ``hsbench[spectra]`` extra; not in a list).
        source_options: options of the source dataset's ``open`` (e.g. ``num_images`` of a synthetic set); for a
            list of sources, a mapping source name -> its options; for ``earthlib``, overrides of
            :class:`~hsbench.pretraining.sensor_sim.SensorSimConfig`.
        mask_ratio: fraction of band tokens hidden from the encoder (HyperSL / MAE: most of them).
        epochs: passes over the sampled pixels.
        pixels: pixels sampled uniformly from all source images (labels are never read; several sources: an
            equal share each); for ``earthlib``, fresh simulated pixels per epoch.
        batch_size: pixels per optimiser step.
        lr: AdamW peak learning rate (linear warm-up over the first 5 % of steps, then cosine decay).
        weight_decay: AdamW weight decay.
        decoder_dim: decoder width.
        decoder_depth: decoder blocks.
        norm_target: regress each spectrum standardised over its own bands (MAE's ``norm_pix_loss``) rather than
            raw values, so that the loss rewards spectral shape instead of being dominated by brightness.
        min_bands: shortest band view (dataset sources only).
        max_band_stride: band views take every 1st .. ``max_band_stride``-th band (1 disables the views; dataset
            sources only).
        seed: seed of the initialisation, the pixel sample, the order, the views and the masks.
    """

    model: dict[str, Any]
    source: str | list[str] = "synthetic_aerial"
    source_options: dict[str, Any] = field(default_factory=dict)
    mask_ratio: float = 0.9
    epochs: int = 6
    pixels: int = 32_768
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    decoder_dim: int = 32
    decoder_depth: int = 1
    norm_target: bool = True
    min_bands: int = 12
    max_band_stride: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        # One normal form per source list (a one-element list is the plain name), so equal sources share a key.
        object.__setattr__(self, "source", recipe_source(self.source))
        object.__setattr__(self, "source_options", recipe_source_options(self.source, self.source_options))
        if isinstance(self.source, list) and set(self.source) & set(LIBRARY_SOURCES):
            raise ConfigError(f"source {', '.join(sorted(set(self.source) & set(LIBRARY_SOURCES)))} is a spectral "
                              "library (virtual sensors): it pretrains alone, not in a list of datasets")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio must lie in (0, 1), got {self.mask_ratio}")
        for name in ("epochs", "pixels", "batch_size", "decoder_dim", "min_bands", "max_band_stride"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"pretraining {name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def random_masking(
    n: int, length: int, ratio: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel random masks: ``keep`` indices ``(n, K)`` (sorted) and ``masked`` ``(n, length)`` bool.

    ``round(length * ratio)`` tokens are masked, kept within ``[1, length - 1]`` so there is always something to
    see and something to predict.
    """
    num_masked = min(max(round(length * ratio), 1), length - 1)
    noise = torch.rand(n, length, generator=generator)
    keep = torch.argsort(noise, dim=1)[:, : length - num_masked].sort(dim=1).values
    masked = torch.ones(n, length, dtype=torch.bool)
    masked.scatter_(1, keep, False)
    return keep, masked


def band_view(num_bands: int, min_bands: int, max_stride: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of a random band view: a random stride and offset, then a random contiguous window."""

    def draw(low: int, high: int) -> int:  # inclusive bounds
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    stride = draw(1, max_stride)
    strided = torch.arange(draw(0, stride - 1), num_bands, stride)
    length = draw(min(min_bands, len(strided)), len(strided))
    start = draw(0, len(strided) - length)
    return strided[start : start + length]


class SpectralMAE(nn.Module):
    """Encoder plus a light reconstruction decoder for masked band modelling.

    Args:
        encoder: the spectral FM being pretrained (the only part kept afterwards).
        decoder_dim: decoder width.
        decoder_depth: decoder blocks.
        norm_target: regress per-spectrum standardised values instead of raw ones.
    """

    def __init__(
        self, encoder: SpectralFM, *, decoder_dim: int = 32, decoder_depth: int = 1, norm_target: bool = False
    ) -> None:
        super().__init__()
        self.encoder, self.norm_target = encoder, norm_target
        heads = max(1, decoder_dim // 16)
        self.decoder_embed = nn.Linear(encoder.dim, decoder_dim)
        self.decoder_blocks = nn.ModuleList(Block(decoder_dim, heads, 4.0) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, 1)
        self.register_buffer("decoder_div_term", make_div_term(decoder_dim, encoder.cfg.max_period))

    def forward(self, spectra: torch.Tensor, wavelengths_nm: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Predicted band values ``(N, L)`` from the ``keep`` tokens of wavelength-sorted ``spectra`` ``(N, L)``."""
        encoder = self.encoder
        tokens = encoder.embed(spectra, wavelengths_nm)
        n, length, dim = tokens.shape
        index = keep[..., None].expand(-1, -1, dim)
        encoded = encoder.encode(tokens.gather(1, index))
        bands = encoder.mask_token.expand(n, length, dim).scatter(1, index, encoded[:, 1:])
        x = self.decoder_embed(torch.cat([encoded[:, :1], bands], dim=1))
        position = wavelength_encoding(wavelengths_nm, self.decoder_div_term, encoder.cfg)
        x = torch.cat([x[:, :1], x[:, 1:] + position[None]], dim=1)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x[:, 1:]))[..., 0]

    def loss(
        self, spectra: torch.Tensor, wavelengths_nm: torch.Tensor, mask_ratio: float, generator: torch.Generator
    ) -> torch.Tensor:
        """Mean squared reconstruction error over masked bands."""
        keep, masked = random_masking(spectra.shape[0], spectra.shape[1], mask_ratio, generator)
        masked = masked.to(spectra.device)
        prediction = self.forward(spectra, wavelengths_nm, keep.to(spectra.device))
        target = spectra
        if self.norm_target:
            target = (spectra - spectra.mean(1, keepdim=True)) / (spectra.std(1, keepdim=True) + 1e-6)
        return F.mse_loss(prediction[masked], target[masked])


def sample_pixels(images: Any, count: int, rng: np.random.Generator) -> np.ndarray:
    """About ``count`` pixel spectra ``(N, B)`` drawn uniformly without replacement from every image.

    ``images`` is a dataset (every pixel) or a split view, whose pixels are drawn from its readable ones only
    (:func:`hsbench.strategy.readable_mask`: a scene's train region), so no val or test pixel is sampled. Labels
    are never looked at: the images are used as unlabelled data.
    """
    per_image = math.ceil(count / len(images))
    chunks = []
    for sample_id in images.sample_ids:
        cube = np.asarray(images.load(sample_id).cube, dtype=np.float32)
        flat = cube.reshape(cube.shape[0], -1)
        readable = readable_mask(images, sample_id)
        columns = np.arange(flat.shape[1]) if readable is None else np.flatnonzero(readable.ravel())
        if len(columns) == 0:
            continue
        pick = columns[rng.choice(len(columns), size=min(per_image, len(columns)), replace=False)]
        chunks.append(flat[:, pick].T)
    if not chunks:
        raise DataError("no readable pixel to sample: every pixel of these images is held out for val or test")
    pixels = np.concatenate(chunks)
    if len(pixels) > count:
        pixels = pixels[np.sort(rng.choice(len(pixels), size=count, replace=False))]
    return np.ascontiguousarray(pixels)


def _schedule(total_steps: int) -> Any:
    warmup = max(1, total_steps // 20)
    return lambda step: (step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) /
                                                                                       max(1, total_steps - warmup)))


def equal_shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal integers (the first ones take the remainder)."""
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


EpochBatches = Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]
"""A fresh iterator per epoch over ``(spectra (n, L), wavelengths_nm (L,))`` batches, wavelength-sorted."""


def _fresh_mae(recipe: SpectralMAERecipe, device: torch.device) -> SpectralMAE:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        return SpectralMAE(SpectralFM(SpectralFMConfig.from_dict(recipe.model)),
                           decoder_dim=recipe.decoder_dim, decoder_depth=recipe.decoder_depth,
                           norm_target=recipe.norm_target).to(device)


def _train(
    mae: SpectralMAE, recipe: SpectralMAERecipe, generator: torch.Generator, epoch_batches: EpochBatches,
    steps_per_epoch: int, device: torch.device, progress: bool,
) -> list[float]:
    """The masked-band-modelling loop shared by every source; ``generator`` draws the masks (after each batch's
    own draws, which the lazy ``epoch_batches`` makes when a batch is asked for)."""
    optimizer = torch.optim.AdamW(mae.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(recipe.epochs * steps_per_epoch))
    history: list[float] = []
    mae.train()
    with tqdm(total=recipe.epochs * steps_per_epoch, desc="pretrain spectral FM", unit="step", leave=False,
              disable=not progress) as bar:
        for _ in range(recipe.epochs):
            total = torch.zeros(())
            for spectra, wavelengths in epoch_batches():
                loss = mae.loss(spectra.to(device), wavelengths.to(device), recipe.mask_ratio, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(mae.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                total += loss.detach().cpu()
                bar.update(1)
            history.append(float(total) / steps_per_epoch)
            bar.set_postfix(loss=f"{history[-1]:.5f}")
    return history


def pretrain_spectral_mae(
    recipe: SpectralMAERecipe,
    pixels: np.ndarray | Sequence[np.ndarray],
    wavelengths_nm: np.ndarray | Sequence[np.ndarray],
    *,
    device: torch.device | None = None,
    progress: bool = True,
) -> tuple[SpectralFM, list[float]]:
    """Train a fresh encoder by masked band modelling; returns it and the loss per epoch.

    Args:
        recipe: the recipe (schedule, band views, seed).
        pixels: one source's spectra ``(N, B)``, or a list of sources' spectra ``(N_k, B_k)``, each with its own
            band count.
        wavelengths_nm: the band centres of ``pixels`` in cube order, ``(B,)``; for a list, one array per source.
        device: where to train.
        progress: show a progress bar.

    Every batch holds pixels of one source (its own wavelengths); with several sources, each epoch shuffles every
    source's pixels into batches, then the order of all batches. One array gives the draws of a one-source run.
    """
    device = device or torch.device("cpu")
    generator = torch.Generator().manual_seed(recipe.seed)
    mae = _fresh_mae(recipe, device)
    pooled = not isinstance(pixels, np.ndarray)
    pixel_groups = list(pixels) if pooled else [pixels]
    wavelength_groups = list(wavelengths_nm) if pooled else [wavelengths_nm]
    if len(pixel_groups) != len(wavelength_groups) or not pixel_groups:
        raise ValueError(f"{len(pixel_groups)} pixel arrays but {len(wavelength_groups)} wavelength arrays")
    groups = []
    for values, wavelengths_k in zip(pixel_groups, wavelength_groups, strict=True):
        order = np.argsort(np.asarray(wavelengths_k), kind="stable")
        if np.asarray(values).shape[1] != len(order):
            raise ValueError(f"pixels of {np.asarray(values).shape[1]} bands with {len(order)} wavelengths")
        groups.append((torch.from_numpy(np.ascontiguousarray(np.asarray(values)[:, order], dtype=np.float32)),
                       torch.as_tensor(np.asarray(wavelengths_k, dtype=np.float32)[order])))

    def epoch_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = [(k, batch) for k, (spectra, _) in enumerate(groups)
                   for batch in torch.randperm(len(spectra), generator=generator).split(recipe.batch_size)]
        if len(groups) > 1:  # one source keeps its batches in permutation order (the draws it always made)
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        for k, batch in batches:
            spectra, wavelengths = groups[k]
            bands = band_view(spectra.shape[1], recipe.min_bands, recipe.max_band_stride, generator)
            yield spectra[batch][:, bands], wavelengths[bands]

    steps_per_epoch = sum(math.ceil(len(spectra) / recipe.batch_size) for spectra, _ in groups)
    history = _train(mae, recipe, generator, epoch_batches, steps_per_epoch, device, progress)
    return mae.encoder.eval(), history


def pretrain_spectral_mae_simulated(
    recipe: SpectralMAERecipe,
    library: SpectralLibrary,
    simulator: SensorSimConfig,
    *,
    device: torch.device | None = None,
    progress: bool = True,
) -> tuple[SpectralFM, list[float]]:
    """Masked band modelling on simulated pixels: every batch a new virtual sensor (its band centres are the
    wavelengths of the positional encoding), ``recipe.pixels`` fresh pixels per epoch. Band views
    (``min_bands``, ``max_band_stride``) do not apply: the sensors already vary range and spacing."""
    device = device or torch.device("cpu")
    generator = torch.Generator().manual_seed(recipe.seed)  # the masks
    mae = _fresh_mae(recipe, device)
    rng = np.random.default_rng(np.random.SeedSequence([recipe.seed, _SIMULATOR_STREAM]))  # sensors and pixels
    steps_per_epoch = math.ceil(recipe.pixels / recipe.batch_size)

    def epoch_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step in range(steps_per_epoch):
            count = min(recipe.batch_size, recipe.pixels - step * recipe.batch_size)
            values, sensor = simulate_batch(library.spectra, library.wavelengths_nm, rng, count, simulator)
            order = np.argsort(sensor.centres_nm, kind="stable")  # the MAE reads wavelength-sorted bands
            yield (torch.from_numpy(np.ascontiguousarray(values[:, order])),
                   torch.as_tensor(sensor.centres_nm[order], dtype=torch.float32))

    history = _train(mae, recipe, generator, epoch_batches, steps_per_epoch, device, progress)
    return mae.encoder.eval(), history


def pretrained_spectral_fm(
    zoo: Zoo,
    recipe: SpectralMAERecipe,
    *,
    device: torch.device | None = None,
    progress: bool = True,
    data_root: Path | None = None,
    logger: logging.Logger | None = None,
) -> Artifact:
    """The zoo's artifact for ``recipe``: reused when stored, else pretrained now (once) and stored.

    A real source dataset is opened under ``data_root`` (not prepared there: its "prepare it first" error).
    """
    logger = logger or log
    if isinstance(recipe.source, str) and recipe.source in LIBRARY_SOURCES:
        return _pretrained_on_library(zoo, recipe, device=device, progress=progress, logger=logger)
    sources = open_sources(recipe.source, recipe.source_options, data_root=data_root, extra_valid=LIBRARY_SOURCES)

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        logger.info("pretraining a spectral FM on %s (%d pixels, %d epochs); stored in %s for reuse",
                    ", ".join(s.name for s in sources), recipe.pixels, recipe.epochs, zoo.root)
        start = time.perf_counter()
        rng = np.random.default_rng(recipe.seed)  # one stream, drawn source after source
        shares = equal_shares(recipe.pixels, len(sources))
        pixels = [sample_pixels(s.dataset, share, rng) for s, share in zip(sources, shares, strict=True)]
        wavelengths = [np.asarray(s.dataset.card.wavelengths_nm) for s in sources]
        if len(sources) == 1:
            model, history = pretrain_spectral_mae(recipe, pixels[0], wavelengths[0], device=device,
                                                   progress=progress)
        else:
            model, history = pretrain_spectral_mae(recipe, pixels, wavelengths, device=device, progress=progress)
        seconds = time.perf_counter() - start
        logger.info("pretraining done in %.0f s: masked-band MSE %.5f -> %.5f", seconds, history[0], history[-1])
        facts = {
            MODEL_CONFIG_KEY: recipe.model, "source": recipe.source, "loss_curve": history,
            "pretrain_seconds": seconds, "pixels": sum(len(p) for p in pixels), "parameters": model.num_parameters(),
        }
        if len(sources) > 1:
            facts["source_pixels"] = {s.name: len(p) for s, p in zip(sources, pixels, strict=True)}
        return model.state_dict(), facts

    return zoo.get_or_create(recipe.to_dict(), sources_fingerprint(sources), build)


def _pretrained_on_library(
    zoo: Zoo, recipe: SpectralMAERecipe, *, device: torch.device | None, progress: bool, logger: logging.Logger
) -> Artifact:
    """A spectral library source: ``source_options`` are :class:`SensorSimConfig` overrides, and the zoo keys on
    the library's version and file hash instead of a dataset fingerprint."""
    simulator = SensorSimConfig.from_options(dict(recipe.source_options))  # bad options fail before loading
    library = load_earthlib()

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        logger.info("pretraining a spectral FM on %s %s spectra through virtual sensors (%d pixels per epoch, %d "
                    "epochs); stored in %s for reuse", recipe.source, library.version, recipe.pixels, recipe.epochs,
                    zoo.root)
        start = time.perf_counter()
        model, history = pretrain_spectral_mae_simulated(recipe, library, simulator, device=device,
                                                         progress=progress)
        seconds = time.perf_counter() - start
        logger.info("pretraining done in %.0f s: masked-band MSE %.5f -> %.5f", seconds, history[0], history[-1])
        return model.state_dict(), {
            MODEL_CONFIG_KEY: recipe.model, "source": recipe.source, "loss_curve": history,
            "pretrain_seconds": seconds, "pixels": recipe.pixels * recipe.epochs, "parameters": model.num_parameters(),
            "simulator": simulator.to_dict(), **library.provenance(),
        }

    return zoo.get_or_create(recipe.to_dict(), library.fingerprint, build)
