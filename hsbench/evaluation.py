"""Evaluating a predictor on one part of a split: one confusion matrix over all of the part's pixels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hsbench.data.dataset import Sample
from hsbench.metrics import ConfusionAccumulator, miou

__all__ = ["confusion_on_view", "unlabelled_copy", "view_miou"]


def unlabelled_copy(sample: Sample, ignore_index: int) -> Sample:
    """The sample with every label hidden: what ``Strategy.predict`` is given."""
    return Sample(sample.id, sample.cube, np.full_like(sample.labels, ignore_index))


def confusion_on_view(
    predict: Callable[[Sample], np.ndarray],
    view,
    *,
    on_prediction: Callable[[Sample, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Accumulate the confusion matrix of ``predict`` over the pixels of a :class:`SplitView`.

    The predictor sees each sample with its labels hidden; scoring uses only the part's pixels.
    """
    card = view.card
    acc = ConfusionAccumulator(card.num_classes)
    for sample in view:
        prediction = np.asarray(predict(unlabelled_copy(sample, card.ignore_index)))
        if prediction.shape != sample.labels.shape:
            raise RuntimeError(
                f"prediction for {sample.id} has shape {prediction.shape}, expected {sample.labels.shape}"
            )
        acc.add(sample.labels, prediction, ignore_index=card.ignore_index)
        if on_prediction is not None:
            on_prediction(sample, prediction)
    return acc.matrix


def view_miou(predict: Callable[[Sample], np.ndarray], view) -> float:
    """Mean IoU of ``predict`` on a view (the model-selection score)."""
    return miou(confusion_on_view(predict, view))
