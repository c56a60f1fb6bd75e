"""Label prediction of large images tile by tile, in bounded memory.

A strategy's ``predict`` takes a whole :class:`~hsbench.data.dataset.Sample`; an image larger than a tile is cut
into cores of ``tile x tile`` pixels, each predicted inside a window that adds ``margin`` pixels on every side
(clipped at the image border), and only the cores are kept. With ``margin`` at least the model's receptive
radius a pixel sees exactly what it would see in the whole image, so for a translation-equivariant model (per-pixel
classifiers, convolutions with zero padding) the stitched labels equal an untiled prediction; ``align`` keeps every
window's origin on a multiple of the networks' total stride, so pooling grids fall on the same pixels as in the
whole image. Networks that upsample with ``align_corners=True`` (the HS3-Bench U-Nets) are not exactly
translation-equivariant: their upsampling grid depends on the input size, so their tiled labels can differ from
whole-image ones; ``hsbench predict``'s default tile keeps ordinary images whole for that reason.

Unlike :func:`hsbench.tiling.predict_tiled` (a network's logits blended over tiles, inside a strategy), this
works on any strategy's labels from the outside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hsbench.data.dataset import Sample

__all__ = ["TileWindow", "tile_windows", "predict_tiled"]


@dataclass(frozen=True)
class TileWindow:
    """One tile: the window a prediction reads and the core it keeps, both in image coordinates.

    Attributes:
        rows, cols: the window (core plus margin, clipped to the image).
        core_rows, core_cols: the core, inside the window.
    """

    rows: slice
    cols: slice
    core_rows: slice
    core_cols: slice

    def core_in_window(self) -> tuple[slice, slice]:
        """The core as slices of the window's prediction."""
        top, left = self.core_rows.start - self.rows.start, self.core_cols.start - self.cols.start
        return (slice(top, top + self.core_rows.stop - self.core_rows.start),
                slice(left, left + self.core_cols.stop - self.core_cols.start))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _spans(length: int, tile: int, margin: int) -> list[tuple[slice, slice]]:
    """(window, core) per tile along one axis."""
    spans = []
    for start in range(0, length, tile):
        stop = min(start + tile, length)
        spans.append((slice(max(0, start - margin), min(length, stop + margin)), slice(start, stop)))
    return spans


def tile_windows(height: int, width: int, tile: int, margin: int, *, align: int = 1) -> list[TileWindow]:
    """Windows covering an ``height x width`` image, row by row; one window (the whole image) when it fits a tile.

    Args:
        tile: core side; rounded up to a multiple of ``align``.
        margin: pixels of context added on each side of a core; rounded up to a multiple of ``align``.
        align: every window and core starts on a multiple of it.
    """
    if tile < 1 or margin < 0 or align < 1:
        raise ValueError(f"tile >= 1, margin >= 0 and align >= 1 needed, got {tile}, {margin}, {align}")
    tile, margin = _round_up(tile, align), _round_up(margin, align)
    return [TileWindow(rows, cols, core_rows, core_cols)
            for rows, core_rows in _spans(height, tile, margin)
            for cols, core_cols in _spans(width, tile, margin)]


def predict_tiled(
    predict: Callable[[Sample], np.ndarray],
    sample: Sample,
    tile: int,
    margin: int,
    *,
    align: int = 1,
    on_tile: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``(H, W)`` int64 labels of ``sample``, predicted window by window (:func:`tile_windows`) and stitched.

    Args:
        predict: labels ``(h, w)`` of a sample ``(C, h, w)`` (a strategy's ``predict``).
        sample: the image; its cube may be anything sliced like a ``(C, H, W)`` array (a memory map, a lazy
            reader), and only one window of it is read at a time, as float32.
        tile, margin, align: see :func:`tile_windows`.
        on_tile: called as ``on_tile(done, total)`` after each window (progress bars).

    A window of a tiled image is a sample of its own id, ``<id>@<top>,<left>``, so that nothing a strategy keys
    by sample id (a feature cache) mistakes it for the whole image.
    """
    height, width = (int(n) for n in sample.cube.shape[-2:])
    windows = tile_windows(height, width, tile, margin, align=align)
    labels = np.empty((height, width), dtype=np.int64)
    for done, window in enumerate(windows, start=1):
        cube = np.ascontiguousarray(sample.cube[:, window.rows, window.cols], dtype=np.float32)
        part_id = sample.id if len(windows) == 1 else f"{sample.id}@{window.rows.start},{window.cols.start}"
        part = Sample(part_id, cube, sample.labels[window.rows, window.cols])
        prediction = np.asarray(predict(part))
        if prediction.shape != cube.shape[1:]:
            raise RuntimeError(f"prediction of {sample.id} (rows {window.rows.start}-{window.rows.stop}, columns "
                               f"{window.cols.start}-{window.cols.stop}) has shape {prediction.shape}, expected "
                               f"{cube.shape[1:]}")
        labels[window.core_rows, window.core_cols] = prediction[window.core_in_window()]
        if on_tile is not None:
            on_tile(done, len(windows))
    return labels
