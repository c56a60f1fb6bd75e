"""The HS3-Bench facts shipped as package data: official split lists, label definitions, band wavelengths.

The files under ``hsbench/resources/hs3bench/`` are verbatim copies of the ones the published HS3-Bench code
reads (``splits/<ds>/{train,val,test}_samples.csv``, ``labeldefs/*.txt``, ``wavelengths/wave_<ds>.csv``), so a
card can be checked against its source by eye. They are read with :mod:`importlib.resources`, which works for
an installed wheel as well as for an editable checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from hsbench.data.card import OfficialSplit

if TYPE_CHECKING:  # importlib.resources.abc is Python 3.11+; only the annotation needs it
    from importlib.resources.abc import Traversable

__all__ = [
    "LabelDefinition",
    "resource_dir",
    "read_wavelengths_nm",
    "read_label_definitions",
    "evaluated_classes",
    "read_official_split",
    "harness_class_name",
]

_PARTS = ("train", "val", "test")
# One known typo in HS3-Bench's HSI-Drive label files ("unpained-metal"); fixed so the name matches the
# dataset paper and ``synthetic_drive``.
_NAME_FIXES = {"unpained_metal": "unpainted_metal"}


@dataclass(frozen=True)
class LabelDefinition:
    """One line of an HS3-Bench label definition file (``id, name, R, G, B``)."""

    id: int
    name: str
    rgb: tuple[int, int, int]


def resource_dir() -> Traversable:
    """The folder holding the HS3-Bench package data."""
    return resources.files("hsbench") / "resources" / "hs3bench"


def _lines(*parts: str) -> list[str]:
    node = resource_dir()
    for part in parts:  # one step at a time: Traversable.joinpath takes several names only from Python 3.11
        node = node / part
    return [line.strip() for line in node.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_wavelengths_nm(dataset: str) -> tuple[float, ...]:
    """Band centres in cube order from ``wavelengths/wave_<dataset>.csv`` (lines ``index wavelength_nm``)."""
    rows = [line.split() for line in _lines("wavelengths", f"wave_{dataset}.csv")]
    indices = [round(float(row[0])) for row in rows]
    if indices != list(range(1, len(rows) + 1)):
        raise ValueError(f"wave_{dataset}.csv: band indices are not 1..{len(rows)} in order")
    return tuple(float(row[1]) for row in rows)


def read_label_definitions(filename: str) -> tuple[LabelDefinition, ...]:
    """Every line of ``labeldefs/<filename>``."""
    definitions = []
    for line in _lines("labeldefs", filename):
        fields = [f.strip() for f in line.split(",")]
        r, g, b = (int(v) for v in fields[2:5])
        definitions.append(LabelDefinition(int(fields[0]), fields[1], (r, g, b)))
    return tuple(definitions)


def harness_class_name(name: str) -> str:
    """A label-file class name as a harness name (``concrete/stone/brick`` -> ``concrete_stone_brick``).

    Class names end up in file names, table headers and config keys, where ``/`` and ``-`` get in the way.
    """
    cleaned = name.strip().lower().replace("/", "_").replace("-", "_").replace(" ", "_")
    return _NAME_FIXES.get(cleaned, cleaned)


def evaluated_classes(
    filename: str, ids: tuple[int, ...]
) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...]]:
    """Class names and palette of the label definition entries ``ids``, in that order (harness ids 0..K-1)."""
    by_id = {d.id: d for d in read_label_definitions(filename)}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"{filename}: no label definition for ids {missing}")
    return tuple(harness_class_name(by_id[i].name) for i in ids), tuple(by_id[i].rgb for i in ids)


def read_official_split(folder: str, *, strip_suffix: str = "") -> OfficialSplit:
    """The split lists under ``splits/<folder>/``; names lose ``strip_suffix`` (the lists name files, e.g. ``.mat``)."""

    def part(name: str) -> tuple[str, ...]:
        return tuple(line.removesuffix(strip_suffix) for line in _lines("splits", folder, f"{name}_samples.csv"))

    train, val, test = (part(p) for p in _PARTS)
    return OfficialSplit(train, val, test)
