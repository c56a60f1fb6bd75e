"""On-disk layout of the prepared cache: folder names, the manifest, atomic writes of samples and files.

Layout under the data root (``<root>/<dataset>/``)::

    manifest.json                 index: card version, source format, one entry per sample, complete flag
    samples/<dir>/cube.npy        float32 (C, H, W), C order, memory-mappable
    samples/<dir>/labels.npy      harness ids in the smallest integer type that holds them (int64 on load)
    samples/<dir>/meta.json       the sample's manifest entry, so a folder describes itself
    samples/.tmp-<dir>-<pid>/     a sample being written; renamed to ``<dir>`` only once complete
    .lock                         held by the one ``hsbench prepare`` writing this dataset

A sample becomes visible by one ``os.replace`` of its finished folder, and the manifest is replaced whole, so a
prepare killed at any instant (even SIGKILL) leaves complete samples only. ``meta.json`` lets a re-run adopt a
sample whose folder was renamed into place just before the kill, before the manifest listed it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hsbench.errors import DataError

__all__ = [
    "LAYOUT_VERSION", "MANIFEST", "SAMPLES", "TMP_PREFIX", "SampleEntry", "Manifest", "sample_dir_name",
    "read_manifest", "write_manifest", "write_sample", "read_meta", "entry_intact", "compact_labels",
    "fingerprint_of", "remove_leftovers",
]

LAYOUT_VERSION = 1
MANIFEST = "manifest.json"
SAMPLES = "samples"
TMP_PREFIX = ".tmp-"
CUBE, LABELS, META = "cube.npy", "labels.npy", "meta.json"

_SAFE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_MAX_DIR_NAME = 180  # leaves room for the ".tmp-" prefix and "-<pid>" suffix within the usual 255-byte limit


def sample_dir_name(sample_id: str) -> str:
    """A folder name for ``sample_id`` that is safe on every file system and never hidden.

    Ids that are already plain names (``nf3122_147``, ``set-_04282_spec_annotated``) are used unchanged so the
    cache stays readable by eye; other bytes are percent-encoded (reversible, collision-free), a leading dot is
    encoded (it would hide the folder and could clash with ``.tmp-``), and very long names are cut and suffixed
    with a hash of the full id.
    """
    if not sample_id:
        raise DataError("a sample id is empty; the source format returned a nameless sample")
    name = "".join(chr(b) if chr(b) in _SAFE_CHARS else f"%{b:02X}" for b in sample_id.encode("utf-8"))
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name) > _MAX_DIR_NAME:
        name = name[: _MAX_DIR_NAME - 17] + "~" + hashlib.sha256(sample_id.encode("utf-8")).hexdigest()[:16]
    return name


@dataclass(frozen=True)
class SampleEntry:
    """One prepared sample as the manifest records it.

    Attributes:
        id: the sample name used by the official split lists.
        dir: its folder under ``samples/`` (see :func:`sample_dir_name`).
        shape: cube shape ``(C, H, W)``.
        labels_dtype: the integer type ``labels.npy`` is stored in.
        sha256: :func:`hsbench.data.dataset.array_digest` of the cube and the int64 labels the loader returns.
        parts: official split name -> part (``train`` / ``val`` / ``test``) for every official list naming it.
    """

    id: str
    dir: str
    shape: tuple[int, int, int]
    labels_dtype: str
    sha256: str
    parts: dict[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleEntry:
        return cls(data["id"], data["dir"], tuple(int(n) for n in data["shape"]), data["labels_dtype"],
                   data["sha256"], dict(data.get("parts") or {}))


@dataclass
class Manifest:
    """The index of one prepared dataset (``manifest.json``)."""

    dataset: str
    card_version: str
    source_format: str
    hsbench_version: str
    samples: dict[str, SampleEntry] = field(default_factory=dict)
    missing_official: list[str] = field(default_factory=list)
    complete: bool = False
    layout_version: int = LAYOUT_VERSION

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["samples"] = [asdict(self.samples[k]) for k in sorted(self.samples)]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        entries = (SampleEntry.from_json(e) for e in data.get("samples", []))
        return cls(data["dataset"], str(data["card_version"]), data["source_format"], data["hsbench_version"],
                   {e.id: e for e in entries}, list(data.get("missing_official", [])), bool(data["complete"]),
                   int(data.get("layout_version", LAYOUT_VERSION)))


def fingerprint_of(manifest: Manifest) -> str:
    """Content hash of the dataset from the manifest alone (opening never re-reads the data)."""
    hashes = [[k, manifest.samples[k].sha256] for k in sorted(manifest.samples)]
    payload = [manifest.dataset, manifest.card_version, hashes]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def _fsync_write(path: Path, write: Any) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _atomic_write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _fsync_write(tmp, lambda f: f.write(json.dumps(data, indent=1).encode()))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_manifest(dataset_dir: Path) -> Manifest | None:
    """The manifest, or None when the dataset was never prepared there."""
    path = dataset_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        return Manifest.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"the prepared-data manifest {path} is unreadable ({exc}); rebuild the dataset with "
                        "`hsbench prepare ... --force`") from None


def write_manifest(dataset_dir: Path, manifest: Manifest) -> None:
    _atomic_write_json(dataset_dir / MANIFEST, manifest.to_json())


def compact_labels(labels: np.ndarray) -> np.ndarray:
    """``labels`` in the smallest integer type that holds every value (uint8 for every HS3-Bench dataset)."""
    lo, hi = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    dtype = np.promote_types(np.min_scalar_type(lo), np.min_scalar_type(hi))
    return np.ascontiguousarray(labels, dtype=dtype)


def _save_npy(path: Path, array: np.ndarray) -> None:
    _fsync_write(path, lambda f: np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False))


def write_sample(samples_dir: Path, entry: SampleEntry, meta: dict[str, Any], cube: np.ndarray,
                 labels: np.ndarray) -> None:
    """Write one sample into a temporary folder, then rename it into place (never visible half-written)."""
    tmp = samples_dir / f"{TMP_PREFIX}{entry.dir}-{os.getpid()}"
    final = samples_dir / entry.dir
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _save_npy(tmp / CUBE, cube)
        _save_npy(tmp / LABELS, compact_labels(labels))
        _fsync_write(tmp / META, lambda f: f.write(json.dumps({**meta, **asdict(entry)}, indent=1).encode()))
        if final.exists():  # an orphan the manifest does not list (e.g. from a rebuilt card version)
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_meta(folder: Path) -> dict[str, Any] | None:
    """A sample folder's own description, or None when it has none (or an unreadable one)."""
    try:
        return json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None


def entry_intact(folder: Path, entry: SampleEntry) -> bool:
    """Whether the folder holds both arrays with the shapes and types the entry records (headers only)."""
    try:
        cube = np.load(folder / CUBE, mmap_mode="r")
        labels = np.load(folder / LABELS, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return (cube.shape == entry.shape and cube.dtype == np.float32 and labels.shape == entry.shape[1:]
            and str(labels.dtype) == entry.labels_dtype)


def remove_leftovers(dataset_dir: Path) -> int:
    """Delete temporary folders and files of interrupted writes; only call while holding the dataset's lock."""
    leftovers = list((dataset_dir / SAMPLES).glob(f"{TMP_PREFIX}*")) + list(dataset_dir.glob(f".{MANIFEST}.*.tmp"))
    for path in leftovers:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return len(leftovers)
