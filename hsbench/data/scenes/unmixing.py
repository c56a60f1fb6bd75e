"""Jasper Ridge and Samson: unmixing benchmarks used as dense classification scenes (class = argmax abundance).

Data cards
----------
``jasper_ridge``  AVIRIS sub-scene of Jasper Ridge, California; 100 x 100 px, 198 bands; tree, water, dirt, road.
``samson``        Samson sensor scene; 95 x 95 px, 156 bands (401-889 nm); soil, tree, water.

Both files store the cube MATLAB-style as ``Y`` of shape (bands, pixels), pixels in column-major order, and the
abundances either as (classes, pixels) in the same order (Jasper ``A``) or as (rows, cols, classes) (Samson
``S_GT``). Every pixel gets the class of its largest abundance, so there are no unlabelled pixels. The orientation
was checked on the real files: Jasper's cube and ``A`` share one pixel order; Samson's ``Y`` reshaped column-major
reproduces ``S_GT`` (least-squares abundances agree on 99 % of pixels, against 51 % for row-major).
Class counts on the real files: Jasper tree 3493, water 3326, dirt 2428, road 753; Samson 3015 / 3666 / 2344.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample, check_finite
from hsbench.data.labels import remap_labels
from hsbench.data.matfile import mat_variable_names, read_mat_array
from hsbench.data.scenes._card import scene_card
from hsbench.data.scenes.matscene import MatVariable, find_raw_file
from hsbench.data.scenes.sensors import aviris_nominal_nm, evenly_spaced_nm, kept_channels
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat
from hsbench.errors import DataError
from hsbench.registry import DATASETS

__all__ = ["UnmixingSceneFormat", "JasperRidge", "Samson", "JASPER_CHANNELS"]

# The 1-based AVIRIS channels Jasper Ridge keeps (its ``SlectBands``): 1-3, 108-112, 154-166 and 220-224 removed.
JASPER_CHANNELS = kept_channels(224, [(1, 3), (108, 112), (154, 166), (220, 224)])
_ZHU_2017 = (
    "Zhu, F. (2017). Hyperspectral unmixing: ground truth labeling, datasets, benchmark performances and survey. "
    "arXiv:1708.05125"
)
_UNMIXING_LICENCE = "no licence stated by the distributors; free download for research, cite the source"


class UnmixingSceneFormat(SourceFormat):
    """One unmixing scene: ``Y`` (bands, pixels) column-major plus abundances; labels = argmax abundance.

    Args:
        sample_id: the sample's id.
        cube: file and key of ``Y``.
        abundances: file and key of the abundances, (classes, pixels) or (rows, cols, classes).
        shape: expected ``(height, width, bands)``.
        num_classes: number of abundance maps.
        scale_key: optional variable (in the cube file) the cube is divided by, to get reflectance.
        channels: optional ``(key, channels)``: a variable listing the sensor channels kept, checked when present.
    """

    name = "mat"

    def __init__(
        self,
        *,
        sample_id: str,
        cube: MatVariable,
        abundances: MatVariable,
        shape: tuple[int, int, int],
        num_classes: int,
        scale_key: str | None = None,
        channels: tuple[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.sample_id, self.cube, self.abundances = sample_id, cube, abundances
        self.shape, self.num_classes = shape, num_classes
        self.scale_key, self.channels = scale_key, channels
        self.description = f"cube {cube} ({shape[2]} x {shape[0] * shape[1]}), abundances {abundances}"

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        cube_path = find_raw_file(raw_dir, self.cube.file_name)
        if cube_path is None:
            return []
        abundance_path = find_raw_file(raw_dir, self.abundances.file_name)
        if abundance_path is None:
            raise DataError(f"{cube_path} found, but not its abundances {self.abundances.file_name} under {raw_dir}")
        return [RawSample(self.sample_id, (cube_path, abundance_path))]

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        cube_path, abundance_path = item.paths
        cube = self.read_cube(cube_path)
        labels = self.read_labels(abundance_path, card)
        return Sample(item.sample_id, cube, labels)

    def read_cube(self, path: Path) -> np.ndarray:
        """``(C, H, W)`` float32 from ``Y`` (bands, pixels), scaled to reflectance when a scale is configured."""
        height, width, bands = self.shape
        y = read_mat_array(path, self.cube.key, expected_shape=(bands, height * width))
        cube = np.asarray(y, dtype=np.float32).reshape(bands, height, width, order="F")
        if self.scale_key is not None:
            cube = cube / np.float32(self._scale(path))
        self._check_channels(path)
        cube = np.ascontiguousarray(cube)
        check_finite(cube, f"{path} (key {self.cube.key!r})")
        return cube

    def read_labels(self, path: Path, card: DatasetCard) -> np.ndarray:
        """``(H, W)`` harness ids: the argmax of the abundances, remapped with the card's label map."""
        fractions = self.read_abundances(path)
        return remap_labels(np.argmax(fractions, axis=0), card, source=f"{path} (key {self.abundances.key!r})")

    def read_abundances(self, path: Path) -> np.ndarray:
        """Abundances as ``(classes, H, W)``, from either stored layout."""
        height, width, _ = self.shape
        k = self.num_classes
        raw = read_mat_array(path, self.abundances.key)
        if raw.shape == (k, height * width):
            fractions = raw.reshape(k, height, width, order="F")
        elif raw.shape == (height, width, k):
            fractions = raw.transpose(2, 0, 1)
        else:
            raise DataError(
                f"{path}: abundances {self.abundances.key!r} have shape {raw.shape}, expected "
                f"{(k, height * width)} or {(height, width, k)}"
            )
        check_finite(fractions, f"{path} (key {self.abundances.key!r})")
        return fractions

    def _scale(self, path: Path) -> float:
        assert self.scale_key is not None
        value = read_mat_array(path, self.scale_key, expected_shape=(1, 1))
        scale = float(value.ravel()[0])
        if not np.isfinite(scale) or scale <= 0:
            raise DataError(f"{path}: scale {self.scale_key!r} = {scale} is not a positive number")
        return scale

    def _check_channels(self, path: Path) -> None:
        if self.channels is None:
            return
        key, expected = self.channels
        if key.lower() not in {n.lower() for n in mat_variable_names(path)}:
            return  # optional in the file: the band count has already been checked
        found = tuple(int(c) for c in read_mat_array(path, key).ravel())
        if found != expected:
            raise DataError(
                f"{path}: {key!r} lists channels {found[:5]}... ({len(found)}), not the {len(expected)} channels the "
                "card's wavelengths assume; this is a different band selection"
            )


