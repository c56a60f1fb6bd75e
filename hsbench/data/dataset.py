"""Samples and datasets: the one data convention every strategy and metric sees."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.errors import DataError

__all__ = ["Sample", "Dataset", "check_finite", "validate_sample", "array_digest"]


@dataclass(frozen=True)
class Sample:
    """One image.

    Attributes:
        id: sample name, unique within its dataset.
        cube: ``(C, H, W)`` float32, bands in card (cube) order; may be a read-only memory map.
        labels: ``(H, W)`` int64 harness ids ``0..K-1``, or the card's ``ignore_index``.
    """

    id: str
    cube: np.ndarray
    labels: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.labels.shape[0]), int(self.labels.shape[1])


def check_finite(cube: np.ndarray, source: str) -> None:
    """Raise a :class:`DataError` naming ``source`` when ``cube`` holds NaN or infinite values.

    One check for every place that meets a cube: readers call it right after reading, so the error names the
    raw file (and variable), and :func:`validate_sample` runs it on every sample it checks.
    """
    finite = np.isfinite(cube)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise DataError(
            f"{source}: the cube holds {bad} NaN or infinite values; clean or mask them (fill with a valid value) "
            "before use"
        )


def validate_sample(sample: Sample, card: DatasetCard, source: str = "") -> Sample:
    """Check a sample against its card; raise :class:`DataError` naming the source and the problem."""
    where = f"{card.name}/{sample.id}" + (f" ({source})" if source else "")
    cube, labels = sample.cube, sample.labels
    if cube.ndim != 3:
        raise DataError(f"{where}: cube has shape {cube.shape}, expected (bands, height, width)")
    if cube.shape[0] != card.num_bands:
        raise DataError(f"{where}: cube has {cube.shape[0]} bands, the card expects {card.num_bands}")
    if labels.shape != cube.shape[1:]:
        raise DataError(f"{where}: labels {labels.shape} do not match cube size {cube.shape[1:]}")
    if cube.dtype != np.float32:
        raise DataError(f"{where}: cube dtype {cube.dtype}, expected float32")
    if labels.dtype != np.int64:
        raise DataError(f"{where}: labels dtype {labels.dtype}, expected int64")
    check_finite(cube, where)
    valid = labels != card.ignore_index
    if valid.any():
        lo, hi = int(labels[valid].min()), int(labels[valid].max())
        if lo < 0 or hi >= card.num_classes:
            raise DataError(
                f"{where}: label ids {lo}..{hi} fall outside 0..{card.num_classes - 1} "
                f"(ignore index {card.ignore_index}); check the label map"
            )
    return sample


class Dataset:
    """A card, an ordered list of sample ids and a loader.

    Args:
        card: the dataset card.
        sample_ids: every sample of the dataset, in a stable order.
        loader: ``loader(sample_id) -> Sample``; called lazily, never for the whole dataset at once by the harness.
        fingerprint: a content hash of the bytes the loader returns (recorded with every run).
        prevalidated: the loader's samples were validated when they were written (the prepared cache checks
            every sample and stores its hash), so ``load`` skips the full-cube NaN scan that would otherwise read
            every byte of a memory-mapped cube on each access.
    """

    def __init__(
        self,
        card: DatasetCard,
        sample_ids: Sequence[str],
        loader: Callable[[str], Sample],
        *,
        fingerprint: str,
        prevalidated: bool = False,
    ) -> None:
        self.sample_ids: tuple[str, ...] = tuple(sample_ids)
        self._index = frozenset(self.sample_ids)
        if len(self._index) != len(self.sample_ids):
            raise ValueError(f"{card.name}: duplicate sample ids")
        self.card = card
        self._loader = loader
        self.fingerprint = fingerprint
        self.prevalidated = prevalidated

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __iter__(self) -> Iterator[Sample]:
        return (self.load(i) for i in self.sample_ids)

    def __repr__(self) -> str:
        return f"Dataset({self.card.name!r}, {len(self)} samples)"

    def load(self, sample_id: str) -> Sample:
        """Load one sample, checked against the card."""
        if sample_id not in self._index:
            raise DataError(f"{self.card.name}: no sample named {sample_id!r}")
        sample = self._loader(sample_id)
        return sample if self.prevalidated else validate_sample(sample, self.card)


def array_digest(*arrays: np.ndarray) -> str:
    """SHA-256 over arrays' dtype, shape and bytes (stable across runs and machines of one endianness)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()
