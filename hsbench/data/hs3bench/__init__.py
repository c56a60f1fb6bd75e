"""The three HS3-Bench driving datasets ``hyko2``, ``hsi_drive``, ``hcv2``, and hyperseg's ``hsi_road``, ``whu_ohs``.

Each is a :class:`hsbench.data.source.RealDatasetProvider` with a full card and two raw layouts: the dataset's
own distribution (``raw``, the default for ``hsbench prepare``) and the HS3-Bench HDF5 files
(``hs3bench_h5``). All three use ignore index 255 for undefined pixels; their split lists, label definitions
and band wavelengths are package data (:mod:`hsbench.data.hs3bench.resources`). Importing this package
registers the datasets. ``hsi_road`` and ``whu_ohs`` (GeoTIFF distributions, no HS3-Bench HDF5 files) have only
the ``raw`` layout.
"""

from hsbench.data.hs3bench.h5_format import Hs3BenchH5Format
from hsbench.data.hs3bench.hcv2 import HCV2_CARD, Hcv2, Hcv2Format
from hsbench.data.hs3bench.hsd import HsdHeader, read_hsd, read_hsd_header, write_hsd
from hsbench.data.hs3bench.hsi_drive import HSI_DRIVE_CARD, HsiDrive, HsiDriveFormat
from hsbench.data.hs3bench.hsi_road import HSI_ROAD_CARD, HsiRoad, HsiRoadFormat
from hsbench.data.hs3bench.hyko2 import HYKO2_CARD, HyKo2, HyKo2MatFormat
from hsbench.data.hs3bench.whu_ohs import WHU_OHS_CARD, WhuOhs, WhuOhsFormat
from hsbench.data.labels import IGNORE_INDEX

__all__ = [
    "HyKo2", "HsiDrive", "Hcv2", "HYKO2_CARD", "HSI_DRIVE_CARD", "HCV2_CARD", "HyKo2MatFormat", "HsiDriveFormat",
    "Hcv2Format", "Hs3BenchH5Format", "HsiRoad", "WhuOhs", "HSI_ROAD_CARD", "WHU_OHS_CARD", "HsiRoadFormat",
    "WhuOhsFormat", "HsdHeader", "read_hsd", "read_hsd_header", "write_hsd", "IGNORE_INDEX",
]
