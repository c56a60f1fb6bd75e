"""Per-pixel input transforms fitted on training pixels only (``raw``, ``standardize``, ``pca=n``).

Statistics are fitted once on the labelled pixels of the train view and applied unchanged to every image, so
that no statistic ever depends on validation or test pixels, nor on the image being predicted (per-image
normalisation would leak the test image's statistics into its own prediction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from hsbench.data.dataset import Sample
from hsbench.errors import ConfigError, DataError

__all__ = ["PixelTransform", "build_transform", "collect_labelled_pixels", "TRANSFORMS"]


@dataclass
class PixelTransform:
    """An affine map of pixel spectra ``y = (x - mean) @ matrix`` (identity, scaling or projection)."""

    kind: str
    out_channels: int | None = None
    mean: np.ndarray | None = field(default=None, repr=False)
    matrix: np.ndarray | None = field(default=None, repr=False)

    def fit(self, pixels: np.ndarray) -> PixelTransform:
        """Fit on ``(N, C)`` training pixels."""
        if pixels.ndim != 2 or len(pixels) == 0:
            raise DataError("cannot fit an input transform: the train split has no labelled pixels")
        _FITTERS[self.kind](self, pixels.astype(np.float64))
        return self

    def apply_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Transform ``(N, C)`` pixels to ``(N, C')`` float32."""
        if self.mean is None:
            return pixels.astype(np.float32, copy=False)
        # Fitted in float64 for accurate statistics, applied in float32 so large cubes are not doubled in memory.
        mean, matrix = self.mean.astype(np.float32), self.matrix.astype(np.float32)
        return (np.asarray(pixels, dtype=np.float32) - mean) @ matrix

    def apply(self, cube: np.ndarray) -> np.ndarray:
        """Transform a ``(C, H, W)`` cube to ``(C', H, W)`` float32."""
        c, h, w = cube.shape
        flat = np.asarray(cube, dtype=np.float32).reshape(c, -1).T
        return np.ascontiguousarray(self.apply_pixels(flat).T.reshape(-1, h, w))

    def channels(self, in_channels: int) -> int:
        return self.out_channels if self.out_channels is not None else in_channels

    def state(self) -> dict[str, np.ndarray]:
        return {} if self.mean is None else {"mean": self.mean, "matrix": self.matrix}


def _fit_raw(t: PixelTransform, pixels: np.ndarray) -> None:
    t.mean, t.matrix = None, None


def _fit_standardize(t: PixelTransform, pixels: np.ndarray) -> None:
    std = pixels.std(axis=0)
    t.mean = pixels.mean(axis=0)
    # A constant band carries no information; scale it by 1 instead of dividing by zero.
    t.matrix = np.diag(1.0 / np.where(std > 1e-12, std, 1.0))


def _fit_pca(t: PixelTransform, pixels: np.ndarray) -> None:
    n = t.out_channels or 0
    if n > min(pixels.shape):
        raise ConfigError(
            f"pca={n} needs at least {n} bands and {n} training pixels; got {pixels.shape[1]} bands and "
            f"{pixels.shape[0]} pixels"
        )
    t.mean = pixels.mean(axis=0)
    centred = pixels - t.mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    # Whiten so every component reaches the network at unit variance.
    scale = singular[:n] / np.sqrt(max(len(pixels) - 1, 1))
    t.matrix = vt[:n].T / np.where(scale > 1e-12, scale, 1.0)


_FITTERS: dict[str, Callable[[PixelTransform, np.ndarray], None]] = {
    "raw": _fit_raw,
    "standardize": _fit_standardize,
    "pca": _fit_pca,
}
TRANSFORMS = tuple(_FITTERS)


def build_transform(spec: str) -> PixelTransform:
    """Parse ``raw``, ``standardize`` or ``pca=n`` into an unfitted transform."""
    kind, _, arg = spec.partition("=")
    kind = kind.strip()
    if kind not in _FITTERS:
        raise ConfigError(f"unknown input transform {spec!r}; use raw, standardize or pca=n")
    if kind == "pca":
        if not arg.strip().isdigit() or int(arg) < 1:
            raise ConfigError(f"input {spec!r}: pca needs a positive component count, e.g. pca=8")
        return PixelTransform(kind, out_channels=int(arg))
    if arg:
        raise ConfigError(f"input {spec!r}: {kind} takes no argument")
    return PixelTransform(kind)


def collect_labelled_pixels(
    samples: Iterable[Sample], ignore_index: int, *, max_pixels: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled ``(N, C)`` pixels and their ``(N,)`` labels, uniformly subsampled to at most ``max_pixels``."""
    spectra, labels = [], []
    for sample in samples:
        valid = sample.labels != ignore_index
        if valid.any():
            spectra.append(np.asarray(sample.cube)[:, valid].T)
            labels.append(sample.labels[valid])
    if not spectra:
        return np.empty((0, 0), np.float32), np.empty(0, np.int64)
    x, y = np.concatenate(spectra), np.concatenate(labels)
    if len(y) > max_pixels:
        keep = np.sort(rng.choice(len(y), size=max_pixels, replace=False))
        x, y = x[keep], y[keep]
    return x, y
