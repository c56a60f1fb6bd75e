"""Images to predict: files a user brings, or samples of a registered dataset's split.

Every input is checked against the training card with :func:`hsbench.saved_model.check_input_bands` before
anything is predicted (band count, and band centres when the file says them). Cubes are opened lazily (memory
maps, HDF5 windows), so :func:`hsbench.predict.tiles.predict_tiled` reads one window at a time.

File types, by suffix:

* ``.hdr`` (or the data file beside it): ENVI, BSQ / BIL / BIP, any data type; band centres from the header's
  ``wavelength`` field when present; divided by the ``reflectance scale factor`` when present.
* ``.h5`` / ``.hdf5``: the HS3-Bench layout (``shared/hs3bench/FORMATS.md``): every top-level group but
  ``metadata`` is one image, its ``image`` dataset ``(H, W, C)`` float; ``labels`` are not needed.
* ``.npy``: one float cube in **(bands, height, width)** order, the harness's own axis order (an ``(H, W, C)``
  array is refused, not guessed at: a square image with as many bands as rows would be ambiguous).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.errors import DataError
from hsbench.saved_model import check_input_bands

__all__ = ["InputImage", "dataset_inputs", "file_inputs", "FILE_TYPES"]

FILE_TYPES = ".hdr (ENVI), .h5 / .hdf5 (HS3-Bench layout), .npy (bands, height, width)"
_H5_SUFFIXES = {".h5", ".hdf5"}
_METADATA = "metadata"  # the HS3-Bench files' per-band min / max group, not an image


@dataclass(frozen=True)
class InputImage:
    """One image to predict.

    Attributes:
        id: its name (file stem, HDF5 group or sample id); output files are named after it.
        source: where it comes from, for messages.
        open: returns the cube, ``(C, H, W)`` and sliceable like an array, read lazily where the format allows.
        scale: the cube's values are divided by it (ENVI ``reflectance scale factor``).
    """

    id: str
    source: str
    open: Callable[[], Any]
    scale: float = 1.0


def file_inputs(path: Path, card: DatasetCard) -> list[InputImage]:
    """The images of one file (:data:`FILE_TYPES`), each checked against the training card ``card``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return [_npy_input(path, card)]
    if suffix in _H5_SUFFIXES:
        return _h5_inputs(path, card)
    header = path if suffix == ".hdr" else _envi_header_beside(path)
    if header is not None:
        return [_envi_input(header, card)]
    if not path.exists():
        raise DataError(f"{path}: no such file")
    raise DataError(f"{path}: cannot tell its format from the name; hsbench predict reads {FILE_TYPES}")


# ------------------------------------------------------------------------------------------------------------ ENVI
def _envi_header_beside(path: Path) -> Path | None:
    """The header of an ENVI data file (``x.img`` -> ``x.hdr`` or ``x.img.hdr``), when there is one."""
    for candidate in (path.with_suffix(".hdr"), path.with_name(path.name + ".hdr")):
        if candidate.is_file() and path.is_file():
            return candidate
    return None


def _envi_input(header_path: Path, card: DatasetCard) -> InputImage:
    from hsbench.data.scenes.envi import open_envi_cube, read_envi_header

    header = read_envi_header(header_path)
    check_input_bands(card, header.shape[0], header.wavelengths_nm, what=str(header_path))
    _, scale = open_envi_cube(header_path)  # checks the data file's size now, before any prediction
    return InputImage(header_path.stem, str(header_path), lambda: open_envi_cube(header_path)[0], scale)


# ------------------------------------------------------------------------------------------------------------- npy
def _npy_input(path: Path, card: DatasetCard) -> InputImage:
    cube = _load_npy(path)
    order = "hsbench predict reads a .npy cube as (bands, height, width)"
    if cube.ndim != 3:
        raise DataError(f"{path}: array has shape {cube.shape}; {order}")
    if cube.shape[0] != card.num_bands and cube.shape[-1] == card.num_bands:
        raise DataError(f"{path}: array has shape {cube.shape}, which looks like (height, width, bands); {order}: "
                        "save np.transpose(cube, (2, 0, 1))")
    check_input_bands(card, int(cube.shape[0]), what=str(path))
    if not np.issubdtype(cube.dtype, np.floating):
        raise DataError(f"{path}: array dtype {cube.dtype}; give a float cube (reflectance or radiance as the model "
                        "was trained on)")
    return InputImage(path.stem, str(path), partial(_load_npy, path))


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None


