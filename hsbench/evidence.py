"""Per-unit test evidence: one confusion matrix per test image, or per spatial block of a scene.

A run's single summed matrix gives one number per seed, and with three seeds a comparison has three numbers to go
on. The matrices of the test *units* let a report resample test images too (:mod:`hsbench.report.stats`). A
segmentation dataset's unit is an image. A scene dataset has one or a few large images, so its unit is a
:data:`BLOCK` x :data:`BLOCK` pixel block of the scene (only blocks holding scored pixels are kept); its id is
``<sample>@<block row>,<block col>``, the same for every strategy and seed, which is what pairs units.

32 px is the guard band's order of magnitude and the size of the split's own spatial blocks: smaller blocks are
so strongly correlated with their neighbours that the bootstrap would treat one patch of field as many
independent units. Neighbouring 32 px blocks are still correlated, which makes the within-scene interval
somewhat too narrow; docs/statistics.md says so.

Stored form: one blob per (run, part) in the results database, zlib-compressed (a little-endian header with the
unit ids and the shape, then the int64 matrices); the blob's SHA-256 is stored next to it and checked on read.
Encoding is deterministic, so the same matrices always give the same hash.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass

import numpy as np

from hsbench.errors import DataError
from hsbench.integrity import HASH_NAME

__all__ = ["BLOCK", "UnitConfusions", "EvidenceError", "block_confusions", "decode", "digest", "encode"]

BLOCK = 32
"""Side in pixels of a scene's evidence unit."""
_LEVEL = 6


class EvidenceError(DataError):
    """Stored evidence whose bytes do not match the hash recorded with them."""


@dataclass(frozen=True)
class UnitConfusions:
    """Unit ids and their (N, K, K) int64 confusion matrices; their sum is the part's matrix."""

    ids: tuple[str, ...]
    matrices: np.ndarray

    def total(self) -> np.ndarray:
        return self.matrices.sum(axis=0)


def block_confusions(
    sample_id: str, target: np.ndarray, prediction: np.ndarray, num_classes: int, ignore_index: int
) -> UnitConfusions:
    """Confusion matrices of the :data:`BLOCK` px blocks of one scene that hold scored pixels.

    The caller has validated the labels (:func:`hsbench.metrics.confusion_matrix`): every scored target and
    prediction lies in ``0..K-1``.
    """
    rows, cols = np.nonzero(target != ignore_index)
    blocks_across = -(-target.shape[1] // BLOCK)
    block = (rows // BLOCK) * blocks_across + cols // BLOCK
    kk = num_classes * num_classes
    cell = target[rows, cols].astype(np.int64) * num_classes + prediction[rows, cols].astype(np.int64)
    blocks = -(-target.shape[0] // BLOCK) * blocks_across
    counts = np.bincount(block * kk + cell, minlength=blocks * kk).reshape(blocks, num_classes, num_classes)
    present = np.flatnonzero(counts.any(axis=(1, 2)))
    ids = tuple(f"{sample_id}@{b // blocks_across},{b % blocks_across}" for b in present.tolist())
    return UnitConfusions(ids, counts[present])


def encode(units: UnitConfusions) -> bytes:
    """The compressed, deterministic byte form of ``units``."""
    matrices = np.ascontiguousarray(units.matrices, dtype="<i8")
    header = json.dumps({"ids": list(units.ids), "shape": list(matrices.shape)}).encode("utf-8")
    return zlib.compress(len(header).to_bytes(4, "little") + header + matrices.tobytes(), _LEVEL)


def digest(blob: bytes) -> str:
    """The hex content hash of a stored blob (the project's trusted-file hash)."""
    return hashlib.new(HASH_NAME, blob).hexdigest()


def decode(blob: bytes, expected: str, *, where: str) -> UnitConfusions:
    """The units in ``blob``, after checking its hash against ``expected``.

    Raises:
        EvidenceError: the blob's hash differs (it was changed after it was written); ``where`` names it.
    """
    actual = digest(blob)
    if actual != expected:
        raise EvidenceError(f"{where}: stored evidence does not match its recorded {HASH_NAME} "
                            f"(expected {expected}, found {actual})")
    raw = zlib.decompress(blob)
    size = int.from_bytes(raw[:4], "little")
    header = json.loads(raw[4:4 + size].decode("utf-8"))
    matrices = np.frombuffer(raw[4 + size:], dtype="<i8").reshape(header["shape"]).astype(np.int64)
    return UnitConfusions(tuple(header["ids"]), matrices)
