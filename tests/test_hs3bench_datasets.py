"""HS3-Bench datasets (hyko2, hsi_drive, hcv2): tiny files in each exact raw layout, read through the public API."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from hsbench.data import hs3bench
from hsbench.data.hs3bench import HCV2_CARD, HSI_DRIVE_CARD, HYKO2_CARD, Hcv2, HsiDrive, HyKo2
from hsbench.data.hs3bench.h5_format import Hs3BenchH5Format
from hsbench.data.hs3bench.hsd import read_hsd, read_hsd_header, write_hsd
from hsbench.data.hs3bench.hyko2 import LABEL_KEY
from hsbench.data.hs3bench.resources import resource_dir
from hsbench.data.synthetic_datasets import HSI_DRIVE_WAVELENGTHS_NM, HYKO2_WAVELENGTHS_NM, SyntheticDrive
from hsbench.errors import DataError
from hsbench.registry import DATASETS

H, W = 6, 8
RNG = np.random.default_rng(7)


# ---------------------------------------------------------------- writers of the real layouts (tiny images)
def write_hyko2_mat(path: Path, data: np.ndarray, labels: np.ndarray, *, label_key: str = LABEL_KEY) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"data": data, label_key: labels, "wavelengths": np.array(HYKO2_WAVELENGTHS_NM)})
    return path


def write_png(path: Path, ids: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids.astype(np.uint8)).save(path)
    return path


def write_mat_v73(path: Path, name: str, array: np.ndarray) -> Path:
    """An HDF5 .mat as MATLAB writes it: 512-byte header block, column-major data (h5py sees reversed axes)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset(name, data=array.T).attrs["MATLAB_class"] = np.bytes_("single")
    with path.open("r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by hsbench tests HDF5 schema 1.00 .".ljust(116))
    return path


def write_hsi_drive(root: Path, name: str, cube: np.ndarray, ids: np.ndarray, *, v73: bool = False) -> Path:
    base = root / "Image_dataset"
    (base / "cubes_fl32").mkdir(parents=True, exist_ok=True)
    mat = base / "cubes_fl32" / f"{name}_TC.mat"
    write_mat_v73(mat, "cube", cube) if v73 else scipy.io.savemat(mat, {"cube": cube})
    write_png(base / "labels" / f"{name}.png", ids)
    return base


def random_pca(height: int, width: int, bands: int, components: int = 3):
    scores = RNG.normal(size=(height, width, components)).astype(np.float32)
    coeffs = RNG.normal(size=(components, bands)).astype(np.float32)
    averages = RNG.uniform(0.2, 1.0, size=bands).astype(np.float32)
    full = (scores.reshape(-1, components) @ coeffs + averages).reshape(height, width, bands).transpose(2, 0, 1)
    return scores, coeffs, averages, full


def write_h5(path: Path, groups: dict[str, tuple[np.ndarray, np.ndarray]], *, metadata: bool = True) -> Path:
    with h5py.File(path, "w") as f:
        if metadata:
            f.create_group("metadata").create_dataset("min-val", data=np.zeros(3))
        for key, (image, labels) in groups.items():
            group = f.create_group(key)
            group.create_dataset("image", data=image)
            group.create_dataset("labels", data=labels)
    return path


def raw_ids(values: list[int]) -> np.ndarray:
    """An H x W label image cycling through ``values`` (row-major), so every id appears."""
    return np.resize(np.array(values, dtype=np.uint8), H * W).reshape(H, W)


def expected(values: list[int], mapping: dict[int, int]) -> np.ndarray:
    return np.resize(np.array([mapping[v] for v in values], dtype=np.int64), H * W).reshape(H, W)


# ---------------------------------------------------------------- package data and cards
@pytest.mark.parametrize(
    ("card", "split", "sizes"),
    [
        (HYKO2_CARD, "official", (81, 32, 49)),
        (HSI_DRIVE_CARD, "official", (451, 150, 151)),
        (HCV2_CARD, "hcv2", (949, 105, 276)),
        (HCV2_CARD, "hcv2_2024", (527, 105, 422)),
    ],
)
def test_official_split_sizes_match_the_csvs(card, split, sizes):
    folder = {"hyko2": "hyko2", "hsi_drive": "hsidrive", "hcv2": split}[card.name]
    official = card.official(split)
    for part, size in zip(("train", "val", "test"), sizes):
        csv = (resource_dir() / "splits" / folder / f"{part}_samples.csv").read_text().split()
        ids = official.part(part)
        assert len(ids) == len(csv) == size
        assert len(set(ids)) == size and not any(i.endswith((".mat", ".hsd")) for i in ids)


