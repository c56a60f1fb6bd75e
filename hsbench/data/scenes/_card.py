"""One constructor for the cards of the single-scene datasets, so every card states the same facts the same way."""

from __future__ import annotations

from collections.abc import Sequence

from hsbench.data.card import DatasetCard
from hsbench.data.labels import IGNORE_INDEX
from hsbench.data.scenes.labels import default_palette, scene_label_map
from hsbench.data.scenes.sensors import nearest_bands

__all__ = ["scene_card"]


def scene_card(
    name: str,
    *,
    wavelengths_nm: Sequence[float],
    class_names: Sequence[str],
    shape: tuple[int, int, int],
    labelled_px: int,
    description: str,
    citation: str,
    licence: str,
    how_to_obtain: str,
    palette: Sequence[tuple[int, int, int]] | None = None,
    raw_label_map: dict[int, int] | None = None,
) -> DatasetCard:
    """A ``scene`` card: one sample, k-shot splits (no official split), ignore index 255.

    Args:
        shape: ``(height, width, bands)`` as the raw files store it.
        labelled_px: labelled pixels in the ground truth (shown by ``hsbench show``).
        raw_label_map: defaults to the scene convention, raw 0 = unlabelled and raw ``1..K`` -> ``0..K-1``.
    """
    height, width, bands = shape
    if len(wavelengths_nm) != bands:
        raise ValueError(f"{name}: {len(wavelengths_nm)} wavelengths for {bands} bands")
    return DatasetCard(
        name=name,
        task="scene",
        wavelengths_nm=tuple(float(w) for w in wavelengths_nm),
        class_names=tuple(class_names),
        palette=tuple(palette) if palette is not None else default_palette(len(class_names)),
        ignore_index=IGNORE_INDEX,
        pseudo_rgb_bands=nearest_bands(wavelengths_nm),
        raw_label_map=raw_label_map if raw_label_map is not None else scene_label_map(len(class_names)),
        sizes=f"1 scene of {height} x {width} px, {bands} bands, {len(class_names)} classes, {labelled_px} labelled px",
        description=description,
        citation=citation,
        licence=licence,
        how_to_obtain=how_to_obtain,
    )
