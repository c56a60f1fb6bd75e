"""Image samplers of ``fraction=p`` splits: which official training images a fraction keeps.

``default`` is hsbench's own draw. ``cross_domain_2026`` reproduces the limited-data subsets of the 2026
cross-domain study (``nickstheisen/cross-domain-hsi``) so its published rows can be rerun on the same images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hsbench.errors import ConfigError
from hsbench.seeding import SeedStreams
from hsbench.splits._pixels import ceil_share

__all__ = ["ImageSampler", "IMAGE_SAMPLERS", "DEFAULT_SAMPLER", "CROSS_DOMAIN_2026_SEED", "image_share"]

DEFAULT_SAMPLER = "default"

CROSS_DOMAIN_2026_SEED = 42
"""The study's ``manual_seed`` (every ``run/conf/dataset/*.yaml``): its subset is the same for every run seed."""


def image_share(ids: tuple[str, ...], p: float, rng: np.random.Generator) -> tuple[str, ...]:
    """``ceil(p n)`` (at least one) of ``ids`` by a seeded permutation, in their original order (nested in p)."""
    order = rng.permutation(len(ids))
    chosen = set(order[: max(1, ceil_share(p, len(ids)))].tolist())
    return tuple(sample_id for i, sample_id in enumerate(ids) if i in chosen)


def _default(ids: tuple[str, ...], p: float, seed: int) -> tuple[str, ...]:
    return image_share(ids, p, SeedStreams(seed).rng("split"))


def _cross_domain_2026(ids: tuple[str, ...], p: float, seed: int) -> tuple[str, ...]:
    """The study's ``HSDataModule.train_dataloader``: ``random_split`` of its training set into
    ``[round(p N), rest]`` with ``torch.Generator().manual_seed(42)``, keeping the first part.

    Its training set lists the HDF5 groups of ``<dataset>_train.h5``, which ``h5py`` yields sorted by name, so the
    draw runs over the official train ids sorted (byte order), not in the list's file order. ``seed`` is unused:
    the study draws with seed 42 whatever the run seed. Python's ``round`` (half to even) as in the study; a
    subset of 0 images is an error there and here.
    """
    import torch
    from torch.utils.data import random_split

    pool = sorted(ids)
    size = round(p * len(pool))
    if size == 0:
        raise ConfigError(f"fraction={p} of {len(pool)} training images rounds to 0 images (the 2026 study's "
                          "round(p*N)); use a larger fraction")
    kept, _ = random_split(range(len(pool)), [size, len(pool) - size],
                           generator=torch.Generator().manual_seed(CROSS_DOMAIN_2026_SEED))
    chosen = {pool[i] for i in kept.indices}
    return tuple(sample_id for sample_id in ids if sample_id in chosen)


@dataclass(frozen=True)
class ImageSampler:
    """One way to draw a fraction of the official training images.

    Attributes:
        draw: ``draw(train_ids, p, run_seed)`` -> the kept ids, in the official list's order.
        params: recorded in the split's params (and hash), so a saved split says how it was drawn.
        matched_val: whether ``val=matched`` may subsample val alongside (the study keeps its full val list).
    """

    draw: Callable[[tuple[str, ...], float, int], tuple[str, ...]]
    params: dict[str, int | str] = field(default_factory=dict)
    matched_val: bool = True


IMAGE_SAMPLERS: dict[str, ImageSampler] = {
    DEFAULT_SAMPLER: ImageSampler(_default),
    "cross_domain_2026": ImageSampler(
        _cross_domain_2026,
        {"sampler": "cross_domain_2026", "draw_seed": CROSS_DOMAIN_2026_SEED, "seed_independent": 1},
        matched_val=False,
    ),
}