def test_cards_bands_classes_and_defaults():
    assert (HYKO2_CARD.num_bands, HYKO2_CARD.num_classes) == (15, 10)
    assert (HSI_DRIVE_CARD.num_bands, HSI_DRIVE_CARD.num_classes) == (25, 9)
    assert (HCV2_CARD.num_bands, HCV2_CARD.num_classes) == (128, 19)
    assert HCV2_CARD.official() is HCV2_CARD.official_splits["hcv2"]
    assert HCV2_CARD.official_splits["hcv2_2024"].val == HCV2_CARD.official_splits["hcv2"].val
    assert {c.ignore_index for c in (HYKO2_CARD, HSI_DRIVE_CARD, HCV2_CARD)} == {255}
    assert HSI_DRIVE_CARD.class_names == SyntheticDrive.card.class_names
    assert HYKO2_CARD.palette[0] == (128, 64, 128) and HSI_DRIVE_CARD.palette[7] == (255, 166, 0)
    assert (HYKO2_CARD.pseudo_rgb_bands, HSI_DRIVE_CARD.pseudo_rgb_bands) == ((14, 7, 0), (5, 2, 0))
    assert HCV2_CARD.pseudo_rgb_bands == (62, 18, 0)
    for card in (HYKO2_CARD, HSI_DRIVE_CARD, HCV2_CARD):
        assert card.citation and card.licence and card.how_to_obtain and card.sizes and card.description


def test_wavelengths_in_cube_order():
    assert HYKO2_CARD.wavelengths_nm == HYKO2_WAVELENGTHS_NM
    assert HCV2_CARD.wavelengths_nm == tuple(float(449 + 4 * i) for i in range(128))
    csv = (resource_dir() / "wavelengths" / "wave_hsidrive.csv").read_text().split()[1::2]
    assert float(csv[22]) == 564.36  # the newer header, shipped unchanged; the card takes the older 838.08
    assert HSI_DRIVE_CARD.wavelengths_nm[22] == 838.08
    assert HSI_DRIVE_CARD.wavelengths_nm == HSI_DRIVE_WAVELENGTHS_NM
    assert HSI_DRIVE_CARD.wavelengths_nm[:3] == (888.48, 897.66, 879.13)  # unsorted cube order kept


def test_registered_with_both_formats():
    for name, cls in (("hyko2", HyKo2), ("hsi_drive", HsiDrive), ("hcv2", Hcv2)):
        assert DATASETS.get(name) is cls
        assert list(cls.formats) == ["raw", "hs3bench_h5"]


# ---------------------------------------------------------------- HyKo2
def test_hyko2_raw_layout(tmp_path):
    data = RNG.uniform(0, 1, size=(H, W, 15))
    write_hyko2_mat(tmp_path / "vis" / "set-_00001_spec_annotated.mat", data, raw_ids(list(range(11))))
    fmt = HyKo2.formats["raw"]
    (item,) = fmt.discover(tmp_path, HYKO2_CARD)
    assert item.sample_id == "set-_00001_spec_annotated"
    sample = fmt.read(item, HYKO2_CARD)
    assert sample.cube.shape == (15, H, W) and sample.cube.dtype == np.float32
    np.testing.assert_array_equal(sample.cube, data.transpose(2, 0, 1).astype(np.float32))
    mapping = {0: 255, **{k: k - 1 for k in range(1, 11)}}
    np.testing.assert_array_equal(sample.labels, expected(list(range(11)), mapping))
    assert sample.labels.dtype == np.int64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": raw_ids([0, 1, 37])}, "label ids 37 (16 px) are not in the label map of hyko2"),
        ({"label_key": "label_spectral_reflectances"}, f"no variable '{LABEL_KEY}'"),
        ({"data": np.ones((H, W, 14))}, "expected numbers of shape (height, width, 15)"),
        ({"data": np.full((H, W, 15), np.nan)}, "NaN or infinite"),
        ({"labels": raw_ids([1, 2])[:, :-1]}, "do not match cube size"),
    ],
)
def test_hyko2_bad_input(tmp_path, change, message):
    args = {"data": np.ones((H, W, 15)), "labels": raw_ids([1, 2]), **change}
    path = write_hyko2_mat(tmp_path / "set-_bad.mat", args.pop("data"), args.pop("labels"), **args)
    (item,) = HyKo2.formats["raw"].discover(tmp_path, HYKO2_CARD)
    with pytest.raises(DataError, match="set-_bad.mat") as info:
        HyKo2.formats["raw"].read(item, HYKO2_CARD)
    assert message in str(info.value) and str(path) in str(info.value)


