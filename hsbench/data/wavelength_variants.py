"""Wavelength variants: a dataset opened with another band-centre vector than its card's true one.

Only for reproducing published numbers that were computed with wrong wavelengths. The variant renames nothing
but changes the card's ``wavelengths_nm`` and the dataset fingerprint, so runs with it never share a run id or a
feature cache with runs on the true centres.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from hsbench.data.dataset import Dataset
from hsbench.errors import ConfigError

__all__ = ["TRUE_WAVELENGTHS", "with_wavelengths"]

TRUE_WAVELENGTHS = "true"
"""The default variant: the card's own band centres."""


def with_wavelengths(dataset: Dataset, variant: str, variants: dict[str, tuple[float, ...]]) -> Dataset:
    """``dataset`` unchanged for ``true``, else a view whose card carries ``variants[variant]``.

    Raises:
        ConfigError: an unknown variant, or one whose band count differs from the card's.
    """
    variant = str(variant).lower()  # a YAML-read ``true`` arrives as a bool
    if variant == TRUE_WAVELENGTHS:
        return dataset
    card = dataset.card
    if variant not in variants:
        raise ConfigError(f"dataset {card.name!r} has no wavelengths={variant}; it has "
                          + ", ".join((TRUE_WAVELENGTHS, *variants)))
    wavelengths = tuple(float(w) for w in variants[variant])
    if len(wavelengths) != card.num_bands:
        raise ConfigError(f"{card.name}: wavelengths={variant} has {len(wavelengths)} bands, the card {card.num_bands}")
    fingerprint = hashlib.sha256(f"{dataset.fingerprint}|wavelengths={variant}".encode()).hexdigest()
    return Dataset(replace(card, wavelengths_nm=wavelengths), dataset.sample_ids, dataset.load,
                   fingerprint=fingerprint, prevalidated=True)
