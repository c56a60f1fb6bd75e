"""Dataset providers: the entries of the ``DATASETS`` registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Dataset

__all__ = ["DatasetProvider"]


class DatasetProvider:
    """A registered dataset: its card is known without reading any data; ``open`` builds the dataset.

    Subclasses set ``card`` and implement ``open``. Real-data providers read from ``data_root`` and raise a
    :class:`hsbench.errors.DataError` that says what to download and which ``hsbench prepare`` command to run
    when the data is not there.
    """

    card: ClassVar[DatasetCard]

    @classmethod
    def open(cls, *, data_root: Path | None = None, **options: Any) -> Dataset:
        raise NotImplementedError
