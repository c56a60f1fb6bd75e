"""hyperseg's extra datasets (hsi_road, whu_ohs): tiny TIFFs in each exact distribution layout, prepared and loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from hsbench.cli import main
from hsbench.data.hs3bench import HSI_ROAD_CARD, WHU_OHS_CARD, HsiRoad, WhuOhs
from hsbench.data.hs3bench.folder_split import split_from_ids
from hsbench.data.prepared import prepare_dataset
from hsbench.errors import DataError
from hsbench.registry import DATASETS
from hsbench.splits import make_split

H, W = 6, 8
RNG = np.random.default_rng(3)


# ---------------------------------------------------------------- writers of the distribution layouts
def write_tif(path: Path, array: np.ndarray, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, array, **options)
    return path


def write_hsi_road(root: Path, serial: str, cube: np.ndarray, mask: np.ndarray) -> None:
    """``hsi_road/images/<serial>_nir.tif`` as (25, H, W) uint8 pages and ``masks/<serial>_nir.tif`` (H, W)."""
    write_tif(root / "hsi_road" / "images" / f"{serial}_nir.tif", cube)
    write_tif(root / "hsi_road" / "masks" / f"{serial}_nir.tif", mask)


def write_whu_ohs(root: Path, part: str, name: str, cube_hwc: np.ndarray, labels: np.ndarray, *,
                  planar: bool = False) -> None:
    """``<part>/image/<name>.tif`` (GDAL-style pixel-interleaved, or planar) and ``<part>/label/<name>.tif``."""
    image = root / part / "image" / f"{name}.tif"
    if planar:
        write_tif(image, cube_hwc.transpose(2, 0, 1), photometric="minisblack", planarconfig="separate")
    else:
        write_tif(image, cube_hwc, photometric="minisblack", planarconfig="contig")
    write_tif(root / part / "label" / f"{name}.tif", labels)


def cycle(values: list[int], dtype=np.uint8) -> np.ndarray:
    return np.resize(np.array(values, dtype=dtype), (H, W))


# ---------------------------------------------------------------- cards
def test_cards_and_registration():
    assert DATASETS.get("hsi_road") is HsiRoad and DATASETS.get("whu_ohs") is WhuOhs
    assert HSI_ROAD_CARD.num_bands == 25 and HSI_ROAD_CARD.wavelengths_nm[0] == 600.0
    assert HSI_ROAD_CARD.wavelengths_nm[-1] == 960.0 and HSI_ROAD_CARD.class_names == ("not_road", "road")
    official = HSI_ROAD_CARD.official()
    assert (len(official.train), len(official.val), len(official.test)) == (1848, 0, 1241)
    assert official.train[:2] == ("000033", "000041") and not set(official.train) & set(official.test)
    assert WHU_OHS_CARD.num_bands == 32 and WHU_OHS_CARD.num_classes == 24
    assert WHU_OHS_CARD.wavelengths_nm[0] == 466.0 and WHU_OHS_CARD.wavelengths_nm[-1] == 940.0
    assert [WHU_OHS_CARD.wavelengths_nm[b] for b in WHU_OHS_CARD.pseudo_rgb_bands] == [670.0, 566.0, 480.0]
    assert WHU_OHS_CARD.class_names[0] == "ocean" and WHU_OHS_CARD.class_names[-1] == "bare_rock"
    assert WHU_OHS_CARD.palette[0] == (161, 161, 161) and WHU_OHS_CARD.ignore_index == 255
    for card in (HSI_ROAD_CARD, WHU_OHS_CARD):
        assert card.citation and card.licence and f"hsbench prepare {card.name} --raw" in card.how_to_obtain


# ---------------------------------------------------------------- hsi_road
def test_hsi_road_prepare_and_load(tmp_path):
    train, test = HSI_ROAD_CARD.official().train[0], HSI_ROAD_CARD.official().test[0]
    cubes = {n: RNG.integers(0, 256, size=(25, H, W), dtype=np.uint8) for n in (train, test)}
    for n in (train, test):
        write_hsi_road(tmp_path / "raw", n, cubes[n], cycle([0, 1]))
    report = prepare_dataset(HsiRoad, tmp_path / "raw", tmp_path / "data", progress=False)
    assert sorted(report.prepared) == sorted([train, test]) and not report.bad
    dataset = HsiRoad.open(data_root=tmp_path / "data")
    sample = dataset.load(train)
    np.testing.assert_allclose(sample.cube, cubes[train].astype(np.float32) / 255, rtol=1e-6)
    np.testing.assert_array_equal(sample.labels, cycle([0, 1]).astype(np.int64))


def test_hsi_road_raw_may_name_the_hsi_road_folder(tmp_path):
    write_hsi_road(tmp_path, "000000", RNG.integers(0, 256, size=(25, H, W), dtype=np.uint8), cycle([0, 1]))
    items = HsiRoad.formats["raw"].discover(tmp_path / "hsi_road", HSI_ROAD_CARD)
    assert [i.sample_id for i in items] == ["000000"]


def _assert_read_fails(fmt, root, card, message: str) -> None:
    """The one item found under ``root`` fails to read with a one-line DataError matching ``message``."""
    (item,) = fmt.discover(root, card)
    with pytest.raises(DataError, match=message) as info:
        fmt.read(item, card)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no_mask", r"masks/000000_nir\.tif: label raster not found$"),
        ("bands", r"images/000000_nir\.tif: image raster is uint8 \(16, 6, 8\).*expected 25 bands"),
        ("ids", r"masks/000000_nir\.tif.*\b2\b"),
        ("truncated", r"images/000000_nir\.tif: cannot read the image .*truncated or not a TIFF"),
    ],
)
def test_hsi_road_bad_input_names_the_file(tmp_path, damage, message):
    bands = 16 if damage == "bands" else 25
    write_hsi_road(tmp_path, "000000", RNG.integers(0, 256, size=(bands, H, W), dtype=np.uint8),
                   cycle([0, 1, 2] if damage == "ids" else [0, 1]))
    base = tmp_path / "hsi_road"
    if damage == "no_mask":
        (base / "masks" / "000000_nir.tif").unlink()
    if damage == "truncated":
        image = base / "images" / "000000_nir.tif"
        image.write_bytes(image.read_bytes()[:20])
    _assert_read_fails(HsiRoad.formats["raw"], tmp_path, HSI_ROAD_CARD, message)


def test_hsi_road_wrong_folder(tmp_path):
    with pytest.raises(DataError, match="expected hsi_road/images/ and hsi_road/masks/"):
        HsiRoad.formats["raw"].discover(tmp_path, HSI_ROAD_CARD)


# ---------------------------------------------------------------- whu_ohs
def test_whu_ohs_prepare_load_and_folder_split(tmp_path):
    raw = tmp_path / "raw" / "WHU-OHS"
    cubes = {}
    for part, planar in (("tr", False), ("val", True), ("ts", False)):
        cubes[part] = RNG.integers(0, 10000, size=(H, W, 32), dtype=np.int16)
        write_whu_ohs(raw, part, f"S1_{part}", cubes[part], cycle(list(range(25))), planar=planar)
    report = prepare_dataset(WhuOhs, tmp_path / "raw", tmp_path / "data", progress=False)
    assert sorted(report.prepared) == ["test/S1_ts", "train/S1_tr", "val/S1_val"] and not report.bad
    dataset = WhuOhs.open(data_root=tmp_path / "data")
    official = dataset.card.official()
    assert (official.train, official.val, official.test) == (("train/S1_tr",), ("val/S1_val",), ("test/S1_ts",))
    for part, sample_id in (("tr", "train/S1_tr"), ("val", "val/S1_val")):
        sample = dataset.load(sample_id)
        expected_cube = cubes[part].transpose(2, 0, 1).astype(np.float32) / 10000
        np.testing.assert_allclose(sample.cube, expected_cube, rtol=1e-6)
    labels = dataset.load("test/S1_ts").labels
    expected = cycle(list(range(25))).astype(np.int64) - 1
    np.testing.assert_array_equal(labels, np.where(expected < 0, 255, expected))
    split = make_split(dataset, "official", seed=0)
    assert list(split.parts["test"]) == ["test/S1_ts"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no_label", r"train/label/t1\.tif: label raster not found$"),
        ("bands", r"train/image/t1\.tif: image raster is int16 \(6, 8, 31\).*expected 32 bands"),
        ("ids", r"train/label/t1\.tif.*\b25\b"),
    ],
)
def test_whu_ohs_bad_input_names_the_file(tmp_path, damage, message):
    bands = 31 if damage == "bands" else 32
    write_whu_ohs(tmp_path, "train", "t1", RNG.integers(0, 10000, size=(H, W, bands), dtype=np.int16),
                  cycle([0, 1, 25] if damage == "ids" else [0, 1]))
    if damage == "no_label":
        (tmp_path / "train" / "label" / "t1.tif").unlink()
    _assert_read_fails(WhuOhs.formats["raw"], tmp_path, WHU_OHS_CARD, message)


def test_whu_ohs_layout_errors(tmp_path):
    with pytest.raises(DataError, match="expected train/, val/ and test/ .*holding image/ and label/"):
        WhuOhs.formats["raw"].discover(tmp_path, WHU_OHS_CARD)
    (tmp_path / "tr" / "image").mkdir(parents=True)
    (tmp_path / "train" / "image").mkdir(parents=True)
    with pytest.raises(DataError, match="both tr/ and train/ hold the train tiles"):
        WhuOhs.formats["raw"].discover(tmp_path, WHU_OHS_CARD)
    with pytest.raises(DataError, match="'x' does not start with train/"):
        split_from_ids(["x"])


# ---------------------------------------------------------------- command line
def test_cli_prepare_and_not_prepared_message(tmp_path, capsys):
    write_hsi_road(tmp_path / "raw", "000033", RNG.integers(0, 256, size=(25, H, W), dtype=np.uint8), cycle([0, 1]))
    data = tmp_path / "data"
    run = ["run", "--strategy", "in_domain", "--dataset", "hsi_road", "--data-root", str(data), "--no-progress"]
    assert main([*run, "--results", str(tmp_path / "r")]) != 0
    err = capsys.readouterr().err
    assert "hsiroad.oss-cn-hongkong.aliyuncs.com/hsi_road.tar.gz" in err and "hsbench prepare hsi_road --raw" in err
    code = main(["prepare", "hsi_road", "--raw", str(tmp_path / "raw"), "--data-root", str(data), "--no-progress"])
    assert code == 1  # one sample prepared; the rest of the official lists is missing
    assert HsiRoad.open(data_root=data).sample_ids == ("000033",)
