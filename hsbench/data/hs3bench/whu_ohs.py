"""WHU-OHS: large-scale land-cover mapping from Orbita (OHS) satellite tiles, as hyperseg loads it (``whu_ohs``).

Data card
---------
Sensor
    The Orbita hyperspectral satellites (OHS, Zhuhai-1), 32 bands from the visible to the near infrared
    (466-940 nm), 10 m ground sampling. 42 scenes from over 40 places in China, cut into 512 x 512 tiles.
Band centres
    ``wave_whuohs.csv``. Confirmed by an independent OHS band table (the OHID-1 data paper, PMC11822079) for
    b1-b7, b11, b14-b17, b21, b23, b27 and b32 (b10 and b13 are given there as about 606-610 and 654-656 nm),
    and by the dataset page's true-colour bands (670, 566, 480 nm). The other centres follow the same
    alternating 14 / 16 nm steps and are unconfirmed.
Classes
    The 24 land-cover classes of hyperseg's ``whuohs_labeldef.txt`` (ocean ... bare_rock). Raw id 0 (no label)
    becomes the ignore index 255; raw ids 1..24 become harness ids 0..23, as in the authors' loader (label - 1).
    Any other raw id is an error.
Splits
    The distribution's folders: 4822 / 513 / 2460 tiles (dataset page). The names are not published as lists,
    so sample ids are ``<part>/<file stem>`` and the ``official`` split is read back from the prepared ids.
Values
    Stored as integers scaled by 10000 (dataset authors); the reader divides by 10000, as the authors' loader
    and hyperseg do.
Formats
    ``raw``: ``<part>/image/<name>.tif`` (32 bands, pixel-interleaved or planar) with ``<part>/label/<name>.tif``
    (single band), part folders ``train`` / ``val`` / ``test`` (``tr`` / ``ts`` also accepted); ``--raw``
    names the folder holding them (or one level above).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Dataset, Sample
from hsbench.data.hs3bench.arrays import to_sample
from hsbench.data.hs3bench.folder_split import folder_sample_id, part_of_folder, with_folder_split
from hsbench.data.hs3bench.resources import evaluated_classes, read_wavelengths_nm
from hsbench.data.labels import IGNORE_INDEX
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat
from hsbench.data.tiff import read_tiff_cube, read_tiff_labels
from hsbench.errors import DataError
from hsbench.registry import DATASETS

__all__ = ["WhuOhs", "WhuOhsFormat", "WHU_OHS_CARD", "WHU_OHS_RAW_LABEL_MAP", "REFLECTANCE_SCALE", "part_dirs"]

REFLECTANCE_SCALE = 10000.0
WHU_OHS_RAW_LABEL_MAP = {0: IGNORE_INDEX, **{raw: raw - 1 for raw in range(1, 25)}}
_IMAGE, _LABEL = "image", "label"


def part_dirs(raw_dir: Path) -> dict[str, Path]:
    """Split part -> part folder (holding ``image/`` and ``label/``) in ``raw_dir`` or one level below."""
    candidates = [raw_dir, *sorted(p for p in raw_dir.iterdir() if p.is_dir())] if raw_dir.is_dir() else []
    for base in candidates:
        found: dict[str, Path] = {}
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            part = part_of_folder(folder.name)
            if part is not None and (folder / _IMAGE).is_dir():
                if part in found:
                    raise DataError(f"{base}: both {found[part].name}/ and {folder.name}/ hold the {part} tiles")
                found[part] = folder
        if found:
            return found
    raise DataError(
        f"{raw_dir}: no WHU-OHS layout here; expected train/, val/ and test/ (or tr/, ts/) folders, each "
        "holding image/ and label/, in this folder or one level below"
    )


class WhuOhsFormat(SourceFormat):
    """The WHU-OHS distribution: per split folder, ``image/*.tif`` tiles and ``label/*.tif`` of the same name."""

    name: ClassVar[str] = "raw"
    description: ClassVar[str] = (
        "WHU-OHS {train,val,test}/image/<name>.tif (32 bands, integers = reflectance x 10000) and "
        "{train,val,test}/label/<name>.tif (ids 0..24); tr/ and ts/ also accepted"
    )

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        items = []
        for part, folder in part_dirs(raw_dir).items():
            for image in sorted((folder / _IMAGE).glob("*.tif")):
                items.append(RawSample(folder_sample_id(part, image.stem), (image, folder / _LABEL / image.name)))
        if not items:
            raise DataError(f"{raw_dir}: the WHU-OHS split folders hold no image tiles (image/*.tif)")
        return items

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        image_path, label_path = item.paths
        raw_labels = read_tiff_labels(label_path)
        cube = read_tiff_cube(image_path, card.num_bands)
        if not np.issubdtype(cube.dtype, np.number):
            raise DataError(f"{image_path}: image dtype {cube.dtype}, expected numbers (reflectance x 10000)")
        cube = np.ascontiguousarray(cube, dtype=np.float32) / np.float32(REFLECTANCE_SCALE)
        return to_sample(card, item.sample_id, cube, raw_labels, image_path, label_source=label_path)


_CLASSES, _PALETTE = evaluated_classes("whuohs_labeldef.txt", tuple(range(1, 25)))

WHU_OHS_CARD = DatasetCard(
    name="whu_ohs",
    task="segmentation",
    wavelengths_nm=read_wavelengths_nm("whuohs"),
    class_names=_CLASSES,
    palette=_PALETTE,
    ignore_index=IGNORE_INDEX,
    pseudo_rgb_bands=(13, 6, 1),  # the dataset page's true colour: 670, 566, 480 nm
    official_splits={},  # the folders are the split: read back from the prepared ids (folder_split)
    folder_split=True,
    raw_label_map=WHU_OHS_RAW_LABEL_MAP,
    sizes=(
        "split official (the distribution's folders, read from the prepared ids): 7795 (4822 / 513 / 2460) "
        "tiles; 512 x 512 px, 32 bands (466-940 nm); about 262 GB as float32"
    ),
    description=(
        "WHU-OHS: land-cover segmentation of 512 x 512 tiles from 42 Orbita OHS satellite scenes over China, "
        "32 bands (466-940 nm, 10 m), 24 classes; unlabelled pixels are ignored. Some band centres are "
        "unconfirmed (see the docs)."
    ),
    citation=(
        "J. Li, X. Huang, L. Tu: WHU-OHS: A benchmark dataset for large-scale hyperspectral image "
        "classification. International Journal of Applied Earth Observation and Geoinformation 113, 103022 "
        "(2022), doi:10.1016/j.jag.2022.103022. Loader and label definition as in hyperseg (N. Theisen et al., "
        "https://github.com/nickstheisen/hyperseg)."
    ),
    licence=(
        "research data of Wuhan University; use under the terms on http://irsip.whu.edu.cn/resources/"
        "WHU_OHS_show.php (hsbench ships only the label definition and band centres)"
    ),
    how_to_obtain=(
        "download the training, validation and test sets from http://irsip.whu.edu.cn/resources/"
        "WHU_OHS_show.php (or Zenodo record 7258035), unpack them into one folder and run "
        "`hsbench prepare whu_ohs --raw <folder>` with <folder> holding train/, val/ and test/ (or tr/, ts/), "
        "each with image/<name>.tif and label/<name>.tif"
    ),
)


@DATASETS.register_module(name="whu_ohs")
class WhuOhs(RealDatasetProvider):
    """WHU-OHS land-cover segmentation (32 bands, 24 classes), read from the prepared cache.

    Its official split is the distribution's folders, recorded in the sample ids at prepare time.
    """

    card = WHU_OHS_CARD
    formats = {"raw": WhuOhsFormat()}

    @classmethod
    def open(cls, *, data_root: Path | None = None, **options: Any) -> Dataset:
        return with_folder_split(super().open(data_root=data_root, **options))
