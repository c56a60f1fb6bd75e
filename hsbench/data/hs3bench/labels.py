"""Raw label images and the remap from raw dataset ids to harness ids.

Every HS3-Bench dataset stores raw ids (HyKo2 0..10, HSI-Drive 0..10, HCV2 Cityscapes trainIds and 255). The
card's ``raw_label_map`` lists *every* id the dataset's label definition knows, including those that are not
evaluated (they map to the ignore index). An id outside that list cannot come from the dataset's annotation
tool, so it means a corrupt file or a file from another label set; it is rejected rather than silently ignored,
because ignoring it would quietly drop pixels from training and evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hsbench.data.card import DatasetCard
from hsbench.errors import DataError

__all__ = ["IGNORE_INDEX", "remap_labels", "read_label_png"]

IGNORE_INDEX = 255
"""The harness label of undefined / unlabelled / not-evaluated pixels in all HS3-Bench datasets."""

_SHOWN_IDS = 10
# Single-channel modes a label PNG may use: 8-bit grey, 8-bit palette indices, 16/32-bit integers.
_ID_MODES = frozenset({"L", "P", "I;16", "I;16B", "I;16L", "I"})


def _integer_values(raw: np.ndarray, source: str) -> np.ndarray:
    """``raw`` as integers; MATLAB files often store ids as doubles, which must then be whole numbers."""
    if np.issubdtype(raw.dtype, np.integer) or raw.dtype == np.bool_:
        return raw
    if not np.issubdtype(raw.dtype, np.floating):
        raise DataError(f"{source}: labels have dtype {raw.dtype}; expected integer label ids")
    if not np.isfinite(raw).all() or (raw != np.round(raw)).any():
        raise DataError(f"{source}: labels hold non-integer values (NaN, infinite or fractional); expected ids")
    return raw.astype(np.int64)


def remap_labels(raw: np.ndarray, card: DatasetCard, source: str | Path) -> np.ndarray:
    """Map raw ids to harness ids ``0..K-1`` / ``card.ignore_index`` with the card's ``raw_label_map``.

    Args:
        raw: ``(H, W)`` raw label ids.
        card: the dataset card; its ``raw_label_map`` must list every defined raw id.
        source: the file the labels came from (named in errors).

    Returns:
        ``(H, W)`` int64 harness labels.

    Raises:
        DataError: the labels are not 2-D integer ids, or hold ids the dataset's label definition lacks.
    """
    table = card.raw_label_map or {}
    raw = np.asarray(raw)
    if raw.ndim != 2:
        raise DataError(f"{source}: labels have shape {raw.shape}, expected (height, width)")
    values, inverse = np.unique(_integer_values(raw, str(source)), return_inverse=True)
    unknown = [int(v) for v in values if int(v) not in table]
    if unknown:
        shown = ", ".join(map(str, unknown[:_SHOWN_IDS])) + (" ..." if len(unknown) > _SHOWN_IDS else "")
        raise DataError(
            f"{source}: raw label ids {shown} are not in the {card.name} label definition (known ids "
            f"{', '.join(map(str, sorted(table)))}); the file is corrupt or belongs to another label set"
        )
    lookup = np.array([table[int(v)] for v in values], dtype=np.int64)
    return lookup[inverse].reshape(raw.shape)


def read_label_png(path: Path) -> np.ndarray:
    """The ids of a single-channel label PNG, as stored (no remap).

    Raises:
        DataError: the file is missing, truncated or not an image, or has colour channels (an RGB rendering of
            the labels instead of the id image).
    """
    if not path.is_file():
        raise DataError(f"{path}: label image not found")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            ids = np.array(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read the label image ({exc}); the file is truncated or not a PNG") from None
    if mode not in _ID_MODES:
        raise DataError(
            f"{path}: label image has mode {mode!r}; expected a single-channel id image (8-bit grey or palette)"
        )
    return ids
