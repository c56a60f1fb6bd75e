"""Segmentation metrics as pure functions of one int64 confusion matrix.

A run accumulates a single (K, K) matrix over a whole split (rows: target class, columns: predicted class) and
computes every metric from it once, so metrics never depend on how the split was cut into images or batches.
This is how HS3-Bench reports R_mu, R_M, F1_M and J_M.

Classes absent from the split
-----------------------------
A class with no target pixel and no predicted pixel (row and column sum zero) has undefined (NaN) per-class
values and does not enter any macro average (the HS3-Bench / torchmetrics convention): a split that happens to
lack a class is scored as if the class did not exist.

A class that is predicted but has no target pixel counts as 0: IoU 0, F1 0 and recall 0 (not the undefined
0/0), and these zeros enter ``miou``, ``mf1`` and ``macc`` (the HS3-Bench / torchmetrics convention). See
:func:`macc` for how this differs from scikit-learn's ``balanced_accuracy_score``.

Classes a split excludes
------------------------
A split may exclude classes too small for it (``kshot=k`` on a class with fewer than ``k + min_test`` pixels).
Pass the split's evaluated-class mask as ``classes``: an excluded class gets NaN per-class values and no macro
average counts it, so a class that the split could not test but a model still predicts does not pull J_M down
with an IoU of 0. Pixels are never dropped from the matrix: a test pixel predicted as an excluded class stays an
error of its true class (lower recall and IoU there), and ``oa``, ``kappa`` and ``fwiou`` are unchanged.

Values are stored at full precision as fractions in [0, 1]; rounding and percentages belong to reports.
"""

from __future__ import annotations

import numpy as np
import torch

from hsbench.registry import METRICS

__all__ = [
    "ConfusionAccumulator",
    "compute_metrics",
    "confusion_matrix",
    "fwiou",
    "kappa",
    "macc",
    "mf1",
    "miou",
    "oa",
    "per_class_accuracy",
    "per_class_f1",
    "per_class_iou",
    "per_class_metrics",
]

# torch.bincount on int16 input is about 4x faster than np.bincount, which first copies its input to int64.
_INT16_BINS = 2**15 - 1
# Above this many (target value, class) bins, out-of-range target values are folded away before counting,
# so a stray huge label cannot allocate a huge histogram.
_MAX_BINS = 2**22
_SHOWN_VALUES = 10


# --------------------------------------------------------------------------------------------------------------
# Confusion matrix
# --------------------------------------------------------------------------------------------------------------


