"""The spectral-spatial SVM: the scene baseline of few-shot HSI classification.

An RBF SVM (:class:`~hsbench.learners.SvmLearner`'s selection of C on val, saving and prediction) on each pixel's
transformed spectrum concatenated with the mean of the transformed spectra in its ``svm_window`` x ``svm_window``
neighbourhood (:func:`masked_box_mean`), the window clipped to the image at its borders.

Reading rules (:mod:`hsbench.strategy`): a training feature's neighbourhood mean is taken over the view's readable
pixels only (:func:`~hsbench.strategy.readable_mask`; the centre pixel always counts), so no val, test or guard
spectrum enters a training feature. A predicted image (a val image with its test pixels hidden, or a whole test
image) is read whole, every pixel counting.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample
from hsbench.data.transforms import PixelTransform, collect_labelled_pixels
from hsbench.errors import ConfigError, DataError
from hsbench.learners import SvmLearner
from hsbench.strategy import RunContext, SplitView, readable_mask

if TYPE_CHECKING:
    from hsbench.saved_model import ModelState

__all__ = ["SpectralSpatialSvmLearner", "masked_box_mean", "window_option"]

_CHUNK_CHANNELS = 16
"""Channels reduced at a time (the float64 sums of a large image stay a few channels deep)."""


def window_option(cfg: Mapping[str, Any]) -> int:
    """``svm_window``, checked: a positive odd integer (the window is centred on its pixel)."""
    value = cfg["svm_window"]
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1 or value % 2 == 0:
        raise ConfigError(f"svm_window must be a positive odd integer (1, 3, 5, ...), not {value!r}")
    return int(value)


def _box_sum(a: np.ndarray, radius: int) -> np.ndarray:
    """Sum of ``a`` ``(..., H, W)`` over each pixel's ``(2 radius + 1)``-square window clipped to the image
    (cumulative sums along each spatial axis; float64)."""
    for axis in (-2, -1):
        n = a.shape[axis]
        sums = np.cumsum(a, axis=axis, dtype=np.float64)
        zero = np.zeros_like(np.take(sums, [0], axis=axis))
        sums = np.concatenate([zero, sums], axis=axis)
        index = np.arange(n)
        a = np.take(sums, np.minimum(index + radius + 1, n), axis=axis) - np.take(sums, np.maximum(index - radius, 0),
                                                                               axis=axis)
    return a


def masked_box_mean(cube: np.ndarray, mask: np.ndarray | None, radius: int) -> np.ndarray:
    """Per-band mean of ``cube`` ``(C, H, W)`` over each pixel's ``(2 radius + 1)``-square window, clipped to the
    image, counting only the pixels of ``mask`` ``(H, W)`` (``None``: all); float32.

    The sum of the ``mask`` pixels' values over the window divided by the number of ``mask`` pixels in it (cumulative
    sums in float64). A pixel whose window holds no ``mask`` pixel gets 0; a caller that wants its centre pixel
    counted puts it in ``mask``.
    """
    c, h, w = cube.shape
    weight = np.ones((h, w)) if mask is None else np.asarray(mask, dtype=np.float64)
    count = _box_sum(weight, radius)
    count = np.where(count > 0.5, count, np.inf)  # an empty window: sum 0 / inf = 0
    out = np.empty((c, h, w), dtype=np.float32)
    for start in range(0, c, _CHUNK_CHANNELS):
        block = np.asarray(cube[start : start + _CHUNK_CHANNELS], dtype=np.float64)
        if mask is not None:  # unreadable values are dropped, not multiplied by 0 (an inf or NaN would survive)
            block = np.where(mask, block, 0.0)
        out[start : start + _CHUNK_CHANNELS] = _box_sum(block, radius) / count
    return out


class SpectralSpatialSvmLearner(SvmLearner):
    """RBF SVM on ``[spectrum, mean of the spectra in its svm_window x svm_window neighbourhood]``; C on val mIoU.

    Training features are computed on the transformed train cube with the view's unreadable pixels excluded from
    the means (the centre pixel always counted); predicted images are read whole.
    """

    def __init__(self, cfg: dict[str, Any], ctx: RunContext, card: DatasetCard) -> None:
        super().__init__(cfg, ctx, card)
        self.radius = window_option(cfg) // 2

    @classmethod
    def spatial_context(cls, cfg: Mapping[str, Any]) -> int:
        """Half the window: ``svm_window // 2`` (2 at 5)."""
        return window_option(cfg) // 2

    def features(self, cube: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """``(2 C', H, W)``: the transformed spectra ``cube`` ``(C', H, W)`` and their neighbourhood means over
        ``mask`` (``None``: every pixel)."""
        return np.concatenate([cube, masked_box_mean(cube, mask, self.radius)])

    def pixel_features(self, features: np.ndarray) -> np.ndarray:
        return self.features(features, None)

    def _feature_samples(self, transform: PixelTransform, train: SplitView) -> Iterator[Sample]:
        for sample in train:
            labelled = sample.labels != self.card.ignore_index
            if not labelled.any():
                continue
            readable = readable_mask(train, sample.id)
            mask = None if readable is None else readable | labelled  # the centre pixel always counts
            yield Sample(sample.id, self.features(transform.apply(sample.cube), mask), sample.labels)

    def training_pixels(self, transform: PixelTransform, train: SplitView) -> tuple[np.ndarray, np.ndarray]:
        """Features of at most ``svm_max_pixels`` labelled train pixels (uniformly subsampled with the ``order``
        stream), each image's neighbourhood means taken over its readable pixels only."""
        return collect_labelled_pixels(self._feature_samples(transform, train), self.card.ignore_index,
                                       max_pixels=int(self.cfg["svm_max_pixels"]), rng=self.ctx.seeds.rng("order"))

    def model_state(self) -> ModelState:
        state = super().model_state()
        state.meta["svm_window"] = 2 * self.radius + 1
        return state

    def restore(self, transform: PixelTransform, state: ModelState) -> None:
        if state.meta.get("svm_window") != 2 * self.radius + 1:
            raise DataError(f"the saved SVM was fitted with svm_window={state.meta.get('svm_window')}, but the run's "
                            f"options say {2 * self.radius + 1}")
        super().restore(transform, state)

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {**super().search_space(trial), "svm_window": trial.suggest_categorical("svm_window", [3, 5, 7])}
