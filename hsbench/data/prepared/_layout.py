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

Integrity: each entry records the content hash of its two files (``files``, :mod:`hsbench.integrity`). Every
read checks what is cheap (the ``.npy`` headers against the entry's shape and types, and each file's size
against what its header implies: a truncated or padded file is caught); the full hash of datasets of many GB is
checked by ``hsbench prepare NAME --verify``. Manifests written before file hashes existed are verified by
their content digest (``sha256``) instead, and ``--verify`` then records the file hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hsbench.errors import DataError
from hsbench.integrity import file_hash

__all__ = [
    "LAYOUT_VERSION", "MANIFEST", "SAMPLES", "TMP_PREFIX", "SampleEntry", "Manifest", "sample_dir_name",
    "read_manifest", "write_manifest", "write_sample", "read_meta", "entry_intact", "open_arrays", "compact_labels",
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
        files: file name (``cube.npy``, ``labels.npy``) -> content hash of the file (empty in older manifests).
    """

    id: str
    dir: str
    shape: tuple[int, int, int]
    labels_dtype: str
    sha256: str
    parts: dict[str, str] = field(default_factory=dict, hash=False)
    files: dict[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleEntry:
        return cls(data["id"], data["dir"], tuple(int(n) for n in data["shape"]), data["labels_dtype"],
                   data["sha256"], dict(data.get("parts") or {}), dict(data.get("files") or {}))


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
                 labels: np.ndarray) -> SampleEntry:
    """Write one sample into a temporary folder, then rename it into place (never visible half-written).

    Returns the entry with its files' content hashes.
    """
    tmp = samples_dir / f"{TMP_PREFIX}{entry.dir}-{os.getpid()}"
    final = samples_dir / entry.dir
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _save_npy(tmp / CUBE, cube)
        _save_npy(tmp / LABELS, compact_labels(labels))
        entry = replace(entry, files={name: file_hash(tmp / name) for name in (CUBE, LABELS)})
        _fsync_write(tmp / META, lambda f: f.write(json.dumps({**meta, **asdict(entry)}, indent=1).encode()))
        if final.exists():  # an orphan the manifest does not list (e.g. from a rebuilt card version)
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return entry


def read_meta(folder: Path) -> dict[str, Any] | None:
    """A sample folder's own description, or None when it has none (or an unreadable one)."""
    try:
        return json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None


def open_arrays(folder: Path, entry: SampleEntry) -> tuple[np.ndarray, np.ndarray]:
    """Memory-map the sample's two arrays after the cheap checks: headers against the entry, sizes against headers.

    Raises:
        DataError: naming the file and what differs (expected vs found).
    """
    expected = {CUBE: (entry.shape, "float32"), LABELS: (entry.shape[1:], entry.labels_dtype)}
    arrays = []
    for name, (shape, dtype) in expected.items():
        path = folder / name
        try:
            size = path.stat().st_size
            with open(path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                found_shape, fortran_order, found_dtype = read_header(handle)
                offset = handle.tell()
        except OSError as exc:
            raise DataError(f"prepared file {path} is unreadable ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise DataError(f"prepared file {path} has no valid .npy header ({exc})") from None
        if tuple(found_shape) != tuple(shape) or str(found_dtype) != dtype or fortran_order:
            raise DataError(f"prepared file {path} holds {found_dtype} {tuple(found_shape)}, but the manifest "
                            f"records {dtype} {tuple(shape)}")
        implied = offset + int(np.prod(found_shape, dtype=np.int64)) * found_dtype.itemsize
        if size != implied:
            raise DataError(f"prepared file {path} has {size} bytes, but its header implies {implied}")
        arrays.append(np.memmap(path, dtype=found_dtype, mode="r", offset=offset, shape=tuple(found_shape)))
    return arrays[0], arrays[1]


def entry_intact(folder: Path, entry: SampleEntry) -> bool:
    """Whether the folder holds both arrays with the shapes, types and sizes the entry records (no hashing)."""
    try:
        open_arrays(folder, entry)
    except DataError:
        return False
    return True


def remove_leftovers(dataset_dir: Path) -> int:
    """Delete temporary folders and files of interrupted writes; only call while holding the dataset's lock."""
    leftovers = list((dataset_dir / SAMPLES).glob(f"{TMP_PREFIX}*")) + list(dataset_dir.glob(f".{MANIFEST}.*.tmp"))
    for path in leftovers:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return len(leftovers)
