"""Scene datasets: MATLAB v5 / v7.3 readers, the registered scene cards, Jasper Ridge / Samson readers.

Tiny files are written in each dataset's exact on-disk layout; tests on the real files in ../shared/data/real skip
when that folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from hsbench.data import DatasetCard
from hsbench.data.scenes import MatSceneFormat, MatVariable, UnmixingSceneFormat, read_mat_array
from hsbench.data.scenes._card import scene_card
from hsbench.data.scenes.labels import scene_label_map
from hsbench.data.source import RealDatasetProvider
from hsbench.errors import DataError
from hsbench.registry import DATASETS

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SCENES = ("indian_pines", "pavia_u", "pavia_c", "salinas", "ksc", "botswana", "houston2013", "jasper_ridge", "samson")
H, W, C, K = 4, 5, 3, 3
_MATLAB_CLASS = {"u1": "uint8", "u2": "uint16", "i2": "int16", "f4": "single", "f8": "double"}


def save_mat73(path: Path, variables: dict[str, np.ndarray], *, matlab: bool = True) -> None:
    """Write a v7.3 file the way MATLAB does: HDF5 after a 512-byte header, axes reversed, ``MATLAB_class`` set."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, array in variables.items():
            data = np.ascontiguousarray(array.T) if matlab else array
            dataset = f.create_dataset(name, data=data)
            if matlab:
                dataset.attrs["MATLAB_class"] = np.bytes_(_MATLAB_CLASS[array.dtype.str[1:]])
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(header.ljust(116) + bytes(8) + b"\x00\x02" + b"IM")


