"""The HS3-Bench HDF5 layout shared by HyKo2, HSI-Drive and HCV2.

One file per split part, ``<prefix>_train.h5``, ``<prefix>_val.h5`` and ``<prefix>_test.h5`` (prefix ``hyko2``,
``hsidrive`` or ``hcv2``); every top-level group is one sample (group name = the name in the official lists)
with ``image`` ``(H, W, C)`` float32 / float16 and ``labels`` ``(H, W)`` raw dataset ids. An optional top-level
``metadata`` group (global min / max per band) describes the file, not a sample, and is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import h5py
import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample
from hsbench.data.hs3bench.arrays import halve_nearest, to_sample
from hsbench.data.source import RawSample, SourceFormat
from hsbench.errors import DataError

__all__ = ["Hs3BenchH5Format", "H5_PARTS"]

H5_PARTS = ("train", "val", "test")
_METADATA = "metadata"


class Hs3BenchH5Format(SourceFormat):
    """Reads the HS3-Bench HDF5 files of one dataset.

    Args:
        prefix: file name prefix (``hyko2``, ``hsidrive``, ``hcv2``).
        id_suffix: removed from group names to get sample ids (``.mat`` for HyKo2, ``.hsd`` for HCV2: the groups
            are named after the raw files, the harness names samples by file stem).
        halve_size: ``(H, W)`` of images that are stored at raw resolution and must be halved exactly like the
            raw reader does (HCV2: 1422 x 1889); images of any other size are taken as they are. This keeps the
            samples identical whether a user converts the raw files or the HDF5 files.
    """

    name: ClassVar[str] = "hs3bench_h5"
    description: ClassVar[str] = (
        "HS3-Bench HDF5 files <ds>_{train,val,test}.h5, one group per sample holding image (H, W, C) and raw "
        "labels (H, W)"
    )

    def __init__(self, prefix: str, *, id_suffix: str = "", halve_size: tuple[int, int] | None = None) -> None:
        self.prefix = prefix
        self.id_suffix = id_suffix
        self.halve_size = halve_size

    def files(self, raw_dir: Path) -> list[Path]:
        """The split files this format looks for, present or not."""
        return [raw_dir / f"{self.prefix}_{part}.h5" for part in H5_PARTS]

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        present = [p for p in self.files(raw_dir) if p.is_file()]
        if not present:
            names = ", ".join(p.name for p in self.files(raw_dir))
            raise DataError(f"{raw_dir}: none of the HS3-Bench HDF5 files {names} is there")
        found: dict[str, RawSample] = {}
        for path in present:
            for key in _sample_groups(path):
                sample_id = key.removesuffix(self.id_suffix)
                if sample_id in found:
                    raise DataError(f"{path}: sample {sample_id!r} is also in {found[sample_id].paths[0]}")
                found[sample_id] = RawSample(sample_id, (path,), key=key)
        return list(found.values())

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        path, key = item.paths[0], item.key or item.sample_id
        where = f"{path} [{key}]"
        image, raw_labels = _read_group(path, key)
        if image.ndim != 3 or image.shape[-1] != card.num_bands:
            raise DataError(f"{where}: image has shape {image.shape}, expected (height, width, {card.num_bands})")
        if not np.issubdtype(image.dtype, np.floating):
            raise DataError(f"{where}: image dtype {image.dtype}, expected float32 or float16")
        cube = image.transpose(2, 0, 1)
        if self.halve_size is not None and cube.shape[1:] == tuple(self.halve_size):
            cube, raw_labels = halve_nearest(cube), halve_nearest(raw_labels)
        cube = np.ascontiguousarray(cube, dtype=np.float32)
        return to_sample(card, item.sample_id, cube, raw_labels, where)


def _sample_groups(path: Path) -> list[str]:
    try:
        with h5py.File(path, "r") as f:
            return [k for k in f if k != _METADATA and isinstance(f[k], h5py.Group)]
    except OSError as exc:
        raise DataError(f"{path}: cannot open the HDF5 file ({exc}); it is truncated or corrupt") from None


def _read_group(path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """``image`` and ``labels`` of group ``key``, as stored."""
    try:
        with h5py.File(path, "r") as f:
            group = f.get(key)
            if not isinstance(group, h5py.Group):
                raise DataError(f"{path}: no sample group {key!r}")
            missing = [n for n in ("image", "labels") if not isinstance(group.get(n), h5py.Dataset)]
            if missing:
                raise DataError(
                    f"{path} [{key}]: no dataset {', '.join(repr(m) for m in missing)} in the sample group "
                    f"(it holds {', '.join(repr(k) for k in group) or 'nothing'})"
                )
            return group["image"][()], group["labels"][()]
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"{path} [{key}]: cannot read the sample ({exc}); the file is truncated or corrupt") from None