def test_hyko2_truncated_mat(tmp_path):
    path = write_hyko2_mat(tmp_path / "set-_cut.mat", np.ones((H, W, 15)), raw_ids([1]))
    path.write_bytes(path.read_bytes()[:400])  # cuts into the data variable
    (item,) = HyKo2.formats["raw"].discover(tmp_path, HYKO2_CARD)
    with pytest.raises(DataError, match=r"set-_cut\.mat: not a readable MATLAB file \(truncated or corrupt"):
        HyKo2.formats["raw"].read(item, HYKO2_CARD)


# ---------------------------------------------------------------- HSI-Drive
HSI_MAP = {0: 255, 1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 255, 9: 7, 10: 8}


@pytest.mark.parametrize("v73", [False, True], ids=["mat-v5", "mat-v7.3"])
def test_hsi_drive_raw_layout(tmp_path, v73):
    cube = RNG.uniform(0, 4.5, size=(25, H, W)).astype(np.float32)
    base = write_hsi_drive(tmp_path, "nf3122_147", cube, raw_ids(list(range(11))), v73=v73)
    fmt = HsiDrive.formats["raw"]
    for raw_dir in (tmp_path, base):  # --raw may name the parent of Image_dataset/ or Image_dataset/ itself
        (item,) = fmt.discover(raw_dir, HSI_DRIVE_CARD)
        assert item.sample_id == "nf3122_147"
        sample = fmt.read(item, HSI_DRIVE_CARD)
        np.testing.assert_array_equal(sample.cube, cube)
        np.testing.assert_array_equal(sample.labels, expected(list(range(11)), HSI_MAP))


def test_hsi_drive_v73_in_python_order_fails_the_shape_check(tmp_path):
    base = write_hsi_drive(tmp_path, "nf1", np.ones((25, H, W), np.float32), raw_ids([1]))
    mat = base / "cubes_fl32" / "nf1_TC.mat"
    write_mat_v73(mat, "cube", np.ones((W, H, 25), np.float32))  # stored (25, H, W) as h5py sees it: not MATLAB's
    (item,) = HsiDrive.formats["raw"].discover(tmp_path, HSI_DRIVE_CARD)
    with pytest.raises(DataError, match=r"nf1_TC\.mat: variable 'cube' is float32 \(8, 6, 25\), expected"):
        HsiDrive.formats["raw"].read(item, HSI_DRIVE_CARD)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (
            lambda b: write_png(b / "labels" / "nf1.png", raw_ids([1, 11])),
            r"nf1\.png: label ids 11 \(24 px\) are not in the label map of hsi_drive",
        ),
        (
            lambda b: Image.new("RGB", (W, H)).save(b / "labels" / "nf1.png"),
            r"nf1\.png: RGB image; labels must be class ids in a single-channel",
        ),
        (lambda b: (b / "labels" / "nf1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken"), r"nf1\.png: cannot read"),
        (lambda b: (b / "cubes_fl32" / "nf1_TC.mat").unlink(), r"nf1_TC\.mat: file not found"),
        (lambda b: scipy.io.savemat(b / "cubes_fl32" / "nf1_TC.mat", {"img": np.ones(3)}), r"no variable 'cube'"),
        (lambda b: scipy.io.savemat(b / "cubes_fl32" / "nf1_TC.mat", {"cube": np.ones((24, H, W))}), "expected"),
        (lambda b: write_png(b / "labels" / "nf1.png", np.ones((H, W + 1))), "do not match cube size"),
    ],
)
def test_hsi_drive_bad_input(tmp_path, corrupt, message):
    base = write_hsi_drive(tmp_path, "nf1", np.ones((25, H, W), np.float32), raw_ids([1, 2]))
    corrupt(base)
    (item,) = HsiDrive.formats["raw"].discover(tmp_path, HSI_DRIVE_CARD)
    with pytest.raises(DataError, match=message):
        HsiDrive.formats["raw"].read(item, HSI_DRIVE_CARD)