# ------------------------------------------------------------------------------------------------------------ HDF5
class H5Image:
    """An HS3-Bench ``image`` dataset ``(H, W, C)`` seen as a ``(C, H, W)`` array that reads only the windows
    sliced from it (the file is opened per read, so nothing stays open between tiles)."""

    ndim = 3

    def __init__(self, path: Path, key: str, shape_hwc: tuple[int, int, int], dtype: np.dtype) -> None:
        self.path, self.key, self.dtype = path, key, dtype
        self.shape = (shape_hwc[2], shape_hwc[0], shape_hwc[1])

    def __getitem__(self, index: Any) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        bands, rows, cols = (*index, *(slice(None),) * (3 - len(index)))
        with h5py.File(self.path, "r") as f:
            window = f[self.key]["image"][rows, cols, :]
        return np.moveaxis(window, -1, 0)[bands]


def _h5_inputs(path: Path, card: DatasetCard) -> list[InputImage]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    images = []
    try:
        with h5py.File(path, "r") as f:
            for key in f:
                if key == _METADATA or not isinstance(f[key], h5py.Group):
                    continue
                image = f[key].get("image")
                where = f"{path} [{key}]"
                if not isinstance(image, h5py.Dataset):
                    raise DataError(f"{where}: no 'image' dataset in the group (HS3-Bench layout: image (H, W, C))")
                _check_h5_image(image, card, where)
                images.append(InputImage(key, where, partial(H5Image, path, key, image.shape, image.dtype)))
    except OSError as exc:
        raise DataError(f"{path}: cannot open the HDF5 file ({exc}); it is truncated or corrupt") from None
    if not images:
        raise DataError(f"{path}: no image group in the file (HS3-Bench layout: one group per image, holding "
                        "'image' (H, W, C))")
    return images


def _check_h5_image(image: h5py.Dataset, card: DatasetCard, where: str) -> None:
    if image.ndim != 3:
        raise DataError(f"{where}: image has shape {image.shape}, expected (height, width, bands)")
    if image.shape[-1] != card.num_bands and image.shape[0] == card.num_bands:
        raise DataError(f"{where}: image has shape {image.shape}, which looks like (bands, height, width); the "
                        "HS3-Bench layout stores (height, width, bands)")
    check_input_bands(card, int(image.shape[-1]), what=where)
    if not np.issubdtype(image.dtype, np.floating):
        raise DataError(f"{where}: image dtype {image.dtype}, expected float32 or float16")


# --------------------------------------------------------------------------------------------------------- dataset
def dataset_inputs(
    name: str, card: DatasetCard, *, split: str, part: str, seed: int, data_root: Path | None = None
) -> list[InputImage]:
    """The ``part`` images of a registered dataset's split, drawn as a run draws it (same seed, same guard band).

    Args:
        name: dataset spec (``NAME[:key=value,...]``).
        card: the training card the dataset's bands must match.
        split, part, seed: which images (``part``: train, val or test).
    """
    from hsbench.data.dataset_spec import open_dataset
    from hsbench.splits import make_split
    from hsbench.strategy import default_guard

    dataset = open_dataset(name, data_root)
    check_input_bands(card, dataset.card.num_bands, dataset.card.wavelengths_nm, what=f"dataset {name}")
    chosen = make_split(dataset, split, seed, guard=default_guard()).parts[part]
    return [InputImage(i, f"{name}/{i}", partial(_sample_cube, dataset, i))
            for i in dataset.sample_ids if i in chosen]


def _sample_cube(dataset: Any, sample_id: str) -> np.ndarray:
    return dataset.load(sample_id).cube
