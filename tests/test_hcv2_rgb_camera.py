"""``hcv2:camera=rgb``: HCV2's RGB camera images as a 3-band dataset of their own (HS3-Bench's "DL3+(BB) RGB").

Tiny files in the exact HCV2 layout (``<stem>.hsd``, ``rgb<stem>_gray.png``, ``rgb<stem>.jpg``) go through
``hsbench prepare`` and back out of the prepared cache; JPEG is lossy, so expected pixels are what PIL decodes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hsbench.cli import main
from hsbench.data.dataset_spec import open_dataset
from hsbench.data.hs3bench.hcv2 import (
    HCV2_CARD,
    HCV2_RGB_CARD,
    RGB_NOMINAL_WAVELENGTHS_NM,
    Hcv2,
    Hcv2RgbCamera,
    rgb_image_name,
)
from hsbench.data.hs3bench.hsd import write_hsd
from hsbench.data.prepared import prepare_dataset, read_manifest
from hsbench.errors import ConfigError, DataError

H, W = 9, 11  # odd on purpose: halving keeps rows/columns 0, 2, 4, ... and drops the last odd one (4 x 5)
RNG = np.random.default_rng(11)
STEMS = tuple(sorted(HCV2_CARD.official("hcv2").train[:2] + HCV2_CARD.official("hcv2").test[:1]))
RAW_IDS = np.array([*range(19), 255], dtype=np.uint8)


def write_sample(folder: Path, stem: str, *, image_size: tuple[int, int] = (H, W), jpeg: bool = True) -> None:
    """One HCV2 sample as distributed: PCA-compressed cube, trainId label image and registered RGB JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    scores = RNG.normal(size=(H, W, 3)).astype(np.float32)
    coeffs = RNG.normal(size=(3, 128)).astype(np.float32)
    averages = RNG.uniform(0.2, 1.0, size=128).astype(np.float32)
    write_hsd(folder / f"{stem}.hsd", scores, coeffs, averages)
    Image.fromarray(RNG.choice(RAW_IDS, size=(H, W))).save(folder / f"rgb{stem}_gray.png")
    if jpeg:
        pixels = RNG.integers(0, 256, size=(*image_size, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / rgb_image_name(stem), quality=90)


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    folder = tmp_path / "raw"
    for stem in STEMS:
        write_sample(folder / "train", stem)
    return folder


def decoded(path: Path) -> np.ndarray:
    """What the dataset must hand out: PIL's decoded pixels, halved like the cubes, bands first, / 255."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    return (pixels[: 2 * (H // 2) : 2, : 2 * (W // 2) : 2].transpose(2, 0, 1) / 255.0).astype(np.float32)


def prepare_both(raw: Path, root: Path) -> None:
    for provider in (Hcv2, Hcv2RgbCamera):
        report = prepare_dataset(provider, raw, root, progress=False)
        assert sorted(report.prepared) == sorted(STEMS) and not report.bad


def test_card_is_three_nominal_rgb_bands_with_the_cube_variants_classes_and_splits() -> None:
    card = HCV2_RGB_CARD
    assert card.name == "hcv2:camera=rgb" and card.num_bands == 3
    assert card.wavelengths_nm == RGB_NOMINAL_WAVELENGTHS_NM == (610.0, 540.0, 465.0)
    assert card.pseudo_rgb_bands == (0, 1, 2)
    assert "RGB camera" in card.description and "nominal" in card.description and "parentheses" in card.description
    assert "hsbench prepare hcv2:camera=rgb" in card.how_to_obtain and "hs3bench_h5" not in card.how_to_obtain
    assert card.class_names == HCV2_CARD.class_names and card.raw_label_map == HCV2_CARD.raw_label_map
    assert card.official_splits == HCV2_CARD.official_splits and card.ignore_index == HCV2_CARD.ignore_index


def test_rgb_variant_opens_with_three_bands_of_jpeg_pixels_over_255(raw: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    prepare_both(raw, root)
    dataset = open_dataset("hcv2:camera=rgb", root)
    assert dataset.card is HCV2_RGB_CARD and dataset.sample_ids == STEMS
    for stem in STEMS:
        cube = np.asarray(dataset.load(stem).cube)
        assert cube.dtype == np.float32 and cube.shape == (3, H // 2, W // 2)
        assert 0.0 <= cube.min() and cube.max() <= 1.0
        np.testing.assert_allclose(cube, decoded(raw / "train" / rgb_image_name(stem)), rtol=0, atol=1e-7)


def test_rgb_labels_equal_the_cube_variants_for_the_same_id(raw: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    prepare_both(raw, root)
    cubes, rgb = open_dataset("hcv2", root), open_dataset("hcv2:camera=rgb", root)
    assert cubes.card.num_bands == 128 and rgb.sample_ids == cubes.sample_ids == STEMS
    for stem in STEMS:
        labels = rgb.load(stem).labels
        np.testing.assert_array_equal(labels, cubes.load(stem).labels)
        assert set(np.unique(labels)) <= {*range(19), 255} and labels.shape == (H // 2, W // 2)
    # camera=hsi is the default, spelled out
    assert open_dataset("hcv2:camera=hsi", root).fingerprint == cubes.fingerprint


def test_fingerprints_and_caches_differ_from_the_cube_variant(raw: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    prepare_both(raw, root)
    assert open_dataset("hcv2:camera=rgb", root).fingerprint != open_dataset("hcv2", root).fingerprint
    assert read_manifest(root / "hcv2:camera=rgb").dataset == "hcv2:camera=rgb"
    assert read_manifest(root / "hcv2").dataset == "hcv2"


def test_prepare_cli_takes_the_spec_caches_separately_with_hashes_and_reopens(raw: Path, tmp_path: Path,
                                                                              capsys) -> None:
    root = tmp_path / "data"
    args = ["--raw", str(raw), "--data-root", str(root), "--no-progress"]
    code = main(["prepare", "hcv2:camera=rgb", *args])
    assert code == 1  # three samples prepared; the rest of the official lists is missing
    out = capsys.readouterr().out
    assert "hcv2:camera=rgb: prepared 3, skipped 0" in out
    assert not (root / "hcv2").exists()  # the cube cache is untouched: nothing of the RGB variant lands there
    manifest = json.loads((root / "hcv2:camera=rgb" / "manifest.json").read_text())
    assert {s["id"] for s in manifest["samples"]} == set(STEMS)
    for entry in manifest["samples"]:
        assert entry["shape"] == [3, H // 2, W // 2] and set(entry["files"]) == {"cube.npy", "labels.npy"}
    assert main(["prepare", "hcv2:camera=rgb", "--verify", "--data-root", str(root), "--no-progress"]) == 0
    assert main(["prepare", "hcv2:camera=rgb", *args]) == 1
    assert "prepared 0, skipped 3 already prepared" in capsys.readouterr().out
    reopened = open_dataset("hcv2:camera=rgb", root)
    assert reopened.sample_ids == STEMS and reopened.card.num_bands == 3
    with pytest.raises(DataError, match=r"dataset 'hcv2' is not prepared"):  # the cube variant stays separate
        open_dataset("hcv2", root)


def test_rgb_variant_not_prepared_names_its_own_prepare_command(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"hsbench prepare hcv2:camera=rgb --raw"):
        open_dataset("hcv2:camera=rgb", tmp_path / "empty")


def test_missing_jpeg_names_the_file_and_says_the_rgb_images_are_needed(tmp_path: Path, capsys) -> None:
    raw = tmp_path / "raw"
    write_sample(raw, STEMS[0], jpeg=False)
    (item,) = Hcv2RgbCamera.formats["raw"].discover(raw, HCV2_RGB_CARD)
    message = rf"rgb{STEMS[0]}\.jpg: RGB camera image not found; hcv2:camera=rgb reads the RGB camera images"
    with pytest.raises(DataError, match=message):
        Hcv2RgbCamera.formats["raw"].read(item, HCV2_RGB_CARD)
    args = ["--raw", str(raw), "--data-root", str(tmp_path / "data"), "--no-progress"]
    assert main(["prepare", "hcv2:camera=rgb", *args]) == 1
    out = capsys.readouterr().out
    assert "1 bad file(s), not prepared" in out and f"rgb{STEMS[0]}.jpg: RGB camera image not found" in out
    assert "HCV2 distribution" in out


def test_jpeg_of_another_size_than_the_labels_names_both_sizes(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_sample(raw, STEMS[0], image_size=(H, W + 3))
    (item,) = Hcv2RgbCamera.formats["raw"].discover(raw, HCV2_RGB_CARD)
    message = (rf"rgb{STEMS[0]}\.jpg: the RGB image is 9 x 14 px, but the labels rgb{STEMS[0]}_gray\.png are "
               r"9 x 11 px")
    with pytest.raises(DataError, match=message):
        Hcv2RgbCamera.formats["raw"].read(item, HCV2_RGB_CARD)


def test_greyscale_or_damaged_jpeg_names_the_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_sample(raw, STEMS[0])
    path = raw / rgb_image_name(STEMS[0])
    (item,) = Hcv2RgbCamera.formats["raw"].discover(raw, HCV2_RGB_CARD)
    Image.fromarray(np.zeros((H, W), dtype=np.uint8)).save(path)
    with pytest.raises(DataError, match=rf"rgb{STEMS[0]}\.jpg: L image; .* must be 8-bit RGB"):
        Hcv2RgbCamera.formats["raw"].read(item, HCV2_RGB_CARD)
    path.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=rf"rgb{STEMS[0]}\.jpg: cannot read the RGB camera image"):
        Hcv2RgbCamera.formats["raw"].read(item, HCV2_RGB_CARD)


def test_jpeg_found_below_the_raw_folder_when_not_beside_its_labels(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_sample(raw / "gt", STEMS[0])
    moved = raw / "images" / rgb_image_name(STEMS[0])
    moved.parent.mkdir()
    (raw / "gt" / rgb_image_name(STEMS[0])).rename(moved)
    (item,) = Hcv2RgbCamera.formats["raw"].discover(raw, HCV2_RGB_CARD)
    assert item.paths == (moved, raw / "gt" / f"rgb{STEMS[0]}_gray.png")


def test_unknown_camera_lists_the_valid_ones(tmp_path: Path, capsys) -> None:
    with pytest.raises(ConfigError, match=r"unknown hcv2 camera 'rbg' \(did you mean 'rgb'\?\); valid: hsi, rgb"):
        open_dataset("hcv2:camera=rbg", tmp_path)
    with pytest.raises(ConfigError, match=r"no option 'camra' \(did you mean 'camera'\?\); it takes camera=hsi\|rgb"):
        open_dataset("hcv2:camra=rgb", tmp_path)
    assert main(["prepare", "hcv2:camera=rbg", "--raw", str(tmp_path), "--data-root", str(tmp_path)]) == 2
    assert "valid: hsi, rgb" in capsys.readouterr().err


def test_prepare_refuses_options_of_a_dataset_prepared_once(tmp_path: Path, capsys) -> None:
    spec = "hsi_drive:wavelengths=cross_domain_2026"
    assert main(["prepare", spec, "--raw", str(tmp_path), "--data-root", str(tmp_path)]) == 2
    assert "run `hsbench prepare hsi_drive --raw DIR`" in capsys.readouterr().err
