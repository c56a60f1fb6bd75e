"""The dataset card: everything a strategy, a split or a report needs to know about a dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["DatasetCard", "OfficialSplit", "Task"]

Task = Literal["segmentation", "scene"]


@dataclass(frozen=True)
class OfficialSplit:
    """A published list of sample ids per part."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def part(self, name: str) -> tuple[str, ...]:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


@dataclass(frozen=True)
class DatasetCard:
    """Static facts about a dataset.

    Attributes:
        name: registry name.
        task: ``segmentation`` (many densely labelled images) or ``scene`` (one or a few large scenes with
            sparse labels, evaluated with pixel-level k-shot splits).
        wavelengths_nm: band centres in **cube order** (not necessarily sorted or evenly spaced).
        class_names: evaluated classes; harness label ids are ``0..K-1`` in this order.
        palette: one RGB triple per class, for figures.
        ignore_index: label value of undefined / unlabelled pixels (never a class id).
        pseudo_rgb_bands: three band indices (cube order) used for pseudo-RGB renderings.
        official_splits: published sample lists by split name; the first one is the default ``official``.
        folder_split: the distribution's folders are the ``official`` split, known only once the prepared data
            is opened (WHU-OHS); ``official_splits`` is then empty on the registered card.
        raw_label_map: raw dataset id -> harness id (raw ids not in the map become ``ignore_index``).
        fwhm_nm: optional band widths, cube order.
        sizes: human-readable sizes (images, image size) for ``hsbench show``.
        version: bumps whenever the bytes a reader produces change; stored with every run.
    """

    name: str
    task: Task
    wavelengths_nm: tuple[float, ...]
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int
    pseudo_rgb_bands: tuple[int, int, int]
    official_splits: dict[str, OfficialSplit] = field(default_factory=dict, hash=False)
    raw_label_map: dict[int, int] | None = field(default=None, hash=False)
    fwhm_nm: tuple[float, ...] | None = None
    sizes: str = ""
    description: str = ""
    citation: str = ""
    licence: str = ""
    how_to_obtain: str = ""
    version: str = "1"
    folder_split: bool = False

    def __post_init__(self) -> None:
        if len(self.palette) != len(self.class_names):
            raise ValueError(f"{self.name}: {len(self.palette)} palette colours for {len(self.class_names)} classes")
        if 0 <= self.ignore_index < len(self.class_names):
            raise ValueError(f"{self.name}: ignore_index {self.ignore_index} collides with a class id")
        if any(not 0 <= b < len(self.wavelengths_nm) for b in self.pseudo_rgb_bands):
            raise ValueError(f"{self.name}: pseudo-RGB bands {self.pseudo_rgb_bands} out of range")
        if self.fwhm_nm is not None and len(self.fwhm_nm) != len(self.wavelengths_nm):
            raise ValueError(f"{self.name}: {len(self.fwhm_nm)} FWHM values for {len(self.wavelengths_nm)} bands")

    @property
    def num_bands(self) -> int:
        return len(self.wavelengths_nm)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def wavelength_order(self) -> np.ndarray:
        """Band indices that sort the cube by wavelength (cube order is not guaranteed sorted)."""
        return np.argsort(np.asarray(self.wavelengths_nm), kind="stable")

    def official(self, name: str | None = None) -> OfficialSplit:
        """The named official split, or the default (first) one."""
        from hsbench.errors import ConfigError

        if not self.official_splits:
            raise ConfigError(
                f"dataset {self.name!r} has no official split; use fraction=p on a segmentation dataset "
                "or kshot=k on a scene dataset"
            )
        if name is None:
            return next(iter(self.official_splits.values()))
        if name not in self.official_splits:
            raise ConfigError(
                f"dataset {self.name!r} has no official split {name!r}; it has {', '.join(self.official_splits)}"
            )
        return self.official_splits[name]
