"""The prepared cache and ``hsbench prepare``, on a fake raw format written by the test (no real data)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hsbench.data import DatasetCard, OfficialSplit, Sample
from hsbench.data.prepared import open_prepared, prepare_dataset, read_manifest, sample_dir_name
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat
from hsbench.errors import DataError

BANDS, HEIGHT, WIDTH, IGNORE = 4, 6, 5, 255
OFFICIAL = OfficialSplit(("s0", "s1", "s2"), ("s3",), ("s4", "s5 100%"))


class NpyPairs(SourceFormat):
    """Raw layout of the fake dataset: ``<id>.cube.npy`` (C, H, W) and ``<id>.labels.npy`` per sample."""

    name = "npy_pairs"
    description = "<id>.cube.npy and <id>.labels.npy files"
    interrupt_at: int | None = None  # raise KeyboardInterrupt on this read (1-based), simulating Ctrl-C
    reads = 0

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        cubes = sorted(raw_dir.glob("*.cube.npy"))
        return [RawSample(p.name[: -len(".cube.npy")], (p, p.with_name(p.name.replace(".cube.", ".labels."))))
                for p in cubes]

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        type(self).reads += 1
        if self.interrupt_at is not None and type(self).reads == self.interrupt_at:
            raise KeyboardInterrupt
        cube_path, labels_path = item.paths
        if not labels_path.is_file():
            raise DataError(f"{labels_path}: label file missing")
        return Sample(item.sample_id, np.load(cube_path), np.load(labels_path).astype(np.int64))


CARD = DatasetCard(
    name="fake_hsi", task="segmentation", wavelengths_nm=(500.0, 600.0, 550.0, 700.0),
    class_names=("road", "sky", "tree"), palette=((1, 1, 1), (2, 2, 2), (3, 3, 3)), ignore_index=IGNORE,
    pseudo_rgb_bands=(3, 2, 0), official_splits={"official": OFFICIAL},
    how_to_obtain="download fake.zip from example.org and unpack it",
)


class FakeProvider(RealDatasetProvider):
    card = CARD
    formats = {"npy_pairs": NpyPairs()}


def _write_raw(raw: Path, sample_id: str, seed: int, *, bands: int = BANDS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cube = rng.random((bands, HEIGHT, WIDTH), dtype=np.float32)
    labels = rng.integers(0, 3, size=(HEIGHT, WIDTH)).astype(np.int64)
    labels[0, 0] = IGNORE
    raw.mkdir(parents=True, exist_ok=True)
    np.save(raw / f"{sample_id}.cube.npy", cube)
    np.save(raw / f"{sample_id}.labels.npy", labels)
    return cube, labels


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    for i, sample_id in enumerate(OFFICIAL.train + OFFICIAL.val + OFFICIAL.test):
        _write_raw(tmp_path / "raw", sample_id, i)
    NpyPairs.reads, NpyPairs.interrupt_at = 0, None
    return tmp_path / "raw"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _prepare(raw: Path, root: Path, **kwargs):
    return prepare_dataset(FakeProvider, raw, root, progress=False, **kwargs)


def test_prepare_then_open_gives_identical_memory_mapped_arrays(raw: Path, root: Path) -> None:
    report = _prepare(raw, root)
    assert report.complete and len(report.prepared) == 6 and not report.skipped
    dataset = open_prepared(FakeProvider, root)
    assert dataset.sample_ids == tuple(sorted(OFFICIAL.train + OFFICIAL.val + OFFICIAL.test))
    for sample_id in dataset.sample_ids:
        sample = dataset.load(sample_id)
        assert isinstance(sample.cube, np.memmap) and sample.cube.flags.c_contiguous
        assert sample.labels.dtype == np.int64
        np.testing.assert_array_equal(sample.cube, np.load(raw / f"{sample_id}.cube.npy"))
        np.testing.assert_array_equal(sample.labels, np.load(raw / f"{sample_id}.labels.npy"))
    assert (root / "fake_hsi" / "samples" / "s5%20100%25" / "cube.npy").is_file()  # unsafe id encoded
    manifest = json.loads((root / "fake_hsi" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["source_format"] == "npy_pairs" and manifest["card_version"] == "1"
    entry = next(e for e in manifest["samples"] if e["id"] == "s3")
    assert entry["shape"] == [BANDS, HEIGHT, WIDTH] and entry["parts"] == {"official": "val"}
    assert entry["labels_dtype"] == "uint8"
    assert pickle.loads(pickle.dumps(dataset._loader))("s3").id == "s3"  # DataLoader workers can receive it


def test_fingerprint_is_stable_and_follows_the_data(raw: Path, root: Path) -> None:
    _prepare(raw, root)
    first = open_prepared(FakeProvider, root).fingerprint
    assert open_prepared(FakeProvider, root).fingerprint == first
    _write_raw(raw, "s1", seed=99)
    _prepare(raw, root, force=True)
    assert open_prepared(FakeProvider, root).fingerprint != first


def test_rerun_skips_prepared_samples(raw: Path, root: Path) -> None:
    _prepare(raw, root)
    NpyPairs.reads = 0
    report = _prepare(raw, root)
    assert (len(report.prepared), len(report.skipped), NpyPairs.reads) == (0, 6, 0) and report.complete


def test_interrupted_prepare_keeps_complete_samples_and_resumes(raw: Path, root: Path) -> None:
    NpyPairs.interrupt_at = 3
    with pytest.raises(KeyboardInterrupt):
        _prepare(raw, root)
    samples_dir = root / "fake_hsi" / "samples"
    manifest = read_manifest(root / "fake_hsi")
    assert manifest is not None and not manifest.complete
    assert sorted(manifest.samples) == ["s0", "s1"] == sorted(p.name for p in samples_dir.iterdir())
    NpyPairs.interrupt_at = None
    report = _prepare(raw, root)
    assert (len(report.skipped), len(report.prepared)) == (2, 4) and report.complete


def test_leftovers_of_a_killed_prepare_are_cleaned_or_adopted(raw: Path, root: Path) -> None:
    _prepare(raw, root)
    dataset_dir = root / "fake_hsi"
    samples_dir = dataset_dir / "samples"
    # State after a SIGKILL: a half-written temp folder, and a finished folder the manifest does not list yet.
    (samples_dir / ".tmp-s3-12345").mkdir()
    (samples_dir / ".tmp-s3-12345" / "cube.npy").write_bytes(b"\x93NUMPY half")
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    manifest["samples"] = [e for e in manifest["samples"] if e["id"] != "s4"]
    (dataset_dir / "manifest.json").write_text(json.dumps(manifest))
    assert "s4" not in open_prepared(FakeProvider, root).sample_ids  # the temp folder is never listed
    NpyPairs.reads = 0
    report = _prepare(raw, root)
    assert NpyPairs.reads == 0 and len(report.skipped) == 6 and report.complete  # s4 adopted, not re-read
    assert not list(samples_dir.glob(".tmp-*"))


_KILLED_PREPARE = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import test_prepared as t
real_replace, renames = os.replace, []
def replace(src, dst):
    if Path(src).name.startswith(".tmp-"):
        renames.append(src)
        if len(renames) == 3:  # the third sample is fully written into its temp folder, not yet renamed
            os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
os.replace = replace
t.prepare_dataset(t.FakeProvider, Path({raw!r}), Path({root!r}), progress=False)
"""