def test_hsi_drive_wrong_folder(tmp_path):
    with pytest.raises(DataError, match="expected Image_dataset/cubes_fl32/ and Image_dataset/labels/"):
        HsiDrive.formats["raw"].discover(tmp_path, HSI_DRIVE_CARD)


# ---------------------------------------------------------------- the .hsd codec
def test_hsd_round_trip_and_header(tmp_path):
    scores, coeffs, averages, full = random_pca(5, 7, 9, components=4)
    header = write_hsd(tmp_path / "a.hsd", scores, coeffs, averages)
    assert read_hsd_header(tmp_path / "a.hsd") == header
    assert (header.height, header.width, header.bands, header.components) == (5, 7, 9, 4)
    assert (header.start_nm, header.step_nm, header.end_nm) == (449, 4.0, 481)
    cube = read_hsd(tmp_path / "a.hsd", bands=9)
    assert cube.dtype == np.float32 and cube.flags.c_contiguous
    # Bit-identical with this machine's BLAS (benchmarks/bench_hsd_reader.py checks it at full size); the test
    # allows for another BLAS summing the few products in another order.
    np.testing.assert_allclose(cube, full, rtol=1e-6, atol=1e-6)


def test_hsd_step_two_keeps_even_rows_and_columns(tmp_path):
    scores, coeffs, averages, full = random_pca(5, 7, 3)
    write_hsd(tmp_path / "odd.hsd", scores, coeffs, averages)
    halved = read_hsd(tmp_path / "odd.hsd", step=2)
    assert halved.shape == (3, 2, 3)  # 5 x 7 -> 2 x 3: rows 0, 2 and columns 0, 2, 4
    np.testing.assert_allclose(halved, full[:, [0, 2]][:, :, [0, 2, 4]], rtol=1e-6, atol=1e-6)


def test_hsd_bad_files(tmp_path):
    scores, coeffs, averages, _ = random_pca(4, 4, 5)
    path = tmp_path / "x.hsd"
    size = write_hsd(path, scores, coeffs, averages).file_bytes
    path.write_bytes(path.read_bytes()[:-10])
    truncated = rf"x\.hsd: truncated .hsd file.*implies {size} bytes, the file has {size - 10}"
    with pytest.raises(DataError, match=truncated):
        read_hsd(path)
    write_hsd(path, scores, coeffs, averages)
    with pytest.raises(DataError, match=r"x\.hsd: .hsd header says 5 bands, the dataset card expects 128"):
        read_hsd(path, bands=128)
    path.write_bytes(np.array([-4, 4, 5, 3, 449], "<i4").tobytes() + b"\0" * 100)
    with pytest.raises(DataError, match=r"x\.hsd: corrupt .hsd header: height = -4"):
        read_hsd(path)
    path.write_bytes(b"\1\0")
    with pytest.raises(DataError, match=r"x\.hsd: truncated .hsd file: 2 bytes, but the header alone needs 28"):
        read_hsd(path)


# ---------------------------------------------------------------- HCV2
def write_hcv2(folder: Path, stem: str, ids: np.ndarray, *, label_dir: Path | None = None) -> np.ndarray:
    scores, coeffs, averages, full = random_pca(H, W, 128)
    folder.mkdir(parents=True, exist_ok=True)
    write_hsd(folder / f"{stem}.hsd", scores, coeffs, averages)
    write_png((label_dir or folder) / f"rgb{stem}_gray.png", ids)
    return full


