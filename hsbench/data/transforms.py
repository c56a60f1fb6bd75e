"""Per-pixel input transforms (``raw``, ``standardize``, ``pca=n``, ``pca=n,per_image``).

``standardize`` and ``pca=n`` are fitted once on the labelled pixels of the train view and applied unchanged to
every image, so no statistic depends on validation or test pixels, nor on the image being predicted.

``pca=n,per_image`` is the one exception, kept because HS3-Bench's PCA1 input is built that way: every cube is
projected on its own top-``n`` principal components, fitted on all of that cube's pixels, the image being
predicted included (a prediction reads its own whole image, never another). That is only sound where an image
belongs to one split part (``card.task == "segmentation"``); on a scene the train, val and test pixels share one
image, so :func:`build_transform` refuses it there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from hsbench.data.dataset import Sample
from hsbench.errors import ConfigError, DataError

__all__ = [
    "InputTransform", "PixelTransform", "PerImagePCA", "build_transform", "collect_labelled_pixels", "TRANSFORMS",
    "TRANSFORM_SPELLINGS", "principal_directions",
]


class InputTransform(Protocol):
    """What a learner needs from an input map: fitted on ``(N, C)`` train pixels, then applied to cubes.

    Met by :class:`PixelTransform`, :class:`PerImagePCA` and the RGB adapters (:mod:`hsbench.adapters.rgb`).
    """

    def fit(self, pixels: np.ndarray) -> Any: ...

    def apply_pixels(self, pixels: np.ndarray) -> np.ndarray: ...

    def apply(self, cube: np.ndarray) -> np.ndarray: ...

    def channels(self, in_channels: int) -> int: ...

    def describe(self) -> dict[str, Any]: ...


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

    def describe(self) -> dict[str, Any]:
        """Facts to store with the run: none (the options already name the transform)."""
        return {}


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

_CHUNK_PIXELS = 32_768
"""Pixels per float64 block in :class:`PerImagePCA`: bounds its working memory (a 128-band block is 32 MiB)."""


def principal_directions(flat: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean ``(C,)`` and top-``n`` principal directions ``(C, n)`` of ``(C, N)`` pixels.

    From the eigenvectors of the ``C x C`` scatter matrix, accumulated in float64 over pixel blocks, rather than
    an SVD of all pixels: an HCV2 image has 700k+ pixels of 128 bands, and the scatter matrix is 128 x 128.
    Each direction's sign makes its largest-magnitude loading positive (ties: the first band), so the output
    does not depend on the LAPACK build. scikit-learn 1.9.1 (checked in this venv) gives the same signs; older
    releases fixed signs from the projected scores instead, so sign parity with HS3-Bench's runs is not claimed.
    """
    c, count = flat.shape
    mean = flat.mean(axis=1, dtype=np.float64)
    scatter = np.zeros((c, c))
    for start in range(0, count, _CHUNK_PIXELS):
        block = flat[:, start : start + _CHUNK_PIXELS].astype(np.float64) - mean[:, None]
        scatter += block @ block.T
    if not np.isfinite(scatter).all():
        raise DataError("per-image PCA: the image holds NaN or infinite values")
    _, vectors = np.linalg.eigh(scatter)  # eigenvalues ascending
    top = vectors[:, ::-1][:, :n]
    top *= np.sign(top[np.abs(top).argmax(axis=0), np.arange(n)])
    return mean, top


