"""HyKo2-VIS with its semantic labels, as evaluated by HS3-Bench (``hyko2``).

Data card
---------
Sensor
    A 4x4 snapshot-mosaic camera in the visible range, 15 bands, 468-643 nm, irregularly spaced (band centres in
    cube order from HS3-Bench's ``wave_hyko2.csv``). Images about 254 x 510 px, recorded from a car in urban and
    suburban streets.
Classes
    The 10 semantic classes of the label set "Semantic Classes for Urban Scenes": road, sidewalk, lane_markers,
    grass, vegetation, panels_signs_trafficlight, building, vehicle, person, sky. Raw id 0 (undefined) becomes
    the ignore index 255; raw ids 1..10 become harness ids 0..9. Any other raw id is an error.
Splits
    HS3-Bench's lists: 81 / 32 / 49 images (split ``official``).
Formats
    ``raw``: the annotated MATLAB v5 files of ``vis_annotated.zip`` (``set-_04282_spec_annotated.mat``, ...),
    keys ``data`` (H, W, 15) and ``label_Semantic Classes for Urban Scenes`` (H, W); sample id = file stem.
    ``hs3bench_h5``: ``hyko2_{train,val,test}.h5``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample
from hsbench.data.hs3bench._card import hs3bench_card
from hsbench.data.hs3bench.arrays import to_sample
from hsbench.data.hs3bench.files import index_files
from hsbench.data.hs3bench.h5_format import Hs3BenchH5Format
from hsbench.data.hs3bench.resources import read_official_split, read_wavelengths_nm
from hsbench.data.labels import IGNORE_INDEX
from hsbench.data.matfile import read_mat_arrays
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat
from hsbench.errors import DataError
from hsbench.registry import DATASETS

__all__ = ["HyKo2", "HyKo2MatFormat", "HYKO2_CARD", "HYKO2_RAW_LABEL_MAP", "DATA_KEY", "LABEL_KEY"]

DATA_KEY = "data"
LABEL_KEY = "label_Semantic Classes for Urban Scenes"
# Label definition ids 0..10 (hyko2-semantic_labeldef.txt): 0 undefined, 1..10 the evaluated classes in order.
HYKO2_RAW_LABEL_MAP = {0: IGNORE_INDEX, **{raw: raw - 1 for raw in range(1, 11)}}


class HyKo2MatFormat(SourceFormat):
    """The annotated ``.mat`` files of HyKo2-VIS, anywhere below the raw folder."""

    name: ClassVar[str] = "raw"
    description: ClassVar[str] = (
        f"HyKo2-VIS annotated MATLAB files (*.mat, keys '{DATA_KEY}' (H, W, 15) and '{LABEL_KEY}'), any folder tree"
    )

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        files = index_files(raw_dir, "*.mat", lambda p: p.stem, what="HyKo2-VIS annotated .mat files")
        return [RawSample(stem, (path,)) for stem, path in files.items()]

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        path = item.paths[0]
        arrays = read_mat_arrays(path, [DATA_KEY, LABEL_KEY])
        data = arrays[DATA_KEY]
        if data.ndim != 3 or data.shape[-1] != card.num_bands or not np.issubdtype(data.dtype, np.number):
            raise DataError(
                f"{path}: variable {DATA_KEY!r} is {data.dtype} {data.shape}, expected numbers of shape "
                f"(height, width, {card.num_bands})"
            )
        cube = np.ascontiguousarray(data.transpose(2, 0, 1), dtype=np.float32)
        return to_sample(card, item.sample_id, cube, arrays[LABEL_KEY], path)


HYKO2_CARD = hs3bench_card(
    "hyko2",
    h5_prefix="hyko2",
    wavelengths_nm=read_wavelengths_nm("hyko2"),
    labeldef="hyko2-semantic_labeldef.txt",
    class_ids=range(1, 11),
    pseudo_rgb_bands=(14, 7, 0),  # HS3-Bench's pseudo-RGB: 643, 555, 468 nm
    official_splits={"official": read_official_split("hyko2", strip_suffix=".mat")},
    raw_label_map=HYKO2_RAW_LABEL_MAP,
    sizes="about 254 x 510 px, 15 bands (468-643 nm); about 1.3 GB as float32",
    description=(
        "HyKo2-VIS: driving scenes from a 15-band visible snapshot-mosaic camera (468-643 nm, irregular band "
        "spacing) with pixel labels for 10 semantic urban classes; undefined pixels are ignored."
    ),
    citation=(
        "C. Winkens, F. Sattler, V. Adams, D. Paulus: HyKo: A Spectral Dataset for Scene Understanding. "
        "ICCV Workshops 2017."
    ),
    licence="research data of the University of Koblenz (HyKo); use under the terms on https://wp.uni-koblenz.de/hyko/",
    how_to_obtain=(
        "download vis_annotated.zip from https://wp.uni-koblenz.de/hyko/ (HyKo2, VIS, annotated), unpack it "
        "anywhere and run `hsbench prepare hyko2 --raw <folder>`: every *.mat below the folder is a sample "
        "(id = file stem)"
    ),
)


@DATASETS.register_module(name="hyko2")
class HyKo2(RealDatasetProvider):
    """HyKo2-VIS semantic segmentation (15 visible bands, 10 classes), read from the prepared cache."""

    card = HYKO2_CARD
    formats = {"raw": HyKo2MatFormat(), "hs3bench_h5": Hs3BenchH5Format("hyko2", id_suffix=".mat")}
