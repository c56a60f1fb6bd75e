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
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample
from hsbench.data.hs3bench._card import hs3bench_card
from hsbench.data.hs3bench.arrays import halve_nearest, to_sample
from hsbench.data.hs3bench.files import index_files
from hsbench.data.hs3bench.h5_format import Hs3BenchH5Format
from hsbench.data.hs3bench.hsd import read_hsd, read_hsd_header
from hsbench.data.hs3bench.resources import read_official_split, read_wavelengths_nm
from hsbench.data.labels import IGNORE_INDEX, read_label_image
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat
from hsbench.errors import DataError
from hsbench.registry import DATASETS

__all__ = ["Hcv2", "Hcv2Format", "HCV2_CARD", "HCV2_RAW_LABEL_MAP", "RAW_SIZE", "label_name"]

RAW_SIZE = (1422, 1889)
HCV2_RAW_LABEL_MAP = {**{train_id: train_id for train_id in range(19)}, 255: IGNORE_INDEX}
_LABEL_PREFIX, _LABEL_SUFFIX = "rgb", "_gray.png"


def label_name(stem: str) -> str:
    """The label image name of cube ``<stem>.hsd``: ``rgb<stem>_gray.png``."""
    return f"{_LABEL_PREFIX}{stem}{_LABEL_SUFFIX}"


def _label_stem(path: Path) -> str:
    return path.name.removeprefix(_LABEL_PREFIX).removesuffix(_LABEL_SUFFIX)


class Hcv2Format(SourceFormat):
    """The HCV2 distribution: ``.hsd`` cubes and ``rgb<stem>_gray.png`` trainId images."""

    name: ClassVar[str] = "raw"
    description: ClassVar[str] = (
        "Hyperspectral City V2 <stem>.hsd cubes with rgb<stem>_gray.png trainId labels (same folder, or anywhere "
        "below --raw)"
    )

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        cubes = index_files(raw_dir, "*.hsd", lambda p: p.stem, what="HCV2 .hsd cubes")
        labels = _label_index(raw_dir)
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


def _label_index(raw_dir: Path) -> dict[str, Path]:
    """Label images below ``raw_dir`` by cube stem; a name found twice is left out (the one beside the cube wins)."""
    found: dict[str, list[Path]] = {}
    for path in raw_dir.rglob(label_name("*")):
        found.setdefault(_label_stem(path), []).append(path)
    return {stem: paths[0] for stem, paths in found.items() if len(paths) == 1}


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


@DATASETS.register_module(name="hcv2")
class Hcv2(RealDatasetProvider):
    """Hyperspectral City V2.0 (128 bands, 19 Cityscapes classes, halved), read from the prepared cache."""

    card = HCV2_CARD
    formats = {"raw": Hcv2Format(), "hs3bench_h5": Hs3BenchH5Format("hcv2", id_suffix=".hsd", halve_size=RAW_SIZE)}
