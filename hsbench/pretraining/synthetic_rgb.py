"""Synthetic RGB pretraining: an RGB network trained on RGB renderings of the labelled synthetic aerial source.

``cross_modality`` exists to reuse RGB pretraining, and no pretrained weights can be downloaded at run time. When a
user gives none, the embedded suite still needs a network that has learnt *something* before it meets the target,
or the strategy would silently be ``in_domain`` with three input channels. So the network is pretrained once on
``synthetic_aerial`` (its labels are used: this stands in for ImageNet / Cityscapes supervised pretraining),
rendered to RGB by the same adapter family the run uses (``cie`` true colour or ``prgb`` pseudo-RGB of the aerial
card), and stored in the zoo under a key of this recipe and the source's content hash. Runs report it as
"synthetic RGB pretraining" next to the strategy name.

Randomness comes from the recipe's seed (not a run's seed streams): one artifact serves every run, so its bytes
must not depend on which run asked first. The global torch generator is left as it was.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hsbench.adapters import build_adapter
from hsbench.data.transforms import collect_labelled_pixels
from hsbench.errors import ConfigError
from hsbench.learners import DenseNetworkLearner
from hsbench.models.rgb_backbones import rgb_backbone
from hsbench.registry import DATASETS, lookup
from hsbench.seeding import SeedStreams
from hsbench.strategy import RunContext, SplitView
from hsbench.zoo import Artifact, Zoo

__all__ = ["SyntheticRGBRecipe", "pretrain_synthetic_rgb", "pretrained_rgb_network", "RENDERINGS"]

log = logging.getLogger("hsbench")

RENDERINGS = ("prgb", "cie", "pca3")
"""Adapters that can render the source (``learned`` renders as ``prgb``, the mapping it starts from)."""


@dataclass(frozen=True)
class SyntheticRGBRecipe:
    """Everything that determines a synthetic-RGB-pretrained network (its zoo key hashes this and the source data).

    Attributes:
        backbone: registered RGB network.
        backbone_options: its build options.
        rendering: adapter that renders the source to RGB.
        source: labelled source dataset.
        source_options: options of the source's ``open`` (e.g. ``num_images``).
        epochs: training epochs (model selection on the source's val images).
        batch_size: images per step.
        lr: AdamW peak learning rate (cosine decay).
        hflip_p: horizontal-flip probability (nadir images have no preferred side).
        seed: initialisation, order and augmentation seed.
    """

    backbone: str
    backbone_options: dict[str, Any] = field(default_factory=dict)
    rendering: str = "prgb"
    source: str = "synthetic_aerial"
    source_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    hflip_p: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rendering not in RENDERINGS:
            raise ConfigError(f"synthetic RGB pretraining renders with {', '.join(RENDERINGS)}, not {self.rendering!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("pretraining epochs and batch size must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "synthetic_rgb_segmentation", **dataclasses.asdict(self)}

    def training_options(self) -> dict[str, Any]:
        """The shared training options (:func:`hsbench.learners.engine_config`) of this recipe."""
        return {
            "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "weight_decay": 0.0,
            "schedule": "cosine", "grad_clip_norm": 1.0, "early_stopping_patience": None, "hflip_p": self.hflip_p,
            "min_steps_per_epoch": 4, "crop_size": None, "model_options": {},
        }


def pretrain_synthetic_rgb(
    recipe: SyntheticRGBRecipe, source: Any, *, device: torch.device, progress: bool, logger: logging.Logger
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the recipe's network on RGB renderings of ``source``; returns its state dict and metadata."""
    card = source.card
    split = card.official()
    train = SplitView(source, dict.fromkeys(split.train), "train")
    val = SplitView(source, dict.fromkeys(split.val), "val")
    seeds = SeedStreams(recipe.seed)
    ctx = RunContext(device=device, seeds=seeds, work_dir=Path(tempfile.gettempdir()), logger=logger, progress=progress)
    pixels, _ = collect_labelled_pixels(train, card.ignore_index, max_pixels=200_000, rng=seeds.rng("order"))
    adapter = build_adapter(recipe.rendering, card).fit(pixels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds.int_seed("init"))
        network = rgb_backbone(recipe.backbone).build(card.num_classes, dict(recipe.backbone_options))
        learner = DenseNetworkLearner(recipe.training_options(), ctx, card)
        start = time.perf_counter()
        facts = learner.fit_network(network, adapter, train, val)
    state = network.state_dict()
    if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
        raise ConfigError(
            f"synthetic RGB pretraining of {recipe.backbone} diverged (non-finite weights): lower pretrain_lr, or use "
            "larger source images (BatchNorm on 1x1 feature maps of tiny images is unstable)"
        )
    return state, {
        "source": recipe.source, "source_classes": list(card.class_names), "rendering": adapter.describe(),
        "source_val_miou": facts["best_val_miou"], "val_history": facts["val_history"],
        "pretrain_seconds": time.perf_counter() - start, "parameters": facts["parameters"],
    }


def pretrained_rgb_network(
    zoo: Zoo,
    recipe: SyntheticRGBRecipe,
    *,
    device: torch.device | None = None,
    progress: bool = False,
    logger: logging.Logger | None = None,
) -> Artifact:
    """The zoo's artifact for ``recipe``: reused when stored, else pretrained now (once) and stored."""
    logger = logger or log
    source = lookup(DATASETS, recipe.source).open(**dict(recipe.source_options))

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        logger.info("synthetic RGB pretraining of %s on %s (%s rendering, %d epochs) for the zoo at %s",
                    recipe.backbone, recipe.source, recipe.rendering, recipe.epochs, zoo.root)
        state, metadata = pretrain_synthetic_rgb(
            recipe, source, device=device or torch.device("cpu"), progress=progress, logger=logger
        )
        logger.info("synthetic RGB pretraining done in %.0f s: source val mIoU %.3f",
                    metadata["pretrain_seconds"], metadata["source_val_miou"])
        return state, metadata

    return zoo.get_or_create(recipe.to_dict(), source.fingerprint, build)