@dataclass
class PerImagePCA:
    """``pca=n,per_image``: each cube centred on its own per-band mean and projected on its own top-``n``
    principal directions (:func:`principal_directions`), not whitened.

    HS3-Bench's PCA1 (hyperseg's ``apply_pca``: a fresh ``sklearn.decomposition.PCA`` fitted and applied per
    image). Nothing is fitted on the train pixels; ``fit`` only checks the band count. Refused on scenes by
    :func:`build_transform` (see the module docstring).
    """

    out_channels: int
    fitted: bool = False
    per_image: ClassVar[bool] = True
    """Reads every pixel of the cube it transforms (what callers check before allowing it)."""

    def fit(self, pixels: np.ndarray) -> PerImagePCA:
        """Fits nothing: records that the statistics are per image, and checks there are enough bands."""
        if pixels.ndim != 2 or len(pixels) == 0:
            raise DataError("cannot fit an input transform: the train split has no labelled pixels")
        self._check_bands(pixels.shape[1])
        self.fitted = True
        return self

    def _check_bands(self, bands: int) -> None:
        if self.out_channels > bands:
            raise ConfigError(f"pca={self.out_channels},per_image needs at least {self.out_channels} bands; "
                              f"the images have {bands}")

    def apply_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Refused: pooled pixels of several images have no image of their own to fit on."""
        raise ConfigError("pca=n,per_image transforms whole images only; a pixel classifier (svm) pools pixels "
                          "of several images, so use pca=n (fitted on train pixels) with it")

    def apply(self, cube: np.ndarray) -> np.ndarray:
        """Transform a ``(C, H, W)`` cube to ``(n, H, W)`` float32 with that cube's own principal components."""
        c, h, w = cube.shape
        self._check_bands(c)
        flat = np.asarray(cube).reshape(c, -1)
        mean, directions = principal_directions(flat, self.out_channels)
        out = np.empty((self.out_channels, h * w), dtype=np.float32)
        for start in range(0, h * w, _CHUNK_PIXELS):
            block = flat[:, start : start + _CHUNK_PIXELS].astype(np.float64) - mean[:, None]
            out[:, start : start + _CHUNK_PIXELS] = directions.T @ block
        return out.reshape(self.out_channels, h, w)

    def channels(self, in_channels: int) -> int:
        return self.out_channels

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def describe(self) -> dict[str, Any]:
        """Facts to store with the run: the input statistics come from each image itself."""
        return {"input_fitted_per_image": True}


PER_IMAGE = "per_image"
"""The flag of ``pca=n,per_image`` (its canonical spelling: no spaces, after a comma)."""


def _no_argument(kind: str, arg: str) -> PixelTransform:
    if arg:
        raise ConfigError(f"input {kind}={arg}: {kind} takes no argument")
    return PixelTransform(kind)


def _pca(kind: str, arg: str) -> PixelTransform | PerImagePCA:
    count, comma, flag = arg.partition(",")
    if not count.strip().isdigit() or int(count) < 1:
        raise ConfigError(f"input {kind}={arg}: pca needs a positive component count, e.g. pca=8 or pca=1,{PER_IMAGE}")
    if not comma:
        return PixelTransform(kind, out_channels=int(count))
    if flag != PER_IMAGE:
        raise ConfigError(f"input {kind}={arg}: the only pca flag is {PER_IMAGE!r}, spelt pca={int(count)},{PER_IMAGE}")
    return PerImagePCA(int(count))


_PARSERS: dict[str, Callable[[str, str], PixelTransform | PerImagePCA]] = {
    "raw": _no_argument,
    "standardize": _no_argument,
    "pca": _pca,
}
TRANSFORM_SPELLINGS = ("raw", "standardize", "pca=n", f"pca=n,{PER_IMAGE}")
"""Every spelling :func:`build_transform` accepts, for error messages."""


def build_transform(spec: str, *, task: str | None = None) -> PixelTransform | PerImagePCA:
    """Parse ``raw``, ``standardize``, ``pca=n`` or ``pca=n,per_image`` into an unfitted transform.

    ``task`` is the dataset card's task: a per-image transform is refused on ``scene`` datasets, where fitting on
    the whole image would read val and test pixels. ``None`` skips that check (for specs fixed in code).
    """
    kind, _, arg = spec.partition("=")
    kind = kind.strip()
    if kind not in _PARSERS:
        raise ConfigError(f"unknown input transform {spec!r}; use {', '.join(TRANSFORM_SPELLINGS)}")
    transform = _PARSERS[kind](kind, arg)
    if task == "scene" and getattr(transform, "per_image", False):
        raise ConfigError(
            f"input {spec!r} fits a PCA on every pixel of the image it transforms; on a scene dataset the train, "
            f"val and test pixels share one image, so it would read val and test pixels. Use "
            f"pca={transform.out_channels} (fitted on the labelled train pixels) instead"
        )
    return transform


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