def test_hcv2_raw_layout_halves_cube_and_labels(tmp_path):
    ids = raw_ids([*range(19), 255])
    full_a = write_hcv2(tmp_path / "train", "20210409_140341_03", ids)
    full_b = write_hcv2(tmp_path / "test" / "images", "20210409_140722_03", ids, label_dir=tmp_path / "test" / "gt")
    items = Hcv2.formats["raw"].discover(tmp_path, HCV2_CARD)
    assert [i.sample_id for i in items] == ["20210409_140341_03", "20210409_140722_03"]
    assert items[1].paths[1] == tmp_path / "test" / "gt" / "rgb20210409_140722_03_gray.png"
    for item, full in zip(items, (full_a, full_b)):
        sample = Hcv2.formats["raw"].read(item, HCV2_CARD)
        assert sample.cube.shape == (128, H // 2, W // 2)
        np.testing.assert_allclose(sample.cube, full[:, 0::2, 0::2], rtol=1e-6, atol=1e-6)
        mapping = {**{i: i for i in range(19)}, 255: 255}
        np.testing.assert_array_equal(sample.labels, expected([*range(19), 255], mapping)[0::2, 0::2])


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (
            raw_ids([0, 19, 200]),
            r"rgbs_gray\.png: label ids 19 \(4 px\), 200 \(4 px\) are not in the label map of hcv2",
        ),
        (np.zeros((H, W + 2)), r"rgbs_gray\.png: labels are 6 x 10 px, but the cube s\.hsd is 6 x 8 px"),
    ],
)
def test_hcv2_bad_labels(tmp_path, ids, message):
    write_hcv2(tmp_path, "s", ids)
    (item,) = Hcv2.formats["raw"].discover(tmp_path, HCV2_CARD)
    with pytest.raises(DataError, match=message):
        Hcv2.formats["raw"].read(item, HCV2_CARD)


def test_hcv2_missing_label_and_nan_cube(tmp_path):
    write_hcv2(tmp_path, "s", raw_ids([1]))
    (tmp_path / "rgbs_gray.png").unlink()
    (item,) = Hcv2.formats["raw"].discover(tmp_path, HCV2_CARD)
    with pytest.raises(DataError, match=r"rgbs_gray\.png: label image not found"):
        Hcv2.formats["raw"].read(item, HCV2_CARD)
    scores, coeffs, averages, _ = random_pca(H, W, 128)
    averages[3] = np.nan
    write_hsd(tmp_path / "s.hsd", scores, coeffs, averages)
    write_png(tmp_path / "rgbs_gray.png", raw_ids([1]))
    with pytest.raises(DataError, match=r"s\.hsd.*NaN or infinite"):
        Hcv2.formats["raw"].read(item, HCV2_CARD)


# ---------------------------------------------------------------- HS3-Bench HDF5
def test_h5_format_reads_groups_of_all_three_files(tmp_path):
    image = RNG.uniform(0, 1, size=(H, W, 15)).astype(np.float16)
    write_h5(tmp_path / "hyko2_train.h5", {"set-_1_spec_annotated.mat": (image, raw_ids([0, 3, 10]))})
    write_h5(tmp_path / "hyko2_test.h5", {"set-_2_spec_annotated.mat": (image, raw_ids([5]))}, metadata=False)
    fmt = HyKo2.formats["hs3bench_h5"]
    items = fmt.discover(tmp_path, HYKO2_CARD)
    assert [(i.sample_id, i.key, i.paths[0].name) for i in items] == [
        ("set-_1_spec_annotated", "set-_1_spec_annotated.mat", "hyko2_train.h5"),
        ("set-_2_spec_annotated", "set-_2_spec_annotated.mat", "hyko2_test.h5"),
    ]
    sample = fmt.read(items[0], HYKO2_CARD)
    assert sample.cube.dtype == np.float32 and sample.cube.shape == (15, H, W)
    np.testing.assert_array_equal(sample.cube, image.astype(np.float32).transpose(2, 0, 1))
    np.testing.assert_array_equal(sample.labels, expected([0, 3, 10], {0: 255, 3: 2, 10: 9}))


