"""User datasets that cannot be misread: every fault or bad input a new user can hand in ends in one clear error.

ENVI files here are written by hand (header text + raw little-endian float32), so a header can say what the data
does not hold: exactly the files a user's own export script produces when it gets a dimension wrong.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from test_envi import clean_registry, expected_ids, field_files, raw_labels, write_config  # noqa: F401

from hsbench.cli import main
from hsbench.data.prepared import prepare_dataset
from hsbench.data.scenes import read_envi_cube, read_label_raster, register_dataset_config, register_user_datasets
from hsbench.errors import ConfigError, DataError
from hsbench.registry import DATASETS, lookup

BANDS, LINES, SAMPLES = 5, 6, 7
_ORDER = {"bsq": (0, 1, 2), "bil": (1, 0, 2), "bip": (1, 2, 0)}  # (C, H, W) -> on-disk axis order


def write_envi(folder: Path, stem: str, array: np.ndarray, *, interleave: str = "bsq",
               header_shape: tuple[int, int, int] | None = None, extra: bytes = b"", cut: int = 0) -> Path:
    """``<stem>.hdr`` + ``<stem>.img`` for a ``(C, H, W)`` array, the header optionally lying about its shape."""
    bands, lines, samples = header_shape or array.shape
    data = np.ascontiguousarray(array.transpose(_ORDER[interleave])).astype("<f4").tobytes() + extra
    (folder / f"{stem}.img").write_bytes(data[: len(data) - cut])
    waves = ", ".join(str(450.0 + 50 * i) for i in range(bands))
    (folder / f"{stem}.hdr").write_text(
        f"ENVI\nsamples = {samples}\nlines = {lines}\nbands = {bands}\nheader offset = 0\nfile type = ENVI Standard\n"
        f"data type = 4\ninterleave = {interleave}\nbyte order = 0\nwavelength units = nm\nwavelength = {{{waves}}}\n"
    )
    return folder / f"{stem}.hdr"


def cube(bands: int = BANDS) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, size=(bands, LINES, SAMPLES)).astype(np.float32)


# --- data file size against the header, both directions ----------------------------------------------------------
TOO_LONG = {
    "bands": dict(header_shape=(BANDS - 1, LINES, SAMPLES)),
    "lines": dict(header_shape=(BANDS, LINES - 1, SAMPLES)),
    "samples": dict(header_shape=(BANDS, LINES, SAMPLES - 1)),
    "trailing_bytes": dict(extra=b"\0" * 8),
}


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("case", [*TOO_LONG, "truncated"])
def test_data_file_not_the_size_its_header_implies_is_one_error(tmp_path: Path, interleave: str, case: str) -> None:
    kwargs = TOO_LONG.get(case, dict(cut=8))
    hdr = write_envi(tmp_path, "c", cube(), interleave=interleave, **kwargs)
    actual = (tmp_path / "c.img").stat().st_size
    b, h, w = kwargs.get("header_shape", (BANDS, LINES, SAMPLES))
    with pytest.raises(DataError) as info:
        read_envi_cube(hdr)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "c.img") in message and "c.hdr" in message
    assert f"has {actual} bytes" in message and f"implies {b * h * w * 4}" in message


def test_label_file_longer_than_its_header_is_one_error(tmp_path: Path) -> None:
    labels = raw_labels().astype(np.float32)[None]
    hdr = write_envi(tmp_path, "lab", labels, header_shape=(1, LINES - 1, SAMPLES))
    with pytest.raises(DataError, match=r"lab\.img: data file has 168 bytes, but the header lab\.hdr implies 140"):
        read_label_raster(hdr)


def _bip_dataset(raw: Path, header_shape: tuple[int, int, int]) -> type:
    write_envi(raw, "field1", cube(), interleave="bip", header_shape=header_shape)
    Image.fromarray(raw_labels()[: header_shape[1], : header_shape[2]]).save(raw / "field1_labels.png")
    return register_dataset_config(write_config(raw))


def test_understated_band_count_is_not_prepared_as_a_scrambled_cube(tmp_path: Path) -> None:
    raw, data = tmp_path / "raw", tmp_path / "data"
    raw.mkdir()
    provider = _bip_dataset(raw, (BANDS - 1, LINES, SAMPLES))
    report = prepare_dataset(provider, raw, data, progress=False)
    assert report.prepared == [] and len(report.bad) == 1
    assert "field1.img: data file has 840 bytes, but the header field1.hdr implies 672" in report.bad[0].message


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_cube_names_the_file(tmp_path: Path, value: float) -> None:
    values = cube()
    values[2, 3, 4] = value
    write_envi(tmp_path, "field1", values)
    Image.fromarray(raw_labels()).save(tmp_path / "field1_labels.png")
    provider = register_dataset_config(write_config(tmp_path))
    fmt = provider.formats["envi"]
    with pytest.raises(DataError, match=r"field1\.hdr: the cube holds 1 NaN or infinite values"):
        fmt.read(fmt.discover(tmp_path, provider.card)[0], provider.card)


# --- a broken config affects only its own dataset ----------------------------------------------------------------
@pytest.fixture
def configs_with_one_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root whose configs/ holds a good dataset and one whose YAML cannot be parsed."""
    data = tmp_path / "data"
    configs = data / "configs"
    configs.mkdir(parents=True)
    field_files(configs)
    write_config(configs)
    (configs / "broken.yaml").write_text("name: broken_field\ntask: scene\nsamples: [unclosed\n")
    monkeypatch.setenv("HSBENCH_DATA", str(data))
    return configs / "broken.yaml"


