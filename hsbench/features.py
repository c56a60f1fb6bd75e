"""Frozen foundation-model features: per-pixel extraction and an on-disk cache.

A frozen model gives every pixel the same features in every run, so the cross-domain study computes them once per
dataset. The cache folder is keyed by the checkpoint hash, the dataset fingerprint and the band wavelengths (the
fingerprint covers cube bytes, not the card), under ``hsbench_home()/features``::

    <checkpoint[:16]>/<dataset[:16]>-<wavelengths[:8]>/<cube digest>.npy   features (D, H, W), float16
    <checkpoint[:16]>/<dataset[:16]>-<wavelengths[:8]>/index.json         written last: the folder is complete,
                                                                          with each file's content hash

Files are named by the digest of the cube they were computed from, so a lookup needs only the cube (a learner's
input transform never sees sample ids) and can never return another image's features. Every file is written
atomically; an interrupted extraction resumes from the files already there. Features are stored as float16:
half the disk and read time, and their ~3 significant digits are far below what a head trained on them resolves.

Every file is verified against the hash in the index (:mod:`hsbench.integrity`) when the cache is opened and when
it is read: a file that was zeroed, truncated or edited is moved aside (``<name>.corrupt-<time>``, one warning)
and extracted again, and the run's facts then say ``feature_cache_hit: false`` with the number rebuilt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hsbench._atomic import atomic_file, atomic_write_text, file_lock
from hsbench.data.dataset import Dataset, array_digest
from hsbench.data.paths import hsbench_home
from hsbench.data.transforms import PixelTransform
from hsbench.integrity import IntegrityError, file_hash, move_aside, verify

__all__ = ["extract_cube", "FeatureCache", "FrozenFeatures", "FEATURE_FORMAT", "STORED_DTYPE"]

FEATURE_FORMAT = 2
"""Bumped when stored features change meaning or the index its form (part of the cache key). 2: file hashes."""
STORED_DTYPE = np.float16
"""What the cache stores features as; :class:`FrozenFeatures` with ``as_cached`` rounds computed ones the same way."""

ExtractFn = Callable[[np.ndarray], np.ndarray]


@torch.inference_mode()
def extract_cube(
    model: torch.nn.Module,
    cube: np.ndarray,
    wavelengths_nm: np.ndarray,
    *,
    batch_pixels: int = 8192,
    device: torch.device | None = None,
) -> np.ndarray:
    """Features ``(D, H, W)`` float32 of every pixel of a ``(C, H, W)`` cube, in pixel batches (bounded memory)."""
    device = device or torch.device("cpu")
    c, h, w = cube.shape
    pixels = torch.from_numpy(np.ascontiguousarray(np.asarray(cube, dtype=np.float32).reshape(c, -1).T))
    wavelengths = torch.as_tensor(np.asarray(wavelengths_nm, dtype=np.float32), device=device)
    was_training = model.training
    model.eval()
    out = torch.cat([model(chunk.to(device), wavelengths).float().cpu() for chunk in pixels.split(batch_pixels)])
    model.train(was_training)
    return np.ascontiguousarray(out.T.reshape(-1, h, w).numpy())


class FeatureCache:
    """Features of one dataset under one checkpoint, on disk.

    Args:
        checkpoint_hash: hash of the model's weights and config.
        dataset_fingerprint: the dataset's content hash.
        wavelengths_nm: the dataset's band wavelengths in cube order.
        root: cache root (default ``hsbench_home() / "features"``, read when the cache is created).
    """

    def __init__(
        self, *, checkpoint_hash: str, dataset_fingerprint: str, wavelengths_nm: tuple[float, ...],
        root: Path | None = None,
    ) -> None:
        root = Path(root) if root is not None else hsbench_home() / "features"
        bands = array_digest(np.asarray(wavelengths_nm, dtype=np.float64), np.asarray([FEATURE_FORMAT]))
        self.folder = root / checkpoint_hash[:16] / f"{dataset_fingerprint[:16]}-{bands[:8]}"
        self.key = {"checkpoint_hash": checkpoint_hash, "dataset_fingerprint": dataset_fingerprint,
                    "wavelengths_nm": list(wavelengths_nm), "format": FEATURE_FORMAT}
        self._index_hashes: dict[str, str] | None = None

    @property
    def index_path(self) -> Path:
        return self.folder / "index.json"

    @property
    def complete(self) -> bool:
        return self.index_path.is_file()

    def _path(self, digest: str) -> Path:
        return self.folder / f"{digest[:32]}.npy"

    def _hashes(self) -> dict[str, str]:
        """File name -> content hash, from the index (empty when there is none or it is unreadable)."""
        if self._index_hashes is None:
            try:
                self._index_hashes = dict(json.loads(self.index_path.read_text())["files"])
            except (OSError, ValueError, KeyError, TypeError):
                return {}
        return self._index_hashes

    def lookup(self, cube: np.ndarray, *, digest: str | None = None) -> np.ndarray | None:
        """Stored, verified features ``(D, H, W)`` float32 of this exact cube, or ``None`` (a bad file is moved
        aside, so the caller computes the features instead). ``digest``: the cube's, when the caller has it."""
        path = self._path(digest or array_digest(np.asarray(cube)))
        expected = self._hashes().get(path.name)
        if expected is None or not path.is_file():
            return None
        try:
            verify(path, expected)
        except IntegrityError as exc:
            move_aside(path, exc.detail)
            return None
        return np.load(path).astype(np.float32)

    def _damaged(self) -> list[str]:
        """Names of indexed files that are missing or fail their hash (each moved aside, one warning each)."""
        hashes = self._hashes()
        if not hashes:
            move_aside(self.index_path, "the index records no file hashes")
            return ["index.json"]
        bad = []
        for name, expected in hashes.items():
            try:
                verify(self.folder / name, expected)
            except IntegrityError as exc:
                move_aside(self.folder / name, exc.detail)
                bad.append(name)
        return bad

    def build(self, dataset: Dataset, extract: ExtractFn, *, progress: bool = False) -> dict[str, Any]:
        """Make sure every sample's features are stored and intact; returns what it did (hit, rebuilt, seconds).

        A complete cache is verified file by file; damaged files are moved aside and extracted again, and then
        it is not a hit. Holds a lock while extracting, so concurrent runs on one dataset and checkpoint extract
        once.
        """
        start = time.perf_counter()
        self._index_hashes = None
        if self.complete and not self._damaged():
            return {"feature_cache_hit": True, "feature_seconds": time.perf_counter() - start,
                    "feature_cache": str(self.folder)}
        with file_lock(self.folder.parent / f".{self.folder.name}.lock"):
            self._index_hashes = None
            if self.complete and not self._damaged():  # built (or repaired) by another process while we waited
                return {"feature_cache_hit": True, "feature_seconds": time.perf_counter() - start,
                        "feature_cache": str(self.folder)}
            digests, files, pixels, extracted = self._extract_missing(dataset, extract, progress)
            seconds = time.perf_counter() - start
            index = {**self.key, "samples": digests, "files": files, "pixels": pixels,
                     "extracted_samples": extracted, "seconds": seconds}
            atomic_write_text(self.index_path, json.dumps(index, indent=1))
            self._index_hashes = files
        return {"feature_cache_hit": False, "feature_seconds": seconds, "feature_pixels": pixels,
                "feature_extracted_samples": extracted, "feature_pixels_per_s": pixels / max(seconds, 1e-9),
                "feature_cache": str(self.folder)}

    def _extract_missing(
        self, dataset: Dataset, extract: ExtractFn, progress: bool
    ) -> tuple[dict[str, str], dict[str, str], int, int]:
        digests: dict[str, str] = {}
        files: dict[str, str] = {}
        pixels = extracted = 0
        for sample_id in tqdm(dataset.sample_ids, desc="features", unit="image", leave=False, disable=not progress):
            cube = np.asarray(dataset.load(sample_id).cube)
            digest = digests[sample_id] = array_digest(cube)
            pixels += cube.shape[1] * cube.shape[2]
            path = self._path(digest)
            if not path.is_file():  # else left by an interrupted extraction, complete since written atomically
                with atomic_file(path) as tmp, open(tmp, "wb") as handle:
                    np.save(handle, extract(cube).astype(STORED_DTYPE))
                extracted += 1
            files[path.name] = file_hash(path)
        return digests, files, pixels, extracted