def test_h5_format_hsi_drive_remap_and_hcv2_halving(tmp_path):
    write_h5(tmp_path / "hsidrive_val.h5", {"nf1": (np.ones((H, W, 25), np.float32), raw_ids(list(range(11))))})
    (item,) = HsiDrive.formats["hs3bench_h5"].discover(tmp_path, HSI_DRIVE_CARD)
    sample = HsiDrive.formats["hs3bench_h5"].read(item, HSI_DRIVE_CARD)
    np.testing.assert_array_equal(sample.labels, expected(list(range(11)), HSI_MAP))
    image = RNG.uniform(size=(H, W, 128)).astype(np.float32)
    write_h5(tmp_path / "hcv2_train.h5", {"a.hsd": (image, raw_ids([1, 255]))})
    (item,) = Hcv2.formats["hs3bench_h5"].discover(tmp_path, HCV2_CARD)
    as_stored = Hcv2.formats["hs3bench_h5"].read(item, HCV2_CARD)  # 6 x 8 is not the raw size: kept as it is
    assert item.sample_id == "a" and as_stored.cube.shape == (128, H, W)
    halving = Hs3BenchH5Format("hcv2", id_suffix=".hsd", halve_size=(H, W))
    halved = halving.read(item, HCV2_CARD)
    np.testing.assert_array_equal(halved.cube, image.transpose(2, 0, 1)[:, ::2, ::2])
    np.testing.assert_array_equal(halved.labels, expected([1, 255], {1: 1, 255: 255})[::2, ::2])


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"nf1": (np.ones((H, W, 24), np.float32), raw_ids([1]))}, r"\[nf1\]: image has shape \(6, 8, 24\)"),
        (
            {"nf1": (np.ones((H, W, 25), np.float32), raw_ids([12]))},
            r"\[nf1\]: label ids 12 \(48 px\) are not in the label map",
        ),
        ({"nf1": (np.full((H, W, 25), np.inf, np.float32), raw_ids([1]))}, r"\[nf1\].*NaN or infinite"),
    ],
)
def test_h5_format_bad_samples(tmp_path, groups, message):
    write_h5(tmp_path / "hsidrive_train.h5", groups)
    (item,) = HsiDrive.formats["hs3bench_h5"].discover(tmp_path, HSI_DRIVE_CARD)
    with pytest.raises(DataError, match=r"hsidrive_train\.h5 " + message):
        HsiDrive.formats["hs3bench_h5"].read(item, HSI_DRIVE_CARD)


def test_h5_format_bad_files(tmp_path):
    fmt = HsiDrive.formats["hs3bench_h5"]
    with pytest.raises(DataError, match="none of the HS3-Bench HDF5 files hsidrive_train.h5, hsidrive_val.h5"):
        fmt.discover(tmp_path, HSI_DRIVE_CARD)
    with h5py.File(tmp_path / "hsidrive_train.h5", "w") as f:
        f.create_group("nf1").create_dataset("image", data=np.ones((H, W, 25)))
    (item,) = fmt.discover(tmp_path, HSI_DRIVE_CARD)
    with pytest.raises(DataError, match=r"hsidrive_train\.h5 \[nf1\]: no dataset 'labels' in the sample group"):
        fmt.read(item, HSI_DRIVE_CARD)
    write_h5(tmp_path / "hsidrive_val.h5", {"nf1": (np.ones((H, W, 25)), raw_ids([1]))})
    with pytest.raises(DataError, match=r"hsidrive_val\.h5: sample 'nf1' is also in .*hsidrive_train\.h5"):
        fmt.discover(tmp_path, HSI_DRIVE_CARD)
    (tmp_path / "hsidrive_val.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(DataError, match=r"hsidrive_val\.h5: cannot open the HDF5 file"):
        fmt.discover(tmp_path, HSI_DRIVE_CARD)


# ---------------------------------------------------------------- end to end through the prepared cache
@pytest.mark.skipif(importlib.util.find_spec("hsbench.data.prepared") is None, reason="no prepared cache module")
def test_prepare_tiny_hsi_drive_and_open(tmp_path):
    from hsbench.data.prepared import prepare_dataset

    official = HSI_DRIVE_CARD.official()
    names = [official.train[0], official.val[0]]
    cubes = {n: RNG.uniform(0, 4.5, size=(25, H, W)).astype(np.float32) for n in names}
    for n in names:
        write_hsi_drive(tmp_path / "raw", n, cubes[n], raw_ids(list(range(11))), v73=n == names[1])
    report = prepare_dataset(HsiDrive, tmp_path / "raw", tmp_path / "data", progress=False)
    assert sorted(report.prepared) == sorted(names) and not report.bad
    assert len(report.missing) == 752 - 2  # the official lists name 752 images; the rest were not there
    dataset = HsiDrive.open(data_root=tmp_path / "data")
    for n in names:
        sample = dataset.load(n)
        np.testing.assert_array_equal(sample.cube, cubes[n])
        np.testing.assert_array_equal(sample.labels, expected(list(range(11)), HSI_MAP))


def test_public_api_exports():
    assert set(hs3bench.__all__) >= {"HyKo2", "HsiDrive", "Hcv2", "read_hsd", "write_hsd", "IGNORE_INDEX"}
