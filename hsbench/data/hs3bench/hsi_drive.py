"""HSI-Drive v2.0 with the HS3-Bench class set (``hsi_drive``).

Data card
---------
Sensor
    An IMEC 5x5 snapshot-mosaic near-infrared camera, 25 bands in an unsorted cube order (centres from the
    official tool headers, HS3-Bench's ``wave_hsidrive.csv``), about 600-975 nm; images 216 x 409 px from a car
    in urban, suburban and rural roads, in several seasons and weather conditions. Values roughly 0..4.5
    (band-normalised).
Band 23
    The two official headers disagree on band 23 (cube index 22): 564.36 nm in the newer one (the value in
    ``wave_hsidrive.csv``, shipped unchanged) and 838.08 nm in the older one. The card uses 838.08 nm, as
    ``synthetic_drive`` does: it fills the one gap of the sensor's otherwise regular ~10 nm spacing
    (826.77 -> 848.55 nm), and 564 nm lies below the ~600 nm cut-on of this filter mosaic. Wavelength-aware
    strategies therefore see the same band positions on the real and the synthetic set.
Classes
    HS3-Bench's 9 evaluated classes: road, road_marks, vegetation, painted_metal, sky, concrete_stone_brick,
    pedestrian_cyclist, unpainted_metal, glass_transparent_plastic. Raw ids follow HS3-Bench's remap
    {0:9, 1:0, 2:1, 3:2, 4:3, 5:4, 6:5, 7:6, 8:9, 9:7, 10:8}, where 9 (unlabelled, and water, merged into it)
    becomes the ignore index 255. Raw ids above 10 are an error.
Splits
    HS3-Bench's lists: 451 / 150 / 151 images (split ``official``).
Wavelengths option
    ``hsi_drive:wavelengths=cross_domain_2026`` replaces the true centres by the linear 535-975 nm vector
    (``np.linspace(535, 975, 25)`` in cube order) that the 2026 cross-domain study fed HyperSL
    (``crossdomainhsi/datasets/spectralbands/wave_hsidrive.csv``). That vector is the study's error, kept only to
    reproduce its numbers; it changes the dataset fingerprint, so such runs never mix with true-wavelength runs.
Formats
    ``raw``: ``Image_dataset/cubes_fl32/<name>_TC.mat`` (variable ``cube``, float32 (25, H, W), MATLAB v5 or
    v7.3) with ``Image_dataset/labels/<name>.png`` (8-bit ids); a sample is a label image (unlabelled cubes
    are not samples). ``hs3bench_h5``: ``hsidrive_{train,val,test}.h5``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Dataset, Sample
from hsbench.data.hs3bench._card import hs3bench_card
from hsbench.data.hs3bench.arrays import to_sample
from hsbench.data.hs3bench.files import layout_dir
from hsbench.data.hs3bench.h5_format import Hs3BenchH5Format
from hsbench.data.hs3bench.resources import read_official_split, read_wavelengths_nm
from hsbench.data.labels import IGNORE_INDEX, read_label_image
from hsbench.data.matfile import read_mat_array
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat
from hsbench.data.wavelength_variants import TRUE_WAVELENGTHS, with_wavelengths
from hsbench.errors import DataError
from hsbench.registry import DATASETS

__all__ = [
    "HsiDrive", "HsiDriveFormat", "HSI_DRIVE_CARD", "HSI_DRIVE_RAW_LABEL_MAP", "BAND_23_NM", "CUBE_KEY",
    "image_dataset_dir", "WAVELENGTH_VARIANTS",
]

CUBE_KEY = "cube"
BAND_23_NM = 838.08
_BAND_23_INDEX = 22
_HS3BENCH_REMAP = {0: 9, 1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 9, 9: 7, 10: 8}
_HS3BENCH_UNDEFINED = 9
HSI_DRIVE_RAW_LABEL_MAP = {
    raw: IGNORE_INDEX if mapped == _HS3BENCH_UNDEFINED else mapped for raw, mapped in _HS3BENCH_REMAP.items()
}


def image_dataset_dir(raw_dir: Path) -> Path:
    """The ``Image_dataset`` folder: ``raw_dir/Image_dataset`` or ``raw_dir`` itself."""
    return layout_dir(raw_dir, "Image_dataset", ("cubes_fl32", "labels"), dataset="HSI-Drive")


class HsiDriveFormat(SourceFormat):
    """The HSI-Drive v2.0 distribution: ``.mat`` cubes and PNG label images under ``Image_dataset/``."""

    name: ClassVar[str] = "raw"
    description: ClassVar[str] = (
        "HSI-Drive v2.0 Image_dataset/cubes_fl32/<name>_TC.mat (variable 'cube', float32 (25, H, W), MATLAB v5 or "
        "v7.3) and Image_dataset/labels/<name>.png; --raw may name Image_dataset/ or the folder holding it"
    )

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        base = image_dataset_dir(raw_dir)
        labels = sorted((base / "labels").glob("*.png"))
        if not labels:
            raise DataError(f"{base / 'labels'}: no label images (*.png)")
        return [RawSample(p.stem, (base / "cubes_fl32" / f"{p.stem}_TC.mat", p)) for p in labels]

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        cube_path, label_path = item.paths
        raw_labels = read_label_image(label_path)
        cube = read_mat_array(cube_path, CUBE_KEY)
        if cube.ndim != 3 or cube.shape[0] != card.num_bands or not np.issubdtype(cube.dtype, np.floating):
            raise DataError(
                f"{cube_path}: variable {CUBE_KEY!r} is {cube.dtype} {cube.shape}, expected float (bands first) of "
                f"shape ({card.num_bands}, height, width)"
            )
        cube = np.ascontiguousarray(cube, dtype=np.float32)
        return to_sample(card, item.sample_id, cube, raw_labels, cube_path, label_source=label_path)


def _wavelengths_nm() -> tuple[float, ...]:
    bands = list(read_wavelengths_nm("hsidrive"))
    bands[_BAND_23_INDEX] = BAND_23_NM
    return tuple(bands)


WAVELENGTH_VARIANTS: dict[str, tuple[float, ...]] = {
    # The 2026 cross-domain study's wave_hsidrive.csv: 535 + i * 440 / 24 nm, i = 0..24, equal to this in float32.
    "cross_domain_2026": tuple(float(w) for w in np.linspace(535.0, 975.0, 25)),
}
"""Wrong band-centre vectors that published results used, by ``wavelengths=`` option value (see the card)."""


HSI_DRIVE_CARD = hs3bench_card(
    "hsi_drive",
    h5_prefix="hsidrive",
    wavelengths_nm=_wavelengths_nm(),
    labeldef="hsidrive_labeldef_noWater.txt",
    class_ids=range(9),
    pseudo_rgb_bands=(5, 2, 0),  # HS3-Bench's near-infrared false colour: 796, 879, 888 nm
    official_splits={"official": read_official_split("hsidrive")},
    raw_label_map=HSI_DRIVE_RAW_LABEL_MAP,
    sizes="216 x 409 px, 25 bands (about 600-975 nm); about 7 GB as float32",
    description=(
        "HSI-Drive v2.0: driving scenes from a 25-band near-infrared snapshot-mosaic camera (IMEC 5x5, unsorted "
        "band order, band 23 taken as 838.08 nm) with HS3-Bench's 9 classes; unlabelled and water pixels are "
        "ignored."
    ),
    citation=(
        "K. Basterretxea, V. Martinez, J. Echanobe, J. Gutierrez-Zaballa, I. del Campo: HSI-Drive: A Dataset "
        "for the Research of Hyperspectral Image Processing Applied to Autonomous Driving Systems. IEEE "
        "Intelligent Vehicles Symposium (IV) 2021."
    ),
    licence=(
        "research use under the licence agreement of the University of the Basque Country, accepted on "
        "request at https://ipaccess.ehu.eus/HSI-Drive/"
    ),
    how_to_obtain=(
        "request HSI-Drive v2.0 at https://ipaccess.ehu.eus/HSI-Drive/ (the zip is password protected; the "
        "site explains how to get the password), unpack it and run `hsbench prepare hsi_drive --raw <folder>` "
        "with <folder> holding Image_dataset/ (cubes_fl32/<name>_TC.mat and labels/<name>.png), or "
        "Image_dataset/ itself"
    ),
)


@DATASETS.register_module(name="hsi_drive")
class HsiDrive(RealDatasetProvider):
    """HSI-Drive v2.0 semantic segmentation (25 near-infrared bands, 9 classes), read from the prepared cache."""

    card = HSI_DRIVE_CARD
    formats = {"raw": HsiDriveFormat(), "hs3bench_h5": Hs3BenchH5Format("hsidrive")}

    @classmethod
    def open(cls, *, data_root: Path | None = None, wavelengths: str = TRUE_WAVELENGTHS, **options: Any) -> Dataset:
        """The prepared dataset; ``wavelengths=cross_domain_2026`` swaps in that study's wrong linear vector."""
        return with_wavelengths(super().open(data_root=data_root, **options), wavelengths, WAVELENGTH_VARIANTS)
