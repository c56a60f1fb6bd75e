"""Official splits given by the distribution's folders rather than by published lists (WHU-OHS).

Some datasets publish their split only as ``train/``, ``val/`` and ``test/`` folders, so the card cannot list the
sample names ahead of time. Such a reader names each sample ``<part>/<stem>``; the split is then read back from
the prepared sample ids, which keeps it exact without hsbench shipping (or guessing) the file names.
"""

from __future__ import annotations

import dataclasses

from hsbench.data.card import OfficialSplit
from hsbench.data.dataset import Dataset
from hsbench.errors import DataError

__all__ = ["PART_FOLDERS", "part_of_folder", "folder_sample_id", "split_from_ids", "with_folder_split"]

PART_FOLDERS: dict[str, str] = {
    "train": "train", "tr": "train", "training": "train",
    "val": "val", "validation": "val",
    "test": "test", "ts": "test", "testing": "test",
}
"""Folder name (lower case) -> split part, covering the spellings distributions use."""


def part_of_folder(name: str) -> str | None:
    """The split part a folder name stands for, or None."""
    return PART_FOLDERS.get(name.lower())


def folder_sample_id(part: str, stem: str) -> str:
    """The sample id that records its part: ``train/<stem>``."""
    return f"{part}/{stem}"


def split_from_ids(sample_ids: tuple[str, ...] | list[str]) -> OfficialSplit:
    """The split recorded in ``<part>/<stem>`` sample ids.

    Raises:
        DataError: an id without a known part prefix (a cache prepared by another reader).
    """
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for sample_id in sample_ids:
        part = sample_id.split("/", 1)[0]
        if part not in parts or "/" not in sample_id:
            raise DataError(f"sample id {sample_id!r} does not start with train/, val/ or test/; prepare it again")
        parts[part].append(sample_id)
    return OfficialSplit(tuple(parts["train"]), tuple(parts["val"]), tuple(parts["test"]))


def with_folder_split(dataset: Dataset, split_name: str = "official") -> Dataset:
    """``dataset`` with its card's official split taken from its sample ids (the prepared data is unchanged)."""
    split = split_from_ids(dataset.sample_ids)
    dataset.card = dataclasses.replace(dataset.card, official_splits={split_name: split})
    return dataset
