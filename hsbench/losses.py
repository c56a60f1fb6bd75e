"""The training cross-entropy: optional class weighting and the choice of the pixels the mean runs over.

Two recipes differ here. hsbench averages over labelled pixels, so a batch's loss does not shrink with the share
of unlabelled pixels in it. HS3-Bench (``nickstheisen/hyperseg``, ``hyperseg/models/semsegmodule.py``) builds
``nn.CrossEntropyLoss(ignore_index=..., weight=class_weights, reduction="none")`` and then calls ``.mean()`` on
the per-pixel losses, ignored pixels (loss 0) included; its optional class weights are inverse-frequency (INS)
or inverse-square-root-frequency (ISNS) of the train labels. Both are options here, so that recipe can be
reproduced exactly and hsbench's default stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from hsbench.config_files import require_choice
from hsbench.data.labels import class_counts

__all__ = ["CLASS_WEIGHTINGS", "LOSS_REDUCTIONS", "LossFn", "cross_entropy", "label_histogram", "class_weights"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _inverse_frequency(histogram: np.ndarray) -> np.ndarray:
    """INS: ``total / count`` (hyperseg ``inv_num_of_samples``; no further normalisation)."""
    return histogram.sum() / histogram


def _inverse_sqrt_frequency(histogram: np.ndarray) -> np.ndarray:
    """ISNS: ``total / sqrt(count)`` (hyperseg ``inv_square_num_of_samples``; the numerator is not square-rooted)."""
    return histogram.sum() / np.sqrt(histogram)


CLASS_WEIGHTINGS: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "none": None,
    "ins": _inverse_frequency,
    "isns": _inverse_sqrt_frequency,
}
"""Class weights from the train label histogram, by name (``none``: unweighted)."""

LOSS_REDUCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor | int]] = {
    # hsbench: labelled pixels only; at least one, so a batch without labels gives 0 loss, not 0/0 = NaN.
    "labelled": lambda target_labelled: target_labelled.sum().clamp_min(1),
    # hyperseg: reduction="none" then .mean(), i.e. every pixel of the batch, ignored ones (loss 0) included.
    "all": lambda target_labelled: target_labelled.numel(),
}
"""Denominator of the summed (weighted) pixel losses, by name, from the batch's labelled-pixel mask."""


def label_histogram(labels: Iterable[np.ndarray], num_classes: int) -> np.ndarray:
    """Pixel count per class ``0..num_classes-1``; any other value (the ignore index) is not counted."""
    histogram = np.zeros(num_classes, np.float64)
    for image in labels:
        histogram += class_counts(image, num_classes)
    return histogram


def class_weights(name: str, histogram: np.ndarray) -> torch.Tensor | None:
    """The ``name`` weighting of a train histogram; ``None`` for ``none``.

    A class absent from the train labels gets weight 0 where hyperseg's formulas divide by zero (inf). Such a
    class is never a training target, so its weight never multiplies a loss term: the loss is the same, and the
    tensor stays finite.
    """
    weighting = CLASS_WEIGHTINGS[require_choice("class_weighting", name, CLASS_WEIGHTINGS)]
    if weighting is None:
        return None
    with np.errstate(divide="ignore"):
        raw = weighting(histogram)
    return torch.as_tensor(np.where(histogram > 0, raw, 0.0), dtype=torch.float32)


def cross_entropy(ignore_index: int, weight: torch.Tensor | None = None, reduction: str = "labelled") -> LossFn:
    """Cross-entropy summed over labelled pixels (each times its class weight) and divided per ``reduction``.

    With ``weight`` the denominator is still a pixel count, not torch's sum of the targets' weights, so
    ``labelled`` and ``all`` differ only by the share of labelled pixels, and ``all`` equals hyperseg's
    ``CrossEntropyLoss(weight=..., reduction="none").mean()``.
    """
    denominator = LOSS_REDUCTIONS[require_choice("loss_reduction", reduction, LOSS_REDUCTIONS)]

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = None if weight is None else weight.to(logits.device)
        total = F.cross_entropy(logits, target, weight=w, ignore_index=ignore_index, reduction="sum")
        return total / denominator(target != ignore_index)

    return loss
