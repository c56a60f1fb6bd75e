"""Hyperspectral City V2.0 with Cityscapes classes, as evaluated by HS3-Bench (``hcv2``).

Data card
---------
Sensor
    A 128-band line-scan camera, 449-957 nm every 4 nm (HS3-Bench's ``wave_hcv2.csv``), urban driving scenes in
    Shanghai; raw images 1422 x 1889 px, stored PCA-compressed (``.hsd``, see :mod:`hsbench.data.hs3bench.hsd`).
Downscale
    Like HS3-Bench, cube and labels are halved with nearest-neighbour resizing: rows and columns 0, 2, 4, ...
    are kept, ``height // 2`` x ``width // 2`` of them (1422 x 1889 -> 711 x 944; the last odd column is
    dropped). This is what OpenCV / torch nearest resizing by 0.5 keeps, and it is exact for labels.
Classes
    The 19 Cityscapes evaluation classes (trainIds 0-18 -> harness ids 0-18); label 255 (HS3-Bench's
    "undefined", remapped there to 19) is the ignore index 255. Ids 19-254 are an error.
Splits
    ``hcv2`` (default; the 2026 cross-domain study): 949 / 105 / 276, test = the official test set.
    ``hcv2_2024`` (the 2024 HS3-Bench paper): 527 / 105 / 422, all drawn from the official train set.
    Reports must say which one was used.
Formats
    ``raw``: ``<stem>.hsd`` cubes with ``rgb<stem>_gray.png`` trainId images, in the same folder or anywhere
    below ``--raw``. ``hs3bench_h5``: ``hcv2_{train,val,test}.h5`` (full-size images are halved as above).
Camera option
    ``hcv2:camera=rgb`` (default ``camera=hsi``, the cubes) reads the 8-bit RGB camera image ``rgb<stem>.jpg``
    that the distribution ships registered to each label image, for HS3-Bench's "DL3+(BB) RGB" row (extra data;
    HS3-Bench reports it in parentheses). Bands R, G, B as float32 ``uint8 / 255``, halved like the cubes; the
    labels, ids and splits are the cube variant's. Its band centres (610 / 540 / 465 nm) are nominal, not
    measured. It is a dataset of its own (card ``hcv2:camera=rgb``, prepared cache ``<data root>/hcv2:camera=rgb``,
    own fingerprint), so it never shares run ids or caches with the cubes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from hsbench.config_files import did_you_mean, require_choice
from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Dataset, Sample
from hsbench.data.hs3bench._card import hs3bench_card, split_sizes
from hsbench.data.hs3bench.arrays import halve_nearest, to_sample
from hsbench.data.hs3bench.files import index_files
from hsbench.data.hs3bench.h5_format import Hs3BenchH5Format
from hsbench.data.hs3bench.hsd import read_hsd, read_hsd_header
from hsbench.data.hs3bench.resources import read_official_split, read_wavelengths_nm
from hsbench.data.labels import IGNORE_INDEX, read_label_image
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat
from hsbench.errors import ConfigError, DataError
from hsbench.registry import DATASETS

__all__ = [
    "Hcv2", "Hcv2Format", "HCV2_CARD", "HCV2_RAW_LABEL_MAP", "RAW_SIZE", "label_name", "CAMERAS", "HSI_CAMERA",
    "RGB_CAMERA", "HCV2_RGB_CARD", "Hcv2RgbCamera", "Hcv2RgbFormat", "RGB_NOMINAL_WAVELENGTHS_NM", "rgb_image_name",
    "read_rgb_image",
]

RAW_SIZE = (1422, 1889)
HCV2_RAW_LABEL_MAP = {**{train_id: train_id for train_id in range(19)}, 255: IGNORE_INDEX}
_LABEL_PREFIX, _LABEL_SUFFIX = "rgb", "_gray.png"
_RGB_SUFFIX = ".jpg"

HSI_CAMERA, RGB_CAMERA = "hsi", "rgb"
CAMERAS = (HSI_CAMERA, RGB_CAMERA)
"""Values of the ``camera=`` dataset option: the hyperspectral cubes (default) or the RGB camera images."""

RGB_NOMINAL_WAVELENGTHS_NM = (610.0, 540.0, 465.0)
"""Nominal R, G, B centres: round peak sensitivities typical of Bayer colour cameras. HCV2 publishes no response
curves for its RGB camera, so these only place the three bands on the wavelength axis for wavelength-aware code."""


def label_name(stem: str) -> str:
    """The label image name of cube ``<stem>.hsd``: ``rgb<stem>_gray.png``."""
    return f"{_LABEL_PREFIX}{stem}{_LABEL_SUFFIX}"


def rgb_image_name(stem: str) -> str:
    """The RGB camera image of sample ``<stem>``: ``rgb<stem>.jpg``, registered to ``rgb<stem>_gray.png``."""
    return f"{_LABEL_PREFIX}{stem}{_RGB_SUFFIX}"


def _label_stem(path: Path) -> str:
    return path.name.removeprefix(_LABEL_PREFIX).removesuffix(_LABEL_SUFFIX)


def _rgb_stem(path: Path) -> str:
    return path.name.removeprefix(_LABEL_PREFIX).removesuffix(_RGB_SUFFIX)


class Hcv2Format(SourceFormat):
    """The HCV2 distribution: ``.hsd`` cubes and ``rgb<stem>_gray.png`` trainId images."""

    name: ClassVar[str] = "raw"
    description: ClassVar[str] = (
        "Hyperspectral City V2 <stem>.hsd cubes with rgb<stem>_gray.png trainId labels (same folder, or anywhere "
        "below --raw)"
    )

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        cubes = index_files(raw_dir, "*.hsd", lambda p: p.stem, what="HCV2 .hsd cubes")
        labels = _unique_index(raw_dir, label_name("*"), _label_stem)
        items = []
        for stem, cube in cubes.items():
            beside = cube.with_name(label_name(stem))
            items.append(RawSample(stem, (cube, beside if beside.is_file() else labels.get(stem, beside))))
        return items

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        cube_path, label_path = item.paths
        header = read_hsd_header(cube_path)
        raw_labels = read_label_image(label_path)
        if raw_labels.shape != (header.height, header.width):
            raise DataError(
                f"{label_path}: labels are {raw_labels.shape[0]} x {raw_labels.shape[1]} px, but the cube "
                f"{cube_path.name} is {header.height} x {header.width} px"
            )
        cube = read_hsd(cube_path, step=2, bands=card.num_bands)
        return to_sample(card, item.sample_id, cube, halve_nearest(raw_labels), cube_path, label_source=label_path)


def _unique_index(raw_dir: Path, pattern: str, stem_of: Callable[[Path], str]) -> dict[str, Path]:
    """Files below ``raw_dir`` by sample stem; a name found twice is left out (the one beside the anchor wins)."""
    found: dict[str, list[Path]] = {}
    for path in raw_dir.rglob(pattern):
        found.setdefault(stem_of(path), []).append(path)
    return {stem: paths[0] for stem, paths in found.items() if len(paths) == 1}


def read_rgb_image(path: Path) -> np.ndarray:
    """The decoded 8-bit RGB camera image, ``(H, W, 3)`` uint8.

    Raises:
        DataError: the file is missing (saying that ``camera=rgb`` needs the distribution's RGB images), damaged,
            or not a 3-channel image.
    """
    if not path.is_file():
        raise DataError(
            f"{path}: RGB camera image not found; hcv2:camera=rgb reads the RGB camera images rgb<stem>.jpg that "
            "the HCV2 distribution ships beside each rgb<stem>_gray.png label image: unpack them from the "
            "download into the --raw folder (or use the cubes, dataset hcv2)"
        )
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            pixels = np.array(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:  # PIL's errors for a damaged file
        raise DataError(f"{path}: cannot read the RGB camera image ({exc}); the file is truncated or not an "
                        "image") from None
    if mode != "RGB":
        raise DataError(f"{path}: {mode} image; the HCV2 RGB camera image must be 8-bit RGB (3 channels)")
    return pixels


class Hcv2RgbFormat(SourceFormat):
    """The HCV2 distribution's RGB camera: ``rgb<stem>.jpg`` beside each ``rgb<stem>_gray.png`` trainId image.

    Samples are found by their label images, so the 337 GB of cubes need not be present to use the RGB camera.
    """

    name: ClassVar[str] = "raw"
    description: ClassVar[str] = (
        "Hyperspectral City V2 RGB camera images rgb<stem>.jpg with rgb<stem>_gray.png trainId labels (same "
        "folder, or anywhere below --raw)"
    )

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        labels = index_files(raw_dir, label_name("*"), _label_stem, what="HCV2 label images")
        images = _unique_index(raw_dir, rgb_image_name("*"), _rgb_stem)
        items = []
        for stem, label in labels.items():
            beside = label.with_name(rgb_image_name(stem))
            items.append(RawSample(stem, (beside if beside.is_file() else images.get(stem, beside), label)))
        return items

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        image_path, label_path = item.paths
        pixels = read_rgb_image(image_path)
        raw_labels = read_label_image(label_path)
        if pixels.shape[:2] != raw_labels.shape:
            raise DataError(
                f"{image_path}: the RGB image is {pixels.shape[0]} x {pixels.shape[1]} px, but the labels "
                f"{label_path.name} are {raw_labels.shape[0]} x {raw_labels.shape[1]} px; the two must be the "
                "same size (registered)"
            )
        # Halve first (the same rows and columns as the cubes and labels), then scale only what is kept.
        cube = halve_nearest(np.moveaxis(pixels, -1, 0)).astype(np.float32) / np.float32(255.0)
        return to_sample(card, item.sample_id, cube, halve_nearest(raw_labels), image_path, label_source=label_path)


HCV2_CARD = hs3bench_card(
    "hcv2",
    h5_prefix="hcv2",
    wavelengths_nm=read_wavelengths_nm("hcv2"),
    labeldef="HCv2_labeldef.txt",
    class_ids=range(19),
    pseudo_rgb_bands=(62, 18, 0),  # HS3-Bench's pseudo-RGB: 697, 521, 449 nm
    official_splits={name: read_official_split(name, strip_suffix=".hsd") for name in ("hcv2", "hcv2_2024")},
    raw_label_map=HCV2_RAW_LABEL_MAP,
    sizes=(
        "raw 1422 x 1889 px read at 711 x 944 px, 128 bands (449-957 nm); raw download 337 GB, prepared 344 MB "
        "per image (about 460 GB for split hcv2)"
    ),
    description=(
        "Hyperspectral City V2.0: urban driving scenes from a 128-band camera (449-957 nm, 4 nm steps) with "
        "the 19 Cityscapes classes, halved to 711 x 944 px by nearest neighbour as in HS3-Bench. Two official "
        "splits: hcv2 (default, 2026 study, official test set) and hcv2_2024 (HS3-Bench paper)."
    ),
    citation=(
        "S. You et al.: Hyperspectral City V1.0 Dataset and Benchmark. arXiv:1907.10270, 2019 (V2.0 released "
        "for the PBDL 2021 challenge). Split hcv2: the 2026 cross-domain study."
    ),
    licence=(
        "research use under the terms of the PBDL 2021 challenge data release, "
        "https://pbdl-ws.github.io/pbdl2021/challenge/download.html"
    ),
    how_to_obtain=(
        "download Hyperspectral City V2.0 (train and test sets) from "
        "https://pbdl-ws.github.io/pbdl2021/challenge/download.html, unpack it and run "
        "`hsbench prepare hcv2 --raw <folder>`: every <stem>.hsd below the folder is a sample, its labels are "
        "rgb<stem>_gray.png beside it (or anywhere below the folder). 337 GB raw; the prepared cache needs "
        "about 460 GB"
    ),
)


HCV2_RGB_CARD = replace(
    HCV2_CARD,
    name=f"hcv2:camera={RGB_CAMERA}",  # the dataset spec itself, so every message names what to type
    wavelengths_nm=RGB_NOMINAL_WAVELENGTHS_NM,
    pseudo_rgb_bands=(0, 1, 2),
    sizes=(
        f"{split_sizes(HCV2_CARD.official_splits)}; raw 1422 x 1889 px 8-bit JPEG read at 711 x 944 px, 3 bands "
        "(R, G, B); prepared about 8.7 MB per image (about 12 GB for split hcv2)"
    ),
    description=(
        "Hyperspectral City V2.0, RGB camera: the 8-bit RGB images the distribution ships registered to each "
        "cube's labels, as bands R, G, B scaled to [0, 1], halved to 711 x 944 px like the cubes; same classes, "
        "labels and splits as hcv2. Extra data: HS3-Bench reports this baseline (DL3+(BB) RGB) in parentheses. "
        "Band centres 610 / 540 / 465 nm are nominal (typical Bayer colour-camera peak sensitivities; HCV2 "
        "publishes no response curves)."
    ),
    citation=f"{HCV2_CARD.citation} RGB baseline: the DL3+(BB) RGB row of HS3-Bench.",
    how_to_obtain=(
        "download Hyperspectral City V2.0 (train and test sets) from "
        "https://pbdl-ws.github.io/pbdl2021/challenge/download.html, unpack it and run "
        "`hsbench prepare hcv2:camera=rgb --raw <folder>`: every rgb<stem>_gray.png below the folder is a sample, "
        "its image is rgb<stem>.jpg beside it (or anywhere below the folder); the .hsd cubes are not needed"
    ),
)


class Hcv2RgbCamera(RealDatasetProvider):
    """``hcv2:camera=rgb``: HCV2's RGB camera, a prepared dataset of its own (not registered: reached via ``hcv2``)."""

    card = HCV2_RGB_CARD
    formats = {"raw": Hcv2RgbFormat()}


@DATASETS.register_module(name="hcv2")
class Hcv2(RealDatasetProvider):
    """Hyperspectral City V2.0 (128 bands, 19 Cityscapes classes, halved), read from the prepared cache."""

    card = HCV2_CARD
    formats = {"raw": Hcv2Format(), "hs3bench_h5": Hs3BenchH5Format("hcv2", id_suffix=".hsd", halve_size=RAW_SIZE)}

    @classmethod
    def prepared_provider(cls, *, camera: str = HSI_CAMERA, **options: Any) -> type[RealDatasetProvider]:
        """The provider whose prepared cache these dataset options read (``hsbench prepare`` writes that one).

        Raises:
            ConfigError: an unknown camera (listing the valid ones) or an unknown option.
        """
        if options:
            first = sorted(options)[0]
            raise ConfigError(f"dataset 'hcv2' has no option {first!r}{did_you_mean(first, ['camera'])}; it takes "
                              f"camera={'|'.join(CAMERAS)}")
        camera = require_choice("hcv2 camera", camera, CAMERAS)
        return Hcv2RgbCamera if camera == RGB_CAMERA else cls

    @classmethod
    def open(cls, *, data_root: Path | None = None, camera: str = HSI_CAMERA, **options: Any) -> Dataset:
        """The prepared cubes, or with ``camera=rgb`` the prepared RGB camera images (a dataset of its own)."""
        provider = cls.prepared_provider(camera=camera, **options)
        if provider is cls:
            return super().open(data_root=data_root)
        return provider.open(data_root=data_root)
