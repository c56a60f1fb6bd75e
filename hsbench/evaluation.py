"""Evaluating a predictor on one part of a split: one confusion matrix over all of the part's pixels.

:func:`evaluate_view` also keeps the matrix of every test unit (an image, or a block of a scene:
:mod:`hsbench.evidence`), so that reports can resample test images as well as seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hsbench.data.dataset import Sample
from hsbench.evidence import UnitConfusions, block_confusions
from hsbench.metrics import confusion_matrix, miou

__all__ = ["confusion_on_view", "evaluate_view", "unlabelled_copy", "view_miou"]


def unlabelled_copy(sample: Sample, ignore_index: int) -> Sample:
    """The sample with every label hidden: what ``Strategy.predict`` is given."""
    return Sample(sample.id, sample.cube, np.full_like(sample.labels, ignore_index))


def evaluate_view(
    predict: Callable[[Sample], np.ndarray],
    view,
    *,
    on_prediction: Callable[[Sample, np.ndarray], None] | None = None,
) -> UnitConfusions:
    """The confusion matrix of ``predict`` per test unit of a :class:`SplitView`; their sum is the part's matrix.

    The predictor sees each sample with its labels hidden; scoring uses only the part's pixels. A unit is an
    image, or on a scene dataset a block (:func:`hsbench.evidence.block_confusions`); images or blocks without
    scored pixels are left out.
    """
    card = view.card
    k = card.num_classes
    ids: list[str] = []
    matrices: list[np.ndarray] = []
    for sample in view:
        prediction = np.asarray(predict(unlabelled_copy(sample, card.ignore_index)))
        if prediction.shape != sample.labels.shape:
            raise RuntimeError(
                f"prediction for {sample.id} has shape {prediction.shape}, expected {sample.labels.shape}"
            )
        cm = confusion_matrix(sample.labels, prediction, k, card.ignore_index)  # validates the labels
        if card.task == "scene":
            blocks = block_confusions(sample.id, sample.labels, prediction, k, card.ignore_index)
            ids += blocks.ids
            matrices += list(blocks.matrices)
        elif cm.any():
            ids.append(sample.id)
            matrices.append(cm)
        if on_prediction is not None:
            on_prediction(sample, prediction)
    stacked = np.stack(matrices) if matrices else np.zeros((0, k, k), dtype=np.int64)
    return UnitConfusions(tuple(ids), stacked.astype(np.int64, copy=False))


def confusion_on_view(
    predict: Callable[[Sample], np.ndarray],
    view,
    *,
    on_prediction: Callable[[Sample, np.ndarray], None] | None = None,
) -> np.ndarray:
    """The summed confusion matrix of ``predict`` over the pixels of a :class:`SplitView`."""
    return evaluate_view(predict, view, on_prediction=on_prediction).total()


def view_miou(predict: Callable[[Sample], np.ndarray], view) -> float:
    """Mean IoU of ``predict`` on a view (the model-selection score)."""
    return miou(confusion_on_view(predict, view))