def test_sigkill_during_prepare_leaves_only_complete_samples(raw: Path, root: Path) -> None:
    script = _KILLED_PREPARE.format(tests=str(Path(__file__).parent), raw=str(raw), root=str(root))
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == -signal.SIGKILL
    samples_dir = root / "fake_hsi" / "samples"
    assert len(list(samples_dir.glob(".tmp-*"))) == 1
    assert open_prepared(FakeProvider, root).sample_ids == ("s0", "s1")
    report = _prepare(raw, root)
    assert (len(report.skipped), len(report.prepared)) == (2, 4) and report.complete
    assert not list(samples_dir.glob(".tmp-*"))


def test_damaged_prepared_sample_is_prepared_again(raw: Path, root: Path) -> None:
    _prepare(raw, root)
    (root / "fake_hsi" / "samples" / "s2" / "cube.npy").unlink()
    with pytest.raises(DataError, match="run `hsbench prepare fake_hsi --raw"):
        open_prepared(FakeProvider, root).load("s2")
    report = _prepare(raw, root)
    assert report.prepared == ["s2"] and report.complete


def _add_bad_files(raw: Path) -> None:
    cube, labels = _write_raw(raw, "nan_img", 7)
    cube[1, 2, 3] = np.nan
    np.save(raw / "nan_img.cube.npy", cube)
    _write_raw(raw, "bands_img", 8, bands=BANDS + 1)
    (raw / "corrupt_img.cube.npy").write_bytes(b"not a numpy file at all")
    np.save(raw / "corrupt_img.labels.npy", labels)