def test_malformed_config_warns_once_and_spares_the_others(configs_with_one_broken: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="hsbench"):
        assert register_user_datasets() == ["my_field"]
        assert register_user_datasets() == ["my_field"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(configs_with_one_broken) in warnings[0]
    assert lookup(DATASETS, "my_field").card.num_bands == 5
    with pytest.raises(ConfigError, match=r"broken\.yaml is not valid YAML"):
        lookup(DATASETS, "broken_field").card  # noqa: B018  (using it by name gives its real error)
    with pytest.raises(ConfigError, match=r"broken\.yaml is not valid YAML"):
        lookup(DATASETS, "broken_field").open()


def test_malformed_config_breaks_no_command(configs_with_one_broken: Path, capsys) -> None:
    assert main(["list", "datasets"]) == 0
    out, err = capsys.readouterr()
    assert "synthetic_drive" in out and "my_field" in out
    assert len(err.splitlines()) == 1 and err.startswith("WARNING") and "broken.yaml is not valid YAML" in err
    assert main(["show", "dataset", "synthetic_drive"]) == 0
    assert main(["show", "dataset", "broken_field"]) == 2
    assert "broken.yaml is not valid YAML" in capsys.readouterr().err
    assert main(["prepare", "broken_field", "--raw", str(configs_with_one_broken.parent)]) == 2
    assert "broken.yaml is not valid YAML" in capsys.readouterr().err


# --- a prepared dataset depends on its prepared cache alone ------------------------------------------------------
def test_prepared_dataset_opens_after_the_raw_folder_is_gone(tmp_path: Path, monkeypatch) -> None:
    raw, data = tmp_path / "raw", tmp_path / "data"
    (data / "configs").mkdir(parents=True)
    raw.mkdir()
    field_files(raw, interleave="bip")
    write_config(data / "configs", root=str(raw))
    (name,) = register_user_datasets(data)
    provider = lookup(DATASETS, name)
    assert prepare_dataset(provider, raw, data, progress=False).complete
    card, sample = provider.card, provider.open(data_root=data).load("field1")
    shutil.rmtree(raw)
    DATASETS.module_dict.pop(name)
    monkeypatch.setattr("hsbench.data.scenes.user_datasets._registered_from", {})
    assert register_user_datasets(data) == [name]  # a fresh start-up, without the raw headers
    reopened = lookup(DATASETS, name)
    assert reopened.card == card
    again = reopened.open(data_root=data).load("field1")
    np.testing.assert_array_equal(again.cube, sample.cube)
    np.testing.assert_array_equal(again.labels, expected_ids(raw_labels()))


# --- did-you-mean and the one name rule in dataset configs -------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field", "suggestion"),
    [
        ({"class_name": ["a"]}, "class_name", "class_names"),
        ({"samples": [{"id": "field1", "cube": "field1.hdr", "label": "x.png"}]}, r"samples\[0\]\.label", "labels"),
        ({"task": "segmentation", "splits": {"train": ["field1"], "tset": ["field1"]}}, r"splits\.tset", "test"),
        ({"task": "scnee"}, "task", "scene"),
    ],
)
def test_unknown_config_keys_get_did_you_mean(tmp_path: Path, fields: dict, field: str, suggestion: str) -> None:
    field_files(tmp_path)
    path = write_config(tmp_path, **fields)
    with pytest.raises(ConfigError, match=rf"{path.name}: field '{field}': .*did you mean '{suggestion}'"):
        register_dataset_config(path)


def test_sample_id_that_would_escape_its_folder_is_one_error(tmp_path: Path) -> None:
    field_files(tmp_path)
    path = write_config(tmp_path, samples=[{"id": "../../../x", "cube": "field1.hdr", "labels": "field1_labels.png"}])
    with pytest.raises(ConfigError, match=r"field 'samples\[0\]\.id': sample id '\.\./\.\./\.\./x' cannot be used"):
        register_dataset_config(path)


def test_python_tag_in_a_dataset_config_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump({"name": "evil"}) + f'note: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConfigError, match=r"evil\.yaml is not valid YAML"):
        register_dataset_config(path)
    assert not marker.exists()


# --- hsbench prepare: the right --format ---------------------------------------------------------------------------
def test_prepare_on_hdf5_files_suggests_the_format(tmp_path: Path, capsys) -> None:
    (tmp_path / "hsidrive_train.h5").write_bytes(b"")
    assert main(["prepare", "hsi_drive", "--raw", str(tmp_path), "--data-root", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "hsidrive_train.h5" in err and "pass --format hs3bench_h5" in err and err.count("\n") == 1


def test_wrong_format_gets_did_you_mean(tmp_path: Path, capsys) -> None:
    args = ["prepare", "hsi_drive", "--raw", str(tmp_path), "--format", "hs3bench", "--data-root", str(tmp_path)]
    assert main(args) == 2
    assert "no source format 'hs3bench' (did you mean 'hs3bench_h5'?)" in capsys.readouterr().err
