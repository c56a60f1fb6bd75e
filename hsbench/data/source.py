"""Raw data sources: how one on-disk distribution layout of a dataset is discovered and read.

A real dataset is registered as a :class:`RealDatasetProvider` with one or more :class:`SourceFormat` objects
(the dataset's own distribution layout, the HS3-Bench HDF5 files, ...). ``hsbench prepare`` reads the raw files
once through a format and writes the prepared cache (``hsbench.data.prepared``); training only ever reads the
prepared cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Dataset, Sample
from hsbench.data.provider import DatasetProvider

__all__ = ["RawSample", "SourceFormat", "RealDatasetProvider"]


@dataclass(frozen=True)
class RawSample:
    """One sample as found in a raw layout.

    Attributes:
        sample_id: the name the official split lists use.
        paths: the files that make up the sample (named in every error about it).
        key: where inside a container file the sample lives (an HDF5 group), if anywhere.
    """

    sample_id: str
    paths: tuple[Path, ...]
    key: str | None = None


class SourceFormat:
    """Reads one raw layout of one dataset.

    ``read`` returns a :class:`Sample` in the harness convention (cube ``(C, H, W)`` float32 in card band order,
    labels ``(H, W)`` int64 remapped to ``0..K-1`` / ``ignore_index``). It raises
    :class:`hsbench.errors.DataError` naming the file and the problem for truncated or corrupt files, missing
    keys and wrong shapes. The caller validates the result against the card (band count, NaN, label range).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        """Every sample present under ``raw_dir`` (nothing is read beyond what listing needs)."""
        raise NotImplementedError

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        raise NotImplementedError


class RealDatasetProvider(DatasetProvider):
    """A dataset read from the prepared cache under the data root.

    Subclasses set ``card`` and ``formats`` (the first one is the default for ``hsbench prepare``).
    """

    formats: ClassVar[dict[str, SourceFormat]] = {}

    @classmethod
    def open(cls, *, data_root: Path | None = None, **options: Any) -> Dataset:
        from hsbench.data.paths import data_root_from
        from hsbench.data.prepared import open_prepared

        return open_prepared(cls, data_root_from(data_root), **options)