def test_every_bad_file_is_reported_with_its_name(raw: Path, root: Path) -> None:
    _add_bad_files(raw)
    report = _prepare(raw, root)
    assert not report.complete and len(report.prepared) == 6
    messages = {bad.sample_id: bad.message for bad in report.bad}
    assert set(messages) == {"nan_img", "bands_img", "corrupt_img"}
    assert "NaN" in messages["nan_img"] and "nan_img.cube.npy" in messages["nan_img"]
    assert "5 bands" in messages["bands_img"] and "bands_img.cube.npy" in messages["bands_img"]
    assert "corrupt_img.cube.npy" in messages["corrupt_img"] and "cannot be read" in messages["corrupt_img"]
    assert not read_manifest(root / "fake_hsi").complete  # type: ignore[union-attr]


def test_strict_stops_at_the_first_bad_file(raw: Path, root: Path) -> None:
    _add_bad_files(raw)
    with pytest.raises(DataError, match="bands_img.cube.npy"):  # discovery order: bands_img comes first
        _prepare(raw, root, strict=True)


def test_missing_official_samples_are_listed_by_name(raw: Path, root: Path, caplog) -> None:
    for sample_id in ("s1", "s4"):
        (raw / f"{sample_id}.cube.npy").unlink()
    report = _prepare(raw, root)
    assert report.missing == ["s1", "s4"] and not report.complete and not report.bad
    with caplog.at_level(logging.WARNING, logger="hsbench"):
        dataset = open_prepared(FakeProvider, root)
    assert "2 sample(s) of the official splits are missing (s1, s4)" in caplog.text
    assert len(dataset) == 4

    from hsbench.splits import make_split

    with pytest.raises(DataError, match="'s1'"):
        make_split(dataset, "official", 0)
    _write_raw(raw, "s1", 1)
    _write_raw(raw, "s4", 4)
    report = _prepare(raw, root)
    assert report.prepared == ["s1", "s4"] and report.complete


def test_scene_dataset_without_official_splits_is_complete_when_nothing_is_bad(raw: Path, root: Path) -> None:
    class SceneProvider(FakeProvider):
        card = dataclasses.replace(CARD, task="scene", official_splits={})

    (raw / "s1.cube.npy").unlink()
    report = prepare_dataset(SceneProvider, raw, root, progress=False)
    assert report.complete and report.missing == [] and len(open_prepared(SceneProvider, root)) == 5


def test_two_prepares_of_one_dataset_never_interleave(raw: Path, root: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    (root / "fake_hsi").mkdir(parents=True)
    with open(root / "fake_hsi" / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(DataError, match="another `hsbench prepare` is writing"):
            _prepare(raw, root)


def test_open_without_preparation_says_what_to_do(root: Path) -> None:
    with pytest.raises(DataError) as info:
        FakeProvider.open(data_root=root)
    message = str(info.value)
    assert f"hsbench prepare fake_hsi --raw /path/to/fake_hsi_raw --data-root {root}" in message
    assert "download fake.zip from example.org" in message and str(root / "fake_hsi") in message


def test_card_version_change_asks_for_force(raw: Path, root: Path) -> None:
    _prepare(raw, root)

    class NewerProvider(FakeProvider):
        card = dataclasses.replace(CARD, version="2")

    with pytest.raises(DataError, match=r"(?s)card version 1.*version 2.*--force"):
        open_prepared(NewerProvider, root)
    with pytest.raises(DataError, match="--force"):
        prepare_dataset(NewerProvider, raw, root, progress=False)
    assert prepare_dataset(NewerProvider, raw, root, progress=False, force=True).complete
    assert len(open_prepared(NewerProvider, root)) == 6


def test_sample_dir_names_are_safe_and_distinct() -> None:
    ids = ["nf3122_147", "set-_04282_spec_annotated", "a/b", "a%2Fb", ".hidden", "..", "ü", "x" * 400, "x" * 401]
    names = [sample_dir_name(i) for i in ids]
    assert names[:2] == ids[:2] and len(set(names)) == len(names)
    assert all("/" not in n and not n.startswith(".") and len(n) <= 180 for n in names)


# --- the command line ------------------------------------------------------------------------------------------


@pytest.fixture
def registered():
    from hsbench.registry import DATASETS, _ensure_plugins_loaded

    _ensure_plugins_loaded()
    DATASETS.register_module(name="fake_hsi", module=FakeProvider, force=True)
    yield
    DATASETS.module_dict.pop("fake_hsi", None)


def _cli(argv: list[str]) -> int:
    """``hsbench prepare ...`` through ``hsbench.cli.main``."""
    from hsbench.cli import main

    return main(["prepare", *argv])


def test_cli_help() -> None:
    from hsbench.cli import prepare

    parser = argparse.ArgumentParser(prog="hsbench")
    prepare.add_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["prepare", "--help"])
    assert exit_info.value.code == 0