class FrozenFeatures:
    """A learner input transform: cube -> standardised features of a frozen model (``PixelTransform``-like).

    Features come from the cache when it holds the cube, else they are computed (a sample from outside the
    cached dataset still works). Standardisation statistics are fitted on training pixels only.

    Args:
        model: the frozen feature extractor ``model(pixels (N, B), wavelengths (B,)) -> (N, D)``.
        wavelengths_nm: band wavelengths in cube order.
        cache: the dataset's feature cache, if any.
        batch_pixels: pixels per forward pass.
        device: where the model runs.
        transform: ``standardize`` (default) or ``raw``: the features unchanged.
        as_cached: round computed features to :data:`STORED_DTYPE` as the cache does, so that features do not
            depend on whether a cube was in the cache.
        memo_bytes: computed features kept in memory, by cube digest, up to this many bytes. A cube outside the
            cache is typically a scene's val view (its test pixels hidden), evaluated after every epoch: without
            the memo its features were recomputed each time (15-20 s per epoch on a 100 x 100 scene on 2 CPUs).
    """

    def __init__(
        self, model: torch.nn.Module, wavelengths_nm: tuple[float, ...], *, cache: FeatureCache | None = None,
        batch_pixels: int = 8192, device: torch.device | None = None, transform: str = "standardize",
        as_cached: bool = False, memo_bytes: int = 2**30,
    ) -> None:
        self.model, self.cache, self.as_cached = model, cache, as_cached
        self._memo: dict[str, np.ndarray] = {}
        self._memo_budget = memo_bytes
        self.wavelengths_nm = np.asarray(wavelengths_nm, dtype=np.float32)
        self.batch_pixels, self.device = batch_pixels, device
        self.standardize = PixelTransform(transform)
        """The fitted feature transform: ``standardize``, or ``raw`` (identity, as the 2026 study feeds them)."""
        self.computed = 0
        """Cubes computed here rather than read from the cache or the memo."""

    def extract(self, cube: np.ndarray) -> np.ndarray:
        """Raw features ``(D, H, W)`` computed now."""
        self.computed += 1
        return extract_cube(self.model, cube, self.wavelengths_nm, batch_pixels=self.batch_pixels, device=self.device)

    def raw(self, cube: np.ndarray) -> np.ndarray:
        """Raw features, from the cache when possible; computed ones rounded as the cache stores them when
        ``as_cached`` (then a cube outside the cache, or a restored model without one, gets the cache's values)."""
        digest = array_digest(np.asarray(cube))  # once: names both the cache file and the memo entry
        found = self.cache.lookup(cube, digest=digest) if self.cache is not None else None
        if found is not None:
            return found
        if digest in self._memo:
            return self._memo[digest].copy()  # callers may scale in place
        computed = self.extract(cube)
        computed = computed.astype(STORED_DTYPE).astype(np.float32) if self.as_cached else computed
        if computed.nbytes <= self._memo_budget:
            self._memo[digest] = computed
            self._memo_budget -= computed.nbytes
            return computed.copy()
        return computed

    def fit(self, pixel_features: np.ndarray) -> FrozenFeatures:
        """Fit the standardisation on ``(N, D)`` features of training pixels."""
        self.standardize.fit(pixel_features)
        return self

    def apply(self, cube: np.ndarray) -> np.ndarray:
        """Features ``(D, H, W)`` float32 of a cube, through the fitted transform."""
        return self.standardize.apply(self.raw(cube))

    def channels(self, in_channels: int) -> int:
        return int(self.model.dim)
