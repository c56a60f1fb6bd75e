"""ENVI reading and user datasets defined by a YAML config (register, discover, read, prepare, open)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from spectral.io import envi

from hsbench.data.prepared import prepare_dataset
from hsbench.data.scenes import (
    CONFIGS_ENV,
    read_envi_cube,
    read_envi_header,
    read_label_raster,
    register_dataset_config,
    register_user_datasets,
    user_datasets,
)
from hsbench.errors import ConfigError, DataError
from hsbench.registry import DATASETS

H, W = 6, 7
WAVES_UM = [0.45, 0.55, 0.64, 0.70, 0.80]
WAVES_NM = [450.0, 550.0, 640.0, 700.0, 800.0]


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch):
    """Forget every dataset a test registers (the registry is process-wide)."""
    import hsbench.data.catalog  # noqa: F401

    before = set(DATASETS.module_dict)
    monkeypatch.setattr(user_datasets, "_registered_from", {})
    monkeypatch.setattr(user_datasets, "_broken", {})
    monkeypatch.delenv(CONFIGS_ENV, raising=False)
    yield
    for name in set(DATASETS.module_dict) - before:
        DATASETS.module_dict.pop(name)


def cube_hwc(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(H, W, len(WAVES_NM))).astype(np.float32)


def save_cube(path: Path, cube: np.ndarray, *, interleave: str = "bsq", metadata: dict | None = None) -> Path:
    meta = {"wavelength": WAVES_NM, "wavelength units": "nanometers"} if metadata is None else metadata
    envi.save_image(str(path), cube, interleave=interleave, metadata=meta, force=True)
    return path


def raw_labels(seed: int = 0) -> np.ndarray:
    labels = np.random.default_rng(seed).integers(0, 4, size=(H, W)).astype(np.uint8)
    labels[0, :4] = np.arange(4)
    return labels


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_cube_in_any_interleave_reads_as_bands_first(tmp_path: Path, interleave: str) -> None:
    cube = cube_hwc()
    hdr = save_cube(tmp_path / f"c_{interleave}.hdr", cube, interleave=interleave)
    out = read_envi_cube(hdr)
    assert out.dtype == np.float32 and out.shape == (len(WAVES_NM), H, W)
    np.testing.assert_array_equal(out, cube.transpose(2, 0, 1))
    assert read_envi_header(hdr).wavelengths_nm == tuple(WAVES_NM)


def test_wavelengths_in_micrometres_are_converted_and_unset_units_inferred(tmp_path: Path) -> None:
    um = save_cube(tmp_path / "um.hdr", cube_hwc(), interleave="bip",
                   metadata={"wavelength": WAVES_UM, "wavelength units": "Micrometers", "fwhm": [0.01] * 5})
    header = read_envi_header(um)
    assert header.wavelengths_nm == pytest.approx(WAVES_NM) and header.fwhm_nm == pytest.approx([10.0] * 5)
    bare = save_cube(tmp_path / "bare.hdr", cube_hwc(), metadata={"wavelength": WAVES_UM})
    assert read_envi_header(bare).wavelengths_nm == pytest.approx(WAVES_NM)


def test_reflectance_scale_factor_is_applied(tmp_path: Path) -> None:
    counts = (cube_hwc() * 10000).astype(np.int16)
    hdr = save_cube(tmp_path / "r.hdr", counts, metadata={"wavelength": WAVES_NM, "reflectance scale factor": 10000})
    np.testing.assert_allclose(read_envi_cube(hdr), counts.transpose(2, 0, 1) / 10000.0, rtol=1e-6)


def test_truncated_data_file_is_a_data_error(tmp_path: Path) -> None:
    hdr = save_cube(tmp_path / "t.hdr", cube_hwc())
    data = tmp_path / "t.img"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(DataError, match=r"t\.img: data file has 100 bytes.*truncated"):
        read_envi_cube(hdr)


def test_label_rasters_in_every_supported_form(tmp_path: Path) -> None:
    labels = raw_labels()
    envi.save_classification(str(tmp_path / "cls.hdr"), labels, class_names=["u", "a", "b", "c"], force=True)
    envi.save_image(str(tmp_path / "band.hdr"), labels[:, :, None].astype(np.int16), force=True)
    Image.fromarray(labels).save(tmp_path / "l.png")
    np.save(tmp_path / "l.npy", labels)
    for name in ("cls.hdr", "band.hdr", "l.png", "l.npy"):
        np.testing.assert_array_equal(read_label_raster(tmp_path / name), labels)
    Image.fromarray(np.stack([labels] * 3, axis=2)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png: RGB image"):
        read_label_raster(tmp_path / "rgb.png")


# --- user dataset configs -----------------------------------------------------------------------------------------
def write_config(folder: Path, **fields) -> Path:
    config = {
        "name": "my_field",
        "task": "scene",
        "samples": [{"id": "field1", "cube": "field1.hdr", "labels": "field1_labels.png"}],
        "class_names": ["soil", "crop", "weed"],
        "label_map": {0: "ignore", 1: 0, 2: 1, 3: 2},
    }
    config.update(fields)
    config = {k: v for k, v in config.items() if v is not None}
    path = folder / f"{config.get('name', 'x')}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def field_files(folder: Path, stem: str = "field1", seed: int = 0, **cube_kwargs) -> tuple[np.ndarray, np.ndarray]:
    cube, labels = cube_hwc(seed), raw_labels(seed)
    save_cube(folder / f"{stem}.hdr", cube, **cube_kwargs)
    Image.fromarray(labels).save(folder / f"{stem}_labels.png")
    return cube, labels


def expected_ids(labels: np.ndarray) -> np.ndarray:
    return np.where(labels == 0, 255, labels.astype(np.int64) - 1)


def test_registered_config_builds_card_and_reads_sample(tmp_path: Path) -> None:
    cube, labels = field_files(tmp_path, interleave="bil",
                               metadata={"wavelength": WAVES_UM, "wavelength units": "micrometers"})
    provider = register_dataset_config(write_config(tmp_path))
    assert DATASETS.get("my_field") is provider
    card = provider.card
    assert card.task == "scene" and card.wavelengths_nm == pytest.approx(WAVES_NM)
    assert card.class_names == ("soil", "crop", "weed") and card.raw_label_map == {0: 255, 1: 0, 2: 1, 3: 2}
    assert card.pseudo_rgb_bands == (2, 1, 0) and len(card.palette) == 3 and card.official_splits == {}
    fmt = provider.formats["envi"]
    items = fmt.discover(tmp_path, card)
    sample = fmt.read(items[0], card)
    assert sample.id == "field1" and sample.cube.shape == (5, H, W) and sample.cube.dtype == np.float32
    np.testing.assert_array_equal(sample.cube, cube.transpose(2, 0, 1))
    np.testing.assert_array_equal(sample.labels, expected_ids(labels))


def test_segmentation_config_prepares_and_opens_with_its_split(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(3):
        field_files(raw, f"img{i}", seed=i)
    samples = [{"id": f"img{i}", "cube": f"img{i}.hdr", "labels": f"img{i}_labels.png"} for i in range(3)]
    config = write_config(raw, name="my_drive", task="segmentation", samples=samples,
                          splits={"train": ["img0"], "val": ["img1"], "test": ["img2"]},
                          palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9]], pseudo_rgb_bands=[4, 3, 2])
    provider = register_dataset_config(config)
    assert provider.default_raw_dir == raw and provider.card.pseudo_rgb_bands == (4, 3, 2)
    report = prepare_dataset(provider, raw, tmp_path / "data", progress=False)
    assert report.complete and sorted(report.prepared) == ["img0", "img1", "img2"]
    dataset = provider.open(data_root=tmp_path / "data")
    assert dataset.card.official().test == ("img2",)
    np.testing.assert_array_equal(dataset.load("img1").labels, expected_ids(raw_labels(1)))


def test_config_wavelengths_replace_a_header_without_them(tmp_path: Path) -> None:
    field_files(tmp_path, metadata={})
    with pytest.raises(ConfigError, match=r"my_field\.yaml: field 'samples\[0\]\.cube'.*no 'wavelength' field"):
        register_dataset_config(write_config(tmp_path))
    provider = register_dataset_config(write_config(tmp_path, wavelengths_nm=[400, 500, 600, 700, 800]))
    assert provider.card.wavelengths_nm == (400.0, 500.0, 600.0, 700.0, 800.0)


def test_label_map_keys_may_be_strings_and_its_changes_change_the_card_version(tmp_path: Path) -> None:
    field_files(tmp_path)
    first = register_dataset_config(write_config(tmp_path, label_map={"0": "ignore", "1": 0, "2": 1, "3": 2}))
    assert first.card.raw_label_map == {0: 255, 1: 0, 2: 1, 3: 2}
    second = register_dataset_config(write_config(tmp_path, name="f2", label_map={0: None, 1: 0, 2: 1, 3: 2}))
    third = register_dataset_config(write_config(tmp_path, name="f3", label_map={0: "ignore", 1: 2, 2: 1, 3: 0}))
    assert first.card.version == second.card.version != third.card.version


def test_root_points_at_the_files_relative_to_the_config(tmp_path: Path) -> None:
    files, configs = tmp_path / "files", tmp_path / "configs"
    files.mkdir()
    configs.mkdir()
    field_files(files)
    provider = register_dataset_config(write_config(configs, root="../files"))
    assert provider.default_raw_dir == files and provider.card.wavelengths_nm == tuple(WAVES_NM)


def test_samples_with_other_band_sets_are_refused(tmp_path: Path) -> None:
    field_files(tmp_path, "a")
    field_files(tmp_path, "b", metadata={"wavelength": [w + 5 for w in WAVES_NM]})
    samples = [{"id": s, "cube": f"{s}.hdr", "labels": f"{s}_labels.png"} for s in ("a", "b")]
    with pytest.raises(ConfigError, match=r"field 'samples\[1\]\.cube'.*other band centres"):
        register_dataset_config(write_config(tmp_path, task="segmentation", samples=samples))


def test_names_already_registered_are_refused(tmp_path: Path) -> None:
    field_files(tmp_path)
    register_dataset_config(write_config(tmp_path))
    with pytest.raises(ConfigError, match=r"field 'name'.*'my_field' is already registered by"):
        register_dataset_config(write_config(tmp_path))
    with pytest.raises(ConfigError, match="'salinas' is already registered as a built-in"):
        register_dataset_config(write_config(tmp_path, name="salinas"))


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"task": "detection"}, "task", "expected one of scene, segmentation"),
        ({"class_names": None}, "class_names", "required field is missing"),
        ({"colours": [1]}, "colours", "unknown field"),
        ({"label_map": {0: "ignore", 1: 0, 2: 7}}, r"label_map\[2\]", "outside the class ids"),
        ({"label_map": {0: "ignore", 1: 0, 2: 1}}, "label_map", "no raw id maps to class 2"),
        ({"samples": [{"id": "a", "cube": "a.img", "labels": "a.png"}]}, r"samples\[0\]\.cube", "ENVI header"),
        ({"palette": [[0, 0, 0]]}, "palette", "expected 3 entries"),
        ({"splits": {"train": ["field1"]}}, "splits", "scene datasets use k-shot"),
        ({"name": "../escape"}, "name", "dataset name '../escape' cannot be used"),
    ],
)
def test_malformed_configs_name_file_and_field(tmp_path: Path, fields: dict, field: str, problem: str) -> None:
    field_files(tmp_path)
    path = write_config(tmp_path, **fields)
    with pytest.raises(ConfigError, match=rf"{path.name}: field '{field}': .*{problem}"):
        register_dataset_config(path)


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml is not valid YAML"):
        register_dataset_config(path)


def test_label_ids_outside_the_map_name_the_label_file(tmp_path: Path) -> None:
    field_files(tmp_path)
    provider = register_dataset_config(write_config(tmp_path, label_map={0: "ignore", 1: 0, 2: 1, 4: 2}))
    fmt = provider.formats["envi"]
    with pytest.raises(DataError, match=r"field1_labels\.png: label ids 3 \(\d+ px\) are not in the label map"):
        fmt.read(fmt.discover(tmp_path, provider.card)[0], provider.card)


def test_missing_listed_file_is_reported_by_discover(tmp_path: Path) -> None:
    field_files(tmp_path)
    provider = register_dataset_config(write_config(tmp_path))
    (tmp_path / "field1_labels.png").unlink()
    with pytest.raises(DataError, match=r"missing: .*field1_labels\.png"):
        provider.formats["envi"].discover(tmp_path, provider.card)


def test_user_datasets_register_from_data_root_and_environment(tmp_path: Path, monkeypatch) -> None:
    configs = tmp_path / "data" / "configs"
    configs.mkdir(parents=True)
    field_files(configs)
    write_config(configs)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    field_files(elsewhere)
    other = write_config(elsewhere, name="other_field")
    monkeypatch.setenv(CONFIGS_ENV, str(other))
    assert register_user_datasets(tmp_path / "data") == ["my_field", "other_field"]
    assert register_user_datasets(tmp_path / "data") == ["my_field", "other_field"]  # idempotent
    monkeypatch.setenv(CONFIGS_ENV, str(tmp_path / "nowhere"))  # warned about, and breaks no other dataset
    assert register_user_datasets(tmp_path / "data") == ["my_field"]