def tiny_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A cube (H, W, C) int16 as the GIC files store it, and a ground truth with 0 = unlabelled."""
    rng = np.random.default_rng(seed)
    cube = rng.integers(0, 9000, size=(H, W, C)).astype(np.int16)
    gt = rng.integers(0, K + 1, size=(H, W)).astype(np.uint8)
    gt[0, :K + 1] = np.arange(K + 1)  # every raw id present
    return cube, gt


def tiny_format() -> MatSceneFormat:
    return MatSceneFormat(
        sample_id="tiny", cube=MatVariable("Tiny_corrected.mat", "tiny_corrected"),
        labels=MatVariable("Tiny_gt.mat", "tiny_gt"), shape=(H, W, C),
    )


def tiny_card() -> DatasetCard:
    return scene_card(
        "tiny_mat", wavelengths_nm=(450.0, 550.0, 650.0), class_names=("a", "b", "c"), shape=(H, W, C), labelled_px=0,
        description="", citation="", licence="", how_to_obtain="",
    )


def write_tiny(folder: Path, cube: np.ndarray, gt: np.ndarray, *, v73: bool, keys=("tiny_corrected", "tiny_gt"),
               names=("Tiny_corrected.mat", "Tiny_gt.mat")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, key, array in zip(names, keys, (cube, gt)):
        if v73:
            save_mat73(folder / name, {key: array})
        else:
            scipy.io.savemat(folder / name, {key: array})


@pytest.mark.parametrize("v73", [False, True], ids=["v5", "v7.3"])
def test_mat_scene_reads_cube_and_remaps_labels(tmp_path: Path, v73: bool) -> None:
    cube, gt = tiny_scene()
    write_tiny(tmp_path, cube, gt, v73=v73)
    fmt, card = tiny_format(), tiny_card()
    items = fmt.discover(tmp_path, card)
    assert [i.sample_id for i in items] == ["tiny"]
    sample = fmt.read(items[0], card)
    assert sample.cube.shape == (C, H, W) and sample.cube.dtype == np.float32
    np.testing.assert_array_equal(sample.cube, cube.transpose(2, 0, 1).astype(np.float32))
    assert sample.labels.dtype == np.int64
    expected = np.where(gt == 0, 255, gt.astype(np.int64) - 1)
    np.testing.assert_array_equal(sample.labels, expected)


def test_v73_written_without_matlab_attributes_is_oriented_by_expected_shape(tmp_path: Path) -> None:
    cube, _ = tiny_scene()
    save_mat73(tmp_path / "c.mat", {"cube": cube}, matlab=False)  # stored (H, W, C) as numpy wrote it
    np.testing.assert_array_equal(read_mat_array(tmp_path / "c.mat", "cube", expected_shape=(H, W, C)), cube)


def test_keys_and_file_names_match_case_insensitively(tmp_path: Path) -> None:
    cube, gt = tiny_scene()
    write_tiny(tmp_path / "unpacked", cube, gt, v73=False, keys=("Tiny_Corrected", "TINY_GT"),
               names=("tiny_corrected.MAT", "tiny_GT.mat"))
    fmt, card = tiny_format(), tiny_card()
    sample = fmt.read(fmt.discover(tmp_path, card)[0], card)
    assert sample.cube.shape == (C, H, W)


def test_missing_key_lists_the_keys_that_exist(tmp_path: Path) -> None:
    cube, gt = tiny_scene()
    write_tiny(tmp_path, cube, gt, v73=False, keys=("data", "tiny_gt"))
    fmt, card = tiny_format(), tiny_card()
    with pytest.raises(DataError, match=r"Tiny_corrected\.mat.*no variable 'tiny_corrected'.*'data'"):
        fmt.read(fmt.discover(tmp_path, card)[0], card)


@pytest.mark.parametrize("v73", [False, True], ids=["v5", "v7.3"])
def test_truncated_file_is_a_data_error_naming_it(tmp_path: Path, v73: bool) -> None:
    cube, gt = tiny_scene()
    write_tiny(tmp_path, cube, gt, v73=v73)
    path = tmp_path / "Tiny_corrected.mat"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    fmt, card = tiny_format(), tiny_card()
    with pytest.raises(DataError, match=r"Tiny_corrected\.mat: not a readable MATLAB file"):
        fmt.read(fmt.discover(tmp_path, card)[0], card)


def test_wrong_band_count_names_file_and_both_shapes(tmp_path: Path) -> None:
    cube, gt = tiny_scene()
    write_tiny(tmp_path, np.concatenate([cube, cube], axis=2), gt, v73=True)
    fmt, card = tiny_format(), tiny_card()
    with pytest.raises(DataError, match=r"Tiny_corrected\.mat.*shape \(4, 5, 6\), expected \(4, 5, 3\)"):
        fmt.read(fmt.discover(tmp_path, card)[0], card)


def test_nan_in_cube_is_reported_before_prepare_validation(tmp_path: Path) -> None:
    cube, gt = tiny_scene()
    bad = cube.astype(np.float32)
    bad[1, 2, 0] = np.nan
    write_tiny(tmp_path, bad, gt, v73=False)
    fmt, card = tiny_format(), tiny_card()
    with pytest.raises(DataError, match=r"Tiny_corrected\.mat.*1 NaN or infinite"):
        fmt.read(fmt.discover(tmp_path, card)[0], card)


def test_label_ids_outside_the_map_name_the_file(tmp_path: Path) -> None:
    cube, gt = tiny_scene()
    gt[2, 2] = 9
    write_tiny(tmp_path, cube, gt, v73=False)
    fmt, card = tiny_format(), tiny_card()
    with pytest.raises(DataError, match=r"Tiny_gt\.mat.*label ids 9 \(1 px\) are not in the label map"):
        fmt.read(fmt.discover(tmp_path, card)[0], card)


def test_discover_finds_nothing_without_cube_and_complains_without_ground_truth(tmp_path: Path) -> None:
    fmt, card = tiny_format(), tiny_card()
    assert fmt.discover(tmp_path, card) == []
    scipy.io.savemat(tmp_path / "Tiny_corrected.mat", {"tiny_corrected": tiny_scene()[0]})
    with pytest.raises(DataError, match="not its ground truth Tiny_gt.mat"):
        fmt.discover(tmp_path, card)


@pytest.mark.parametrize("name", SCENES)
def test_registered_scene_cards_follow_the_scene_convention(name: str) -> None:
    provider = DATASETS.get(name)
    assert issubclass(provider, RealDatasetProvider)
    card = provider.card
    assert card.task == "scene" and card.official_splits == {} and card.ignore_index == 255
    fmt = provider.formats["mat"]
    assert fmt.shape[2] == card.num_bands == len(card.wavelengths_nm)
    assert len(card.palette) == card.num_classes and card.citation and card.licence and card.how_to_obtain
    assert all(300.0 < w < 2600.0 for w in card.wavelengths_nm)
    for band, target in zip(card.pseudo_rgb_bands, (640.0, 550.0, 460.0)):
        assert abs(card.wavelengths_nm[band] - target) < 15.0
    if name not in ("jasper_ridge", "samson"):
        assert card.raw_label_map == scene_label_map(card.num_classes)
        assert fmt.sample_id == name


@pytest.mark.parametrize(
    ("name", "bands", "classes", "first_nm", "last_nm"),
    [
        ("indian_pines", 200, 16, 400.0, 2490.41), ("salinas", 204, 16, 361.64, 2490.41),
        ("pavia_u", 103, 9, 430.0, 860.0), ("pavia_c", 102, 9, 430.0, 860.0), ("ksc", 176, 13, 400.0, 2500.0),
        ("botswana", 145, 14, 447.17, 2355.14), ("houston2013", 144, 15, 380.0, 1050.0),
        ("jasper_ridge", 198, 4, 390.41, 2452.05), ("samson", 156, 3, 401.0, 889.0),
    ],
)
def test_scene_card_facts(name: str, bands: int, classes: int, first_nm: float, last_nm: float) -> None:
    card = DATASETS.get(name).card
    assert (card.num_bands, card.num_classes) == (bands, classes)
    assert card.wavelengths_nm[0] == pytest.approx(first_nm) and card.wavelengths_nm[-1] == pytest.approx(last_nm)


def test_water_absorption_gaps_of_aviris_cards() -> None:
    # Indian Pines drops its bands 104-108 and 150-163 (gaps of 6 and 15 channel spacings) and its last band 220.
    waves = np.asarray(DATASETS.get("indian_pines").card.wavelengths_nm)
    steps = np.diff(waves) / np.median(np.diff(waves))
    assert np.flatnonzero(steps > 1.5).tolist() == [102, 143]
    assert steps[102] == pytest.approx(6.0, abs=0.01) and steps[143] == pytest.approx(15.0, abs=0.01)


# --- Jasper Ridge / Samson layouts -------------------------------------------------------------------------------
UH, UW, UC, UK = 3, 4, 5, 2  # non-square, so a row-major / column-major mix-up cannot pass


def _unmixing_data(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cube = rng.integers(0, 5000, size=(UH, UW, UC)).astype(np.uint16)
    fractions = rng.dirichlet(np.ones(UK), size=(UH, UW))  # (H, W, K)
    return cube, fractions


def _column_major(array_hwx: np.ndarray) -> np.ndarray:
    """(H, W, X) -> (X, H*W) with pixels in MATLAB column-major order, as ``Y`` and ``A`` are stored."""
    return array_hwx.reshape(UH * UW, -1, order="F").T


def _unmixing_format(**kwargs) -> UnmixingSceneFormat:
    defaults = dict(sample_id="mix", cube=MatVariable("R.mat", "Y"), abundances=MatVariable("end.mat", "A"),
                    shape=(UH, UW, UC), num_classes=UK)
    return UnmixingSceneFormat(**{**defaults, **kwargs})


def _unmixing_card() -> DatasetCard:
    return scene_card("mix", wavelengths_nm=(400.0, 500.0, 550.0, 600.0, 650.0), class_names=("p", "q"),
                      shape=(UH, UW, UC), labelled_px=UH * UW, raw_label_map={0: 0, 1: 1}, description="",
                      citation="", licence="", how_to_obtain="")


def test_jasper_layout_column_major_with_scale_and_channel_check(tmp_path: Path) -> None:
    cube, fractions = _unmixing_data()
    channels = np.array([[4], [5], [6], [7], [9]], dtype=np.uint8)
    scipy.io.savemat(tmp_path / "R.mat", {"Y": _column_major(cube), "maxValue": np.array([[5000]], np.uint16),
                                          "SlectBands": channels})
    scipy.io.savemat(tmp_path / "end.mat", {"A": _column_major(fractions)})
    fmt, card = _unmixing_format(scale_key="maxValue", channels=("SlectBands", (4, 5, 6, 7, 9))), _unmixing_card()
    sample = fmt.read(fmt.discover(tmp_path, card)[0], card)
    np.testing.assert_allclose(sample.cube, cube.transpose(2, 0, 1) / 5000.0, rtol=1e-6)
    np.testing.assert_array_equal(sample.labels, fractions.argmax(axis=2))
    other = _unmixing_format(scale_key="maxValue", channels=("SlectBands", (1, 2, 3, 4, 5)))
    with pytest.raises(DataError, match="SlectBands"):
        other.read(other.discover(tmp_path, card)[0], card)


def test_samson_layout_abundances_rows_cols_classes_in_one_v73_file(tmp_path: Path) -> None:
    cube, fractions = _unmixing_data(2)
    save_mat73(tmp_path / "S.mat", {"Y": _column_major(cube.astype(np.float64) / 5000), "S_GT": fractions})
    fmt = _unmixing_format(cube=MatVariable("S.mat", "Y"), abundances=MatVariable("S.mat", "S_GT"))
    card = _unmixing_card()
    sample = fmt.read(fmt.discover(tmp_path, card)[0], card)
    np.testing.assert_allclose(sample.cube, cube.transpose(2, 0, 1) / 5000.0, rtol=1e-6)
    np.testing.assert_array_equal(sample.labels, fractions.argmax(axis=2))


def test_abundances_of_the_wrong_size_are_a_data_error(tmp_path: Path) -> None:
    cube, fractions = _unmixing_data()
    scipy.io.savemat(tmp_path / "R.mat", {"Y": _column_major(cube)})
    scipy.io.savemat(tmp_path / "end.mat", {"A": _column_major(fractions)[:, :-1]})
    fmt, card = _unmixing_format(), _unmixing_card()
    with pytest.raises(DataError, match=r"end\.mat: abundances 'A' have shape \(2, 11\)"):
        fmt.read(fmt.discover(tmp_path, card)[0], card)


# --- real files (skip without ../shared) -------------------------------------------------------------------------
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="real scene files (../shared/data/real) not present")


@needs_real
@pytest.mark.parametrize(
    ("name", "counts"), [("jasper_ridge", [3493, 3326, 2428, 753]), ("samson", [3015, 3666, 2344])]
)
def test_real_unmixing_scenes_class_counts(name: str, counts: list[int]) -> None:
    provider = DATASETS.get(name)
    fmt = provider.formats["mat"]
    sample = fmt.read(fmt.discover(REAL / name, provider.card)[0], provider.card)
    assert sample.cube.shape == (provider.card.num_bands, *fmt.shape[:2]) and sample.cube.dtype == np.float32
    assert np.bincount(sample.labels.ravel()).tolist() == counts
    assert 0.0 <= float(sample.cube.min()) and float(sample.cube.max()) < 1.5  # reflectance scale


@needs_real
@pytest.mark.parametrize(("name", "labelled", "classes"), [("indian_pines", 10249, 16), ("pavia_u", 42776, 9),
                                                           ("salinas", 54129, 16)])
def test_real_ground_truths_through_the_scene_reader(name: str, labelled: int, classes: int) -> None:
    provider = DATASETS.get(name)
    fmt = provider.formats["mat"]
    labels = fmt.read_labels(REAL / "scene_gt" / fmt.labels.file_name, provider.card)
    assert labels.shape == fmt.shape[:2] and labels.dtype == np.int64
    valid = labels != 255
    assert int(valid.sum()) == labelled
    assert sorted(np.unique(labels[valid]).tolist()) == list(range(classes))