def confusion_matrix(
    target: np.ndarray, prediction: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """Count (target, prediction) pairs over all pixels whose target is not ``ignore_index``.

    Args:
        target: Integer class labels of any shape (e.g. one ``(H, W)`` label map).
        prediction: Integer predicted classes, same shape as ``target``. Predictions at ignored pixels are
            validated too, since any value outside ``0..K-1`` means the model and the label set disagree.
        num_classes: K, the number of classes.
        ignore_index: Target value marking pixels that are not scored; it may lie inside ``0..K-1``, in which
            case that class simply has an empty row.

    Returns:
        int64 array of shape (K, K); entry ``[i, j]`` counts pixels of target class i predicted as class j.

    Raises:
        TypeError: If an input is not an integer (or bool) array.
        ValueError: If the shapes differ, ``num_classes`` is not positive, or a non-ignored target value or a
            prediction lies outside ``0..K-1`` (the offending values are named).
    """
    num_classes = _check_num_classes(num_classes)
    target, prediction = _flat_labels(target, prediction)
    if target.size == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    _check_predictions(prediction, num_classes)
    lo, hi = _value_span(target)
    lo, hi = min(lo, 0), max(hi, num_classes - 1)
    ignore_row = None if ignore_index is None or not lo <= ignore_index <= hi else ignore_index - lo
    if (hi - lo + 1) * num_classes > _MAX_BINS:
        target = _fold_target(target, num_classes, ignore_index)
        lo, hi = 0, num_classes
        ignore_row = num_classes
    counts = _count_pairs(target, prediction, lo, hi - lo + 1, num_classes)
    return _class_block(counts, lo, ignore_row, num_classes, ignore_index)


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def _flat_labels(target: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as flat integer arrays; bool becomes uint8 (a view, no copy)."""
    target, prediction = np.asarray(target), np.asarray(prediction)
    if target.shape != prediction.shape:
        raise ValueError(f"target and prediction shapes differ: {target.shape} vs {prediction.shape}")
    flat = []
    for name, labels in (("target", target), ("prediction", prediction)):
        if labels.dtype.kind not in "biu":
            raise TypeError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
        labels = labels.reshape(-1)
        flat.append(labels.view(np.uint8) if labels.dtype.kind == "b" else labels)
    return flat[0], flat[1]


def _as_unsigned(labels: np.ndarray) -> np.ndarray:
    """Same bytes viewed as unsigned: negative values turn huge, so one max() bounds both ends of the range."""
    return labels.view(labels.dtype.str.replace("i", "u"))


def _check_predictions(prediction: np.ndarray, num_classes: int) -> None:
    if int(_as_unsigned(prediction).max()) < num_classes:
        return
    bad = prediction[(prediction < 0) | (prediction >= num_classes)]
    raise ValueError(f"prediction values {_show(np.unique(bad))} lie outside the classes 0..{num_classes - 1}")


def _value_span(labels: np.ndarray) -> tuple[int, int]:
    """Smallest and largest label, in one pass when no label is negative (the usual case)."""
    unsigned_max = int(_as_unsigned(labels).max())
    if unsigned_max <= np.iinfo(labels.dtype).max:
        return 0, unsigned_max
    return int(labels.min()), int(labels.max())


def _fold_target(target: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """Map ignored pixels to row K after rejecting other out-of-range values (rare path: wide label values)."""
    ignored = target == ignore_index if ignore_index is not None else np.zeros(target.shape, dtype=bool)
    bad = ~ignored & ((target < 0) | (target >= num_classes))
    if bad.any():
        raise _target_error(np.unique(target[bad]), num_classes, ignore_index)
    return np.where(ignored, np.int64(num_classes), target)


def _count_pairs(target: np.ndarray, prediction: np.ndarray, lo: int, rows: int, num_classes: int) -> np.ndarray:
    """Histogram of ``(target - lo) * K + prediction`` as a (rows, K) int64 array.

    Every target value, ignored or not, gets its own row, so ignored pixels need no boolean mask and no
    compacting copy: their row is simply dropped afterwards. The caller guarantees that predictions lie in
    ``0..K-1`` and targets in ``lo..lo + rows - 1``, hence the narrow index dtype cannot overflow.
    """
    bins = rows * num_classes
    index_dtype = np.int16 if bins <= _INT16_BINS else np.int64
    index = np.empty(target.shape, dtype=index_dtype)
    # Each ufunc casts its input on the fly, so the wide input labels are read once and never copied.
    if lo:
        np.subtract(target, lo, out=index, dtype=index_dtype, casting="unsafe")
        index *= index_dtype(num_classes)
    else:
        np.multiply(target, num_classes, out=index, dtype=index_dtype, casting="unsafe")
    np.add(index, prediction, out=index, dtype=index_dtype, casting="unsafe")
    if index_dtype is np.int16:
        counts = torch.bincount(torch.from_numpy(index), minlength=bins).numpy()
    else:
        counts = np.bincount(index, minlength=bins)
    return counts.astype(np.int64, copy=False).reshape(rows, num_classes)


def _class_block(
    counts: np.ndarray, lo: int, ignore_row: int | None, num_classes: int, ignore_index: int | None
) -> np.ndarray:
    """The (K, K) block of target rows 0..K-1, after checking that no other non-ignored row has pixels."""
    if ignore_row is not None:
        counts[ignore_row] = 0
    first = -lo
    outside = np.ones(counts.shape[0], dtype=bool)
    outside[first : first + num_classes] = False
    bad_rows = np.flatnonzero(outside & (counts.sum(axis=1) > 0))
    if bad_rows.size:
        raise _target_error(bad_rows + lo, num_classes, ignore_index)
    return np.ascontiguousarray(counts[first : first + num_classes])


def _target_error(values: np.ndarray, num_classes: int, ignore_index: int | None) -> ValueError:
    return ValueError(
        f"target values {_show(values)} lie outside the classes 0..{num_classes - 1} "
        f"and are not the ignore_index ({ignore_index})"
    )


def _show(values: np.ndarray) -> str:
    shown = ", ".join(str(int(v)) for v in values[:_SHOWN_VALUES])
    more = f", ... ({values.size} distinct)" if values.size > _SHOWN_VALUES else ""
    return f"[{shown}{more}]"


class ConfusionAccumulator:
    """Running confusion matrix over the images of one split.

    Metrics must be computed from the summed matrix, not averaged over images: per-image averages weight small
    images like large ones and let classes absent from one image distort the mean.

    Args:
        num_classes: K, the number of classes.
        ignore_index: Default target value of pixels that are not scored; :meth:`add` may name it per call.
    """

    def __init__(self, num_classes: int, *, ignore_index: int | None = None) -> None:
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = ignore_index
        self._matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    @property
    def matrix(self) -> np.ndarray:
        """The (K, K) int64 counts so far, as a copy so that callers cannot corrupt the running sum."""
        return self._matrix.copy()

    def add(self, target: np.ndarray, prediction: np.ndarray, *, ignore_index: int | None = None) -> None:
        """Count one image (or batch); same contract as :func:`confusion_matrix`.

        Args:
            target: Integer class labels.
            prediction: Predicted classes, same shape as ``target``.
            ignore_index: Overrides the accumulator's ``ignore_index`` for this call when given.
        """
        ignore = self.ignore_index if ignore_index is None else ignore_index
        self._matrix += confusion_matrix(target, prediction, self.num_classes, ignore)

    def merge(self, other: ConfusionAccumulator) -> None:
        """Add the counts of another accumulator, e.g. one filled by another worker on another part of the split.

        Only the class count must agree: counts are of scored pixels, whatever value marked the ignored ones.

        Raises:
            ValueError: If the two accumulators have different ``num_classes``.
        """
        if not isinstance(other, ConfusionAccumulator):
            raise TypeError(f"can only merge a ConfusionAccumulator, got {type(other).__name__}")
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"cannot merge an accumulator of {other.num_classes} classes into one of {self.num_classes} classes"
            )
        self._matrix += other._matrix

    def __repr__(self) -> str:
        return (
            f"ConfusionAccumulator(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"pixels={int(self._matrix.sum())})"
        )


# --------------------------------------------------------------------------------------------------------------
# Per-class metrics
# --------------------------------------------------------------------------------------------------------------


def _marginals(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, target support (row sums) and predicted counts (column sums), as float64.

    ``cm`` may also be a stack ``(..., K, K)`` of matrices (the bootstrap's resamples); the marginals then have
    shape ``(..., K)``.
    """
    cm = np.asarray(cm)
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise ValueError(f"a confusion matrix must be square, got shape {cm.shape}")
    cm = cm.astype(np.float64)
    return np.diagonal(cm, axis1=-2, axis2=-1).copy(), cm.sum(axis=-1), cm.sum(axis=-2)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio that is NaN, silently, where the denominator is zero (an undefined value)."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class_iou(cm: np.ndarray) -> np.ndarray:
    """Jaccard index TP / (TP + FP + FN) per class; NaN for a class absent from both target and prediction."""
    tp, support, predicted = _marginals(cm)
    return _ratio(tp, support + predicted - tp)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall TP / (TP + FN) per class (the "class accuracy" of remote sensing).

    NaN for a class absent from both target and prediction; 0 for a class that is predicted but has no target
    pixel (the torchmetrics convention that HS3-Bench's R_M uses, so our numbers compare with published ones).
    """
    tp, support, predicted = _marginals(cm)
    out = _ratio(tp, support)
    out[(support == 0) & (predicted > 0)] = 0.0
    return out


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    """F1 = 2 TP / (2 TP + FP + FN) per class; NaN for a class absent from both target and prediction."""
    tp, support, predicted = _marginals(cm)
    return _ratio(2.0 * tp, support + predicted)


def per_class_metrics(cm: np.ndarray, classes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-class IoU, accuracy (recall) and F1, float64 arrays of length K with NaN where undefined.

    ``classes``: optional bool mask of the evaluated classes; excluded ones are NaN (arrays keep length K).
    """
    values = {"iou": per_class_iou(cm), "accuracy": per_class_accuracy(cm), "f1": per_class_f1(cm)}
    return {name: _evaluated(v, classes) for name, v in values.items()}


def _evaluated(values: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """``values`` with NaN at the classes the mask excludes (``None``: every class is evaluated)."""
    if classes is None:
        return values
    mask = np.asarray(classes, dtype=bool)
    if mask.shape[-1:] != values.shape[-1:] or np.broadcast_shapes(mask.shape, values.shape) != values.shape:
        raise ValueError(f"the class mask has shape {mask.shape}, expected {values.shape}")
    return np.where(mask, values, np.nan)


def _defined_mean(values: np.ndarray) -> float:
    """Mean over the defined (non-NaN) values; NaN, without numpy's empty-slice warning, when there are none."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


# --------------------------------------------------------------------------------------------------------------
# Scalar metrics (registered)
# --------------------------------------------------------------------------------------------------------------


@METRICS.register_module(name="oa")
def oa(cm: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Overall accuracy R_mu: the fraction of scored pixels predicted correctly; NaN for an empty matrix."""
    tp, support, _ = _marginals(cm)
    total = support.sum()
    return float(tp.sum() / total) if total > 0 else float("nan")


@METRICS.register_module(name="macc")
def macc(cm: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Mean class accuracy R_M ("AA"): mean recall over the classes present in target or prediction.

    A class that is predicted but has no target pixel counts as recall 0, as in torchmetrics' macro accuracy
    that HS3-Bench reports as R_M (and scikit-learn's ``recall_score(average="macro")`` with default labels).
    This differs from ``balanced_accuracy_score``, which drops such classes; we follow the benchmark so that
    hsbench numbers compare with the published tables. Classes outside ``classes`` (when given) are skipped.
    """
    return _defined_mean(_evaluated(per_class_accuracy(cm), classes))


@METRICS.register_module(name="mf1")
def mf1(cm: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Macro F1 F1_M over the evaluated classes present in target or prediction (predicted-only: 0)."""
    return _defined_mean(_evaluated(per_class_f1(cm), classes))


@METRICS.register_module(name="miou")
def miou(cm: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Mean IoU J_M over the evaluated classes present in target or prediction (predicted-only: 0)."""
    return _defined_mean(_evaluated(per_class_iou(cm), classes))


def miou_of_each(cm: np.ndarray, classes: np.ndarray | None = None) -> np.ndarray:
    """:func:`miou` of every matrix of a stack ``(..., K, K)``, vectorised for the bootstrap's resamples.

    ``classes`` is a bool mask broadcastable to ``(..., K)`` (one evaluated-class mask per seed, say). Same
    convention as :func:`miou`, so a report's recomputed J_M equals the stored one.
    """
    iou = _evaluated(per_class_iou(cm), classes)
    defined = ~np.isnan(iou)
    count = defined.sum(axis=-1)
    total = np.where(defined, iou, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@METRICS.register_module(name="kappa")
def kappa(cm: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Cohen's kappa: agreement beyond what the two label frequencies give by chance.

    NaN for an empty matrix, and when chance agreement is already 1 (target and prediction are both one and
    the same single class), where kappa is 0/0.
    """
    tp, support, predicted = _marginals(cm)
    total = support.sum()
    if total == 0:
        return float("nan")
    observed = tp.sum() / total
    chance = float(np.dot(support, predicted)) / total**2
    return float((observed - chance) / (1.0 - chance)) if chance < 1.0 else float("nan")


@METRICS.register_module(name="fwiou")
def fwiou(cm: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Frequency-weighted IoU: per-class IoU weighted by the class's share of target pixels.

    Predicted-only classes have weight 0, so only classes present in the target enter; NaN for an empty matrix.
    """
    tp, support, predicted = _marginals(cm)
    total = support.sum()
    if total == 0:
        return float("nan")
    present = support > 0
    iou = tp[present] / (support[present] + predicted[present] - tp[present])
    return float(np.dot(support[present] / total, iou))


def compute_metrics(cm: np.ndarray, classes: np.ndarray | None = None) -> dict[str, float]:
    """Every scalar metric registered in :data:`hsbench.registry.METRICS`, by name, computed from ``cm``.

    ``classes`` (the split's evaluated-class mask) is passed on when given, so registered metrics take it as an
    optional keyword; the pixel-level ones (``oa``, ``kappa``, ``fwiou``) accept and ignore it.
    """
    if classes is None:
        return {name: float(fn(cm)) for name, fn in sorted(METRICS.module_dict.items())}
    return {name: float(fn(cm, classes=classes)) for name, fn in sorted(METRICS.module_dict.items())}
