"""One constructor for the cards of the HS3-Bench datasets, so every card states the shared facts the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hsbench.data.card import DatasetCard, OfficialSplit
from hsbench.data.hs3bench.resources import evaluated_classes
from hsbench.data.labels import IGNORE_INDEX

__all__ = ["HS3BENCH_CITATION", "hs3bench_card", "split_sizes"]

HS3BENCH_CITATION = (
    "N. Theisen, R. Bartsch, D. Paulus, P. Neubert: HS3-Bench: A Benchmark and Strong Baseline for Hyperspectral "
    "Semantic Segmentation in Driving Scenarios. IROS 2024 (arXiv:2409.11205)"
)
"""The benchmark whose protocol (splits, classes, remaps) all three datasets follow."""


def split_sizes(splits: Mapping[str, OfficialSplit]) -> str:
    """``split <name>: <total> (<train> / <val> / <test>) images`` for each split, as the cards state them."""
    parts = []
    for name, split in splits.items():
        train, val, test = len(split.train), len(split.val), len(split.test)
        parts.append(f"split {name}: {train + val + test} ({train} / {val} / {test}) images")
    return ", ".join(parts)


def hs3bench_card(
    name: str,
    *,
    h5_prefix: str,
    wavelengths_nm: Sequence[float],
    labeldef: str,
    class_ids: Sequence[int],
    pseudo_rgb_bands: tuple[int, int, int],
    official_splits: dict[str, OfficialSplit],
    raw_label_map: dict[int, int],
    sizes: str,
    description: str,
    citation: str,
    licence: str,
    how_to_obtain: str,
) -> DatasetCard:
    """A ``segmentation`` card with the HS3-Bench classes, ignore index 255 and the facts all three cards share.

    Args:
        name: registry name.
        h5_prefix: HS3-Bench's name in its HDF5 files (``hsidrive`` for ``hsi_drive``).
        labeldef: the HS3-Bench label definition file the class names and palette come from.
        class_ids: the evaluated label-definition ids, in harness order (harness ids ``0..K-1``).
        sizes: image size, bands and storage; the split sizes are put in front.
        citation: the dataset's own paper; the HS3-Bench protocol is appended.
        licence: the data's terms; that hsbench ships only split lists and label definitions is appended.
        how_to_obtain: the raw download and ``hsbench prepare`` step; the HS3-Bench HDF5 alternative is appended.
    """
    class_names, palette = evaluated_classes(labeldef, tuple(class_ids))
    return DatasetCard(
        name=name,
        task="segmentation",
        wavelengths_nm=tuple(float(w) for w in wavelengths_nm),
        class_names=class_names,
        palette=palette,
        ignore_index=IGNORE_INDEX,
        pseudo_rgb_bands=pseudo_rgb_bands,
        official_splits=official_splits,
        raw_label_map=raw_label_map,
        sizes=f"{split_sizes(official_splits)}; {sizes}",
        description=description,
        citation=f"{citation} Benchmark protocol: {HS3BENCH_CITATION}.",
        licence=f"{licence} (hsbench ships only the split lists and label definitions)",
        how_to_obtain=(
            f"{how_to_obtain}. Or point --raw at a folder with HS3-Bench's {h5_prefix}_{{train,val,test}}.h5 and "
            "add --format hs3bench_h5"
        ),
    )
