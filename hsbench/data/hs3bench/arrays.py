"""Array steps shared by the HS3-Bench readers: the HCV2 half-size rule and the final checked Sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample, validate_sample
from hsbench.data.labels import remap_labels

__all__ = ["halved_size", "halve_nearest", "to_sample"]


def halved_size(height: int, width: int) -> tuple[int, int]:
    """Size after the 0.5 nearest-neighbour downscale: ``(height // 2, width // 2)`` (1422 x 1889 -> 711 x 944)."""
    return height // 2, width // 2


def halve_nearest(array: np.ndarray) -> np.ndarray:
    """Keep rows and columns 0, 2, 4, ... of the last two axes, ``halved_size`` of them (a view).

    This is what OpenCV ``resize(fx=fy=0.5, INTER_NEAREST)`` and torch ``interpolate(mode="nearest")`` keep for
    a factor of two (source index ``floor(2 * i)``), with the output size rounded down, as HS3-Bench's
    "about 711 x 944" for 1422 x 1889 says. Cube and labels go through the same rule so they stay aligned.
    """
    rows, cols = halved_size(array.shape[-2], array.shape[-1])
    return array[..., : 2 * rows : 2, : 2 * cols : 2]


def to_sample(
    card: DatasetCard,
    sample_id: str,
    cube: np.ndarray,
    raw_labels: np.ndarray,
    source: str | Path,
    *,
    label_source: str | Path | None = None,
) -> Sample:
    """Remap raw labels, make the cube float32 and check the result against the card.

    Args:
        card: the dataset card.
        sample_id: the sample's name in the official lists.
        cube: ``(C, H, W)`` in card band order, any float dtype.
        raw_labels: ``(H, W)`` raw dataset ids.
        source: the file the cube came from (and the labels, unless ``label_source`` is given).
        label_source: the label file, when it is not ``source``.

    Raises:
        DataError: unknown label ids (naming the label file), wrong band count or size, NaN or infinite values
            (naming the cube file).
    """
    labels = remap_labels(raw_labels, card, source=label_source or source)
    cube = cube if cube.dtype == np.float32 else cube.astype(np.float32)
    where = str(source) if label_source is None else f"{source}, {label_source}"
    return validate_sample(Sample(sample_id, cube, labels), card, source=where)