_JASPER_SHAPE = (100, 100, 198)
JASPER_RIDGE_CARD = scene_card(
    "jasper_ridge",
    wavelengths_nm=aviris_nominal_nm(JASPER_CHANNELS),
    class_names=("tree", "water", "dirt", "road"),
    palette=((34, 139, 34), (30, 90, 220), (160, 110, 60), (128, 128, 128)),
    raw_label_map={k: k for k in range(4)},
    shape=_JASPER_SHAPE,
    labelled_px=10000,
    description=(
        "AVIRIS sub-scene of Jasper Ridge, California (100 x 100 px), the common unmixing benchmark, used as a dense "
        "4-class map (argmax of the reference abundances, so every pixel is labelled). 198 of 224 AVIRIS channels "
        "(SlectBands: 1-3, 108-112, 154-166, 220-224 removed); values divided by the file's maxValue (5000). "
        "Wavelengths are nominal: the AVIRIS grid shared with indian_pines and salinas (channel 5 = 400 nm, "
        "224 = 2500 nm, evenly spaced)."
    ),
    citation=_ZHU_2017,
    licence=_UNMIXING_LICENCE,
    how_to_obtain=(
        "download JasperRidge2_R198.mat (keys 'Y', 'SlectBands', 'maxValue') and JasperRidge2_end4.mat (key 'A') "
        "from F. Zhu's unmixing ground-truth collection (mirrored e.g. at rslab.ut.ac.ir/data) into one folder"
    ),
)
_SAMSON_SHAPE = (95, 95, 156)
SAMSON_CARD = scene_card(
    "samson",
    wavelengths_nm=evenly_spaced_nm(401.0, 889.0, 156),
    class_names=("soil", "tree", "water"),
    palette=((160, 110, 60), (34, 139, 34), (30, 90, 220)),
    raw_label_map={k: k for k in range(3)},
    shape=_SAMSON_SHAPE,
    labelled_px=9025,
    description=(
        "Samson scene (95 x 95 px, 156 bands, 401-889 nm), the common unmixing benchmark, used as a dense 3-class "
        "map (argmax of the reference abundances S_GT; order soil, tree, water, as the endmember spectra in GT "
        "confirm: rising soil curve, red-edge vegetation, water peaking in the green). Values are reflectance in "
        "[0, 1]. Wavelengths are nominal: evenly spaced over 401-889 nm (about 3.1 nm apart)."
    ),
    citation=_ZHU_2017,
    licence=_UNMIXING_LICENCE,
    how_to_obtain=(
        "download Samson_UPCGIT.mat (keys 'Y' (156 x 9025) and 'S_GT' (95 x 95 x 3)) from a public copy of F. Zhu's "
        "unmixing ground-truth collection into a folder"
    ),
)


@DATASETS.register_module(name="jasper_ridge")
class JasperRidge(RealDatasetProvider):
    """Jasper Ridge (AVIRIS, 198 bands, 4 classes from abundances)."""

    card = JASPER_RIDGE_CARD
    formats = {
        "mat": UnmixingSceneFormat(
            sample_id="jasper_ridge",
            cube=MatVariable("JasperRidge2_R198.mat", "Y"),
            abundances=MatVariable("JasperRidge2_end4.mat", "A"),
            shape=_JASPER_SHAPE,
            num_classes=4,
            scale_key="maxValue",
            channels=("SlectBands", JASPER_CHANNELS),
        )
    }


@DATASETS.register_module(name="samson")
class Samson(RealDatasetProvider):
    """Samson (156 bands, 401-889 nm, 3 classes from abundances)."""

    card = SAMSON_CARD
    formats = {
        "mat": UnmixingSceneFormat(
            sample_id="samson",
            cube=MatVariable("Samson_UPCGIT.mat", "Y"),
            abundances=MatVariable("Samson_UPCGIT.mat", "S_GT"),
            shape=_SAMSON_SHAPE,
            num_classes=3,
        )
    }
