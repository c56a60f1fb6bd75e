"""Raw label ids to harness ids, and reading label images, for every real-data reader.

Datasets store their own raw ids (HyKo2 0..10, HCV2 Cityscapes trainIds and 255, scene ground truths 0..K); the
card's ``raw_label_map`` lists *every* id the dataset's label definition knows, including those that are not
evaluated (they map to the ignore index). An id outside that map cannot come from the dataset's annotation, so it
means a corrupt file, a file of another label set or an incomplete map; it is rejected rather than silently
ignored, because ignoring it would quietly drop pixels from training and evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hsbench.data.card import DatasetCard
from hsbench.errors import DataError

__all__ = ["IGNORE_INDEX", "class_counts", "read_label_image", "remap_labels"]

IGNORE_INDEX = 255
"""The harness label of undefined / unlabelled / not-evaluated pixels in the real datasets."""

_SHOWN_IDS = 10
# Single-channel modes an id image may use: 1-bit, 8-bit grey, 8-bit palette indices, 16/32-bit integers.
_ID_IMAGE_MODES = frozenset({"1", "L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N"})


def _as_integer_ids(raw: np.ndarray, source: str | Path) -> np.ndarray:
    """``raw`` as int64 ids; MATLAB files often store ids as doubles, which must then be whole numbers."""
    if raw.ndim != 2:
        raise DataError(f"{source}: labels have shape {raw.shape}, expected (height, width)")
    if raw.dtype.kind in "biu":
        return raw.astype(np.int64, copy=False)
    if raw.dtype.kind != "f":
        raise DataError(f"{source}: label raster of type {raw.dtype}; expected integer class ids")
    if not np.isfinite(raw).all():
        raise DataError(f"{source}: the label raster holds NaN or infinite values")
    ids = raw.astype(np.int64)
    if not np.array_equal(ids, raw):
        raise DataError(f"{source}: the label raster holds non-integer values; expected class ids")
    return ids


def _unknown_ids_error(source: str | Path, unknown: list[tuple[int, int]], card: DatasetCard) -> DataError:
    """The error for raw ids outside the map, with pixel counts (a handful of pixels suggests damage)."""
    shown = ", ".join(f"{v} ({n} px)" for v, n in unknown[:_SHOWN_IDS])
    more = f" and {len(unknown) - _SHOWN_IDS} more" if len(unknown) > _SHOWN_IDS else ""
    known = ", ".join(str(k) for k in sorted(card.raw_label_map or {}))
    return DataError(
        f"{source}: label ids {shown}{more} are not in the label map of {card.name} (known raw ids: {known}); "
        "the file is corrupt or belongs to another label set"
    )


def remap_labels(raw: np.ndarray, card: DatasetCard, *, source: str | Path) -> np.ndarray:
    """Raw dataset ids -> harness ids ``0..K-1`` / ignore index through ``card.raw_label_map``.

    Args:
        raw: ``(H, W)`` raw ids, integer or whole-number floats.
        card: the dataset card; its ``raw_label_map`` must list every raw id the dataset defines.
        source: the file the labels came from, named in errors.

    Returns:
        ``(H, W)`` int64 harness labels.

    Raises:
        DataError: labels not 2-D, not integer ids, or holding ids the map does not know (listed with their pixel
            counts).
    """
    label_map = card.raw_label_map or {}
    ids = _as_integer_ids(np.asarray(raw), source)
    values, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    unknown = [(int(v), int(n)) for v, n in zip(values, counts) if int(v) not in label_map]
    if unknown:
        raise _unknown_ids_error(source, unknown, card)
    lut = np.array([label_map[int(v)] for v in values], dtype=np.int64)
    return lut[inverse].reshape(ids.shape)


def read_label_image(path: Path) -> np.ndarray:
    """The ids of a single-channel label image (PNG, TIFF, ...), as stored (no remap).

    Raises:
        DataError: the file is missing, truncated or not an image, or has colour channels (an RGB rendering of
            the labels instead of the id image).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: label image not found")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            ids = np.array(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:  # PIL's errors for a damaged file
        raise DataError(f"{path}: cannot read the label image ({exc}); the file is truncated or not an image") from None
    if mode not in _ID_IMAGE_MODES:
        raise DataError(
            f"{path}: {mode} image; labels must be class ids in a single-channel (greyscale or palette) image, "
            "not colours"
        )
    return ids


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Labelled pixels per class ``0..num_classes-1`` as int64; any other value (the ignore index) is not counted."""
    flat = np.asarray(labels).ravel()
    flat = flat[(flat >= 0) & (flat < num_classes)]
    return np.bincount(flat.astype(np.int64, copy=False), minlength=num_classes)[:num_classes].astype(np.int64)
