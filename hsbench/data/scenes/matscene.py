"""The ``mat`` source format of the classic scenes: one cube file and one ground-truth file, both MATLAB.

Indian Pines, Pavia, Salinas, KSC, Botswana and the Houston 2013 ``.mat`` conversion all share this layout: a cube
``(H, W, C)`` under one key and a label map ``(H, W)`` (0 = unlabelled, 1..K = classes) under another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample, check_finite
from hsbench.data.labels import remap_labels
from hsbench.data.matfile import read_mat_array
from hsbench.data.source import RawSample, SourceFormat
from hsbench.errors import DataError

__all__ = ["MatVariable", "MatSceneFormat", "find_raw_file"]

_SEARCH_DEPTH = 2  # raw_dir itself and two levels of sub-folders (an unpacked archive adds one or two)


@dataclass(frozen=True)
class MatVariable:
    """Where an array lives: a file name (matched case-insensitively under the raw folder) and a variable key."""

    file_name: str
    key: str

    def __str__(self) -> str:
        return f"{self.file_name} (key {self.key!r})"


def find_raw_file(raw_dir: Path, file_name: str) -> Path | None:
    """``raw_dir/file_name``, else the one file of that name (any case) up to two folders below ``raw_dir``.

    Raises:
        DataError: several files match, so which one to read is the user's choice.
    """
    exact = raw_dir / file_name
    if exact.is_file():
        return exact
    wanted = file_name.lower()
    matches: list[Path] = []
    for depth in range(_SEARCH_DEPTH + 1):
        pattern = "/".join(["*"] * (depth + 1))
        matches += [p for p in raw_dir.glob(pattern) if p.name.lower() == wanted and p.is_file()]
    if len(matches) > 1:
        listed = ", ".join(str(p) for p in sorted(matches))
        raise DataError(f"several files named {file_name} under {raw_dir}: {listed}; keep one or point --raw at it")
    return matches[0] if matches else None


class MatSceneFormat(SourceFormat):
    """One scene: cube ``(H, W, C)`` and ground truth ``(H, W)`` in two MATLAB files (v5 or v7.3).

    The expected size is part of the format (not only of the card) so that a wrong or uncorrected download fails
    with both sizes in the message before anything is converted, and so that tests can build a tiny format.

    Args:
        sample_id: the one sample's id (the dataset name).
        cube: file and key of the cube.
        labels: file and key of the ground truth.
        shape: expected ``(height, width, bands)``.
    """

    name = "mat"

    def __init__(self, *, sample_id: str, cube: MatVariable, labels: MatVariable, shape: tuple[int, int, int]):
        self.sample_id = sample_id
        self.cube = cube
        self.labels = labels
        self.shape = shape
        self.description = f"cube {cube} of {shape[0]} x {shape[1]} x {shape[2]}, ground truth {labels}"

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        """The scene when its cube file is present; a cube without its ground truth is an incomplete download."""
        cube_path = find_raw_file(raw_dir, self.cube.file_name)
        if cube_path is None:
            return []
        labels_path = find_raw_file(raw_dir, self.labels.file_name) or find_raw_file(
            cube_path.parent, self.labels.file_name
        )
        if labels_path is None:
            raise DataError(
                f"{cube_path} found, but not its ground truth {self.labels.file_name} under {raw_dir}; "
                f"download it too ({card.how_to_obtain or 'see the dataset card'})"
            )
        return [RawSample(self.sample_id, (cube_path, labels_path))]

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        """Cube to ``(C, H, W)`` float32, labels remapped with the card's raw label map."""
        cube_path, labels_path = item.paths
        raw_cube = read_mat_array(cube_path, self.cube.key, expected_shape=self.shape)
        cube = np.ascontiguousarray(raw_cube.transpose(2, 0, 1), dtype=np.float32)
        del raw_cube
        check_finite(cube, f"{cube_path} (key {self.cube.key!r})")
        return Sample(item.sample_id, cube, self.read_labels(labels_path, card))

    def read_labels(self, labels_path: Path, card: DatasetCard) -> np.ndarray:
        """The ground truth alone, ``(H, W)`` int64 harness ids (useful where only the label map is at hand)."""
        raw = read_mat_array(labels_path, self.labels.key, expected_shape=self.shape[:2])
        return remap_labels(raw, card, source=f"{labels_path} (key {self.labels.key!r})")
