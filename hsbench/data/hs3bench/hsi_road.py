"""HSI-Road, near-infrared collection, as hyperseg loads it (``hsi_road``).

Data card
---------
Sensor
    A 5x5 snapshot-mosaic near-infrared camera, 25 bands, 600-960 nm (the dataset README). The distribution
    stores demosaicked, spectrally corrected cubes (``nir_correction.txt`` already applied), centre-cropped to
    192 x 384 px and rescaled per image to uint8 0..255. Recorded from a car on asphalt, cement, dirt and sand
    roads in urban and rural scenes.
Band centres
    Not published with the data: neither the README, the loaders nor the correction files list them. The card
    spaces the 25 bands evenly over the stated 600-960 nm (15 nm steps) in cube order. This is an assumption,
    not a measured fact; wavelength-aware strategies see approximate band positions on this dataset.
Classes
    ``not_road`` (0) and ``road`` (1), from hyperseg's ``hsi-road_labeldef.txt``; masks hold these ids directly.
    No pixel is unlabelled (ignore index 255 never occurs). Any other mask value is an error.
Splits
    The authors' ``train.txt`` (1848 images) and ``valid.txt`` (1241 images; split ``official``). The authors
    and hyperseg evaluate on ``valid.txt`` and also select models on it; hsbench keeps it as the test part and
    leaves the official val part empty rather than put one image in two parts.
Values
    uint8 / 255, as the authors' and hyperseg's loaders do, so cubes are in 0..1.
Formats
    ``raw``: ``hsi_road/images/<id>_nir.tif`` (uint8, 25 x H x W) with ``hsi_road/masks/<id>_nir.tif`` (uint8,
    H x W); ``--raw`` may name ``hsi_road/`` or the folder holding it. The ``rgb`` and ``vis`` collections of
    the same folders are not read (hyperseg uses ``nir``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample
from hsbench.data.hs3bench.arrays import to_sample
from hsbench.data.hs3bench.files import layout_dir
from hsbench.data.hs3bench.resources import evaluated_classes, read_official_split
from hsbench.data.labels import IGNORE_INDEX
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat
from hsbench.data.tiff import read_tiff_cube, read_tiff_labels
from hsbench.errors import DataError
from hsbench.registry import DATASETS

__all__ = ["HsiRoad", "HsiRoadFormat", "HSI_ROAD_CARD", "COLLECTION", "hsi_road_dir"]

COLLECTION = "nir"
_SUFFIX = f"_{COLLECTION}.tif"
_NUM_BANDS = 25
_FIRST_NM, _LAST_NM = 600.0, 960.0
_UINT8_SCALE = 255.0


def hsi_road_dir(raw_dir: Path) -> Path:
    """The folder holding ``images/`` and ``masks/``: ``raw_dir/hsi_road`` or ``raw_dir`` itself."""
    return layout_dir(raw_dir, "hsi_road", ("images", "masks"), dataset="HSI-Road")


class HsiRoadFormat(SourceFormat):
    """The HSI-Road distribution: one NIR cube and one mask TIFF per scene, named by serial number."""

    name: ClassVar[str] = "raw"
    description: ClassVar[str] = (
        f"HSI-Road hsi_road/images/<id>{_SUFFIX} (uint8, {_NUM_BANDS} x H x W) and hsi_road/masks/<id>{_SUFFIX} "
        "(uint8 ids 0/1); --raw may name hsi_road/ or the folder holding it"
    )

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        base = hsi_road_dir(raw_dir)
        images = sorted((base / "images").glob(f"*{_SUFFIX}"))
        if not images:
            raise DataError(f"{base / 'images'}: no near-infrared cubes (*{_SUFFIX})")
        return [
            RawSample(p.name.removesuffix(_SUFFIX), (p, base / "masks" / p.name)) for p in images
        ]

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        image_path, mask_path = item.paths
        raw_labels = read_tiff_labels(mask_path)
        cube = read_tiff_cube(image_path, card.num_bands)
        if cube.dtype != np.uint8:
            raise DataError(f"{image_path}: image dtype {cube.dtype}, expected uint8 (0..255)")
        cube = np.ascontiguousarray(cube, dtype=np.float32) / np.float32(_UINT8_SCALE)
        return to_sample(card, item.sample_id, cube, raw_labels, image_path, label_source=mask_path)


HSI_ROAD_CLASSES, HSI_ROAD_PALETTE = evaluated_classes("hsi-road_labeldef.txt", (0, 1))
_OFFICIAL = read_official_split("hsiroad")

HSI_ROAD_CARD = DatasetCard(
    name="hsi_road",
    task="segmentation",
    wavelengths_nm=tuple(float(w) for w in np.linspace(_FIRST_NM, _LAST_NM, _NUM_BANDS)),
    class_names=HSI_ROAD_CLASSES,
    palette=HSI_ROAD_PALETTE,
    ignore_index=IGNORE_INDEX,
    pseudo_rgb_bands=(24, 12, 0),  # hsbench's false colour: about 960, 780, 600 nm (no published choice)
    official_splits={"official": _OFFICIAL},
    raw_label_map={0: 0, 1: 1},
    sizes=(
        f"split official: {len(_OFFICIAL.train) + len(_OFFICIAL.test)} ({len(_OFFICIAL.train)} / 0 / "
        f"{len(_OFFICIAL.test)}) images of 3799 scenes; 192 x 384 px, 25 bands (600-960 nm); about 23 GB as float32"
    ),
    description=(
        "HSI-Road: road / not-road segmentation of driving scenes from a 25-band near-infrared snapshot-mosaic "
        "camera (600-960 nm). Band centres are not published: the card spaces them evenly over 600-960 nm "
        "(an assumption). The authors' valid.txt is the test part; the official val part is empty."
    ),
    citation=(
        "J. Lu, H. Liu, Y. Yao, S. Tao, Z. Tang, J. Lu: HSI Road: A Hyper Spectral Image Dataset for Road "
        "Segmentation. IEEE International Conference on Multimedia and Expo (ICME) 2020. Loader and label "
        "definition as in hyperseg (N. Theisen et al., https://github.com/nickstheisen/hyperseg)."
    ),
    licence=(
        "non-commercial use, no redistribution, per the dataset README at "
        "https://github.com/NUST-Machine-Intelligence-Laboratory/hsi_road (hsbench ships only the split lists "
        "and label definition)"
    ),
    how_to_obtain=(
        "download https://hsiroad.oss-cn-hongkong.aliyuncs.com/hsi_road.tar.gz (linked from "
        "https://github.com/NUST-Machine-Intelligence-Laboratory/hsi_road), unpack it and run "
        "`hsbench prepare hsi_road --raw <folder>` with <folder> holding hsi_road/ (images/<id>_nir.tif and "
        "masks/<id>_nir.tif), or hsi_road/ itself"
    ),
)


@DATASETS.register_module(name="hsi_road")
class HsiRoad(RealDatasetProvider):
    """HSI-Road road segmentation (25 near-infrared bands, 2 classes), read from the prepared cache."""

    card = HSI_ROAD_CARD
    formats = {"raw": HsiRoadFormat()}
