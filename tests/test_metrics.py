"""Metrics: confusion matrix and scalar metrics cross-checked against scikit-learn, plus the absent-class rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from hsbench.metrics import (
    ConfusionAccumulator,
    compute_metrics,
    confusion_matrix,
    fwiou,
    kappa,
    macc,
    mf1,
    miou,
    oa,
    per_class_accuracy,
    per_class_f1,
    per_class_iou,
    per_class_metrics,
)
from hsbench.registry import METRICS

IGNORE = 255
SEEDS = range(5)
SCALAR_METRICS = ("oa", "macc", "mf1", "miou", "kappa", "fwiou")


class Labels:
    """Random target/prediction maps with ignored pixels and three kinds of class presence.

    Of K classes, two are absent from the scored pixels (though predicted at ignored pixels, which must not
    count), one is only predicted, never in the target, and the rest are in both.
    """

    def __init__(self, seed: int, *, num_classes: int = 9, shape: tuple[int, ...] = (4, 30, 40), dtype=np.uint8):
        rng = np.random.default_rng(seed)
        order = rng.permutation(num_classes)
        self.num_classes = num_classes
        self.absent, self.predicted_only, self.in_target = order[:2], order[2:3], np.sort(order[3:])
        target = rng.choice(self.in_target, size=shape)
        noise = rng.choice(np.concatenate([self.in_target, self.predicted_only]), size=shape)
        prediction = np.where(rng.random(shape) < 0.7, target, noise)
        ignored = rng.random(shape) < 0.1
        target[ignored] = IGNORE
        prediction[ignored] = rng.integers(0, num_classes, size=int(ignored.sum()))
        self.target, self.prediction = target.astype(dtype), prediction.astype(np.int64)
        self.valid = self.target != IGNORE
        self.t, self.p = self.target[self.valid].astype(np.int64), self.prediction[self.valid]
        assert np.isin(self.predicted_only, self.p).all() and not np.isin(self.absent, np.union1d(self.t, self.p)).any()

    @property
    def cm(self) -> np.ndarray:
        return confusion_matrix(self.target, self.prediction, self.num_classes, IGNORE)

    @property
    def present(self) -> np.ndarray:
        """Classes in target or prediction: the ones that enter miou and mf1."""
        return np.union1d(self.t, self.p)


def reference_cm(target: np.ndarray, prediction: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    valid = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    return skm.confusion_matrix(target[valid], prediction[valid], labels=np.arange(num_classes))


# --------------------------------------------------------------------------------------------------------------
# Confusion matrix
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_matches_sklearn(seed: int, dtype: type) -> None:
    labels = Labels(seed, dtype=dtype)
    cm = labels.cm
    assert cm.dtype == np.int64 and cm.shape == (9, 9)
    np.testing.assert_array_equal(cm, reference_cm(labels.target, labels.prediction, 9, IGNORE))
    assert cm.sum() == labels.valid.sum()


@pytest.mark.parametrize(
    ("num_classes", "ignore_index", "dtype"),
    [
        (200, IGNORE, np.uint8),  # 256 x 200 bins: the int64 np.bincount path instead of int16 torch.bincount
        (6, -1, np.int64),  # negative ignore value: target rows are offset
        (6, -100, np.int16),  # torch's CrossEntropyLoss default ignore value
        (6, 10**6, np.int32),  # far-away ignore value: folded to one extra row instead of a huge histogram
        (6, 0, np.uint8),  # ignore value inside 0..K-1: that class just has an empty row
        (6, None, np.uint8),
    ],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_ignore_values_and_sizes(seed: int, num_classes: int, ignore_index: int | None, dtype) -> None:
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, size=(50, 60)).astype(dtype)
    prediction = rng.integers(0, num_classes, size=(50, 60))
    if ignore_index is not None:
        target[rng.random(target.shape) < 0.2] = ignore_index
    cm = confusion_matrix(target, prediction, num_classes, ignore_index)
    np.testing.assert_array_equal(cm, reference_cm(target, prediction, num_classes, ignore_index))


def test_confusion_matrix_accepts_views_bools_and_tensors() -> None:
    labels = Labels(0)
    target, prediction = labels.target[:, ::2, 1::3], labels.prediction[:, ::2, 1::3]  # non-contiguous views
    expected = reference_cm(target, prediction, 9, IGNORE)
    np.testing.assert_array_equal(confusion_matrix(target, prediction, 9, IGNORE), expected)
    tensor_cm = confusion_matrix(torch.from_numpy(labels.target), torch.from_numpy(labels.prediction), 9, IGNORE)
    np.testing.assert_array_equal(tensor_cm, labels.cm)
    target, prediction = np.array([True, True, False]), np.array([True, False, False])
    np.testing.assert_array_equal(confusion_matrix(target, prediction, 2), [[1, 0], [1, 1]])


def test_confusion_matrix_of_no_pixels_is_zero() -> None:
    empty = np.zeros((0, 5), dtype=np.uint8)
    cm = confusion_matrix(empty, empty, 3, IGNORE)
    assert cm.dtype == np.int64 and cm.shape == (3, 3) and not cm.any()
    all_ignored = np.full((4, 4), IGNORE, dtype=np.uint8)
    assert not confusion_matrix(all_ignored, np.zeros((4, 4), np.int64), 3, IGNORE).any()


@pytest.mark.parametrize(
    ("target", "prediction", "ignore_index", "message"),
    [
        ([0, 9, 2, 9, 12], [0, 1, 2, 1, 1], IGNORE, r"target values \[9, 12\] lie outside the classes 0\.\.7"),
        ([0, -1, 2], [0, 1, 2], None, r"target values \[-1\]"),
        ([0, 255, 2], [0, 1, 2], None, r"target values \[255\]"),
        ([0, 10**7, 10**6], [0, 1, 2], 10**6, r"target values \[10000000\]"),  # the folding path
        ([0, 1, 2], [0, 8, 2], IGNORE, r"prediction values \[8\] lie outside the classes 0\.\.7"),
        ([0, 1, 2], [0, -3, 2], IGNORE, r"prediction values \[-3\]"),
        ([0, IGNORE, 2], [0, 99, 2], IGNORE, r"prediction values \[99\]"),  # even where the target is ignored
    ],
)
def test_out_of_range_values_are_named(target: list, prediction: list, ignore_index: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        confusion_matrix(np.array(target), np.array(prediction), 8, ignore_index)


def test_long_lists_of_bad_values_are_shortened() -> None:
    with pytest.raises(ValueError, match=r"\.\.\. \(40 distinct\)"):
        confusion_matrix(np.arange(40) + 10, np.zeros(40, np.int64), 8)


def test_bad_shapes_types_and_class_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"shapes differ: \(2, 3\) vs \(3, 2\)"):
        confusion_matrix(np.zeros((2, 3), int), np.zeros((3, 2), int), 4)
    with pytest.raises(TypeError, match="integer class indices"):
        confusion_matrix(np.zeros(3, np.float32), np.zeros(3, int), 4)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(np.zeros(3, int), np.zeros(3, int), 0)


# --------------------------------------------------------------------------------------------------------------
# Accumulator
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_accumulating_image_chunks_equals_one_shot(seed: int) -> None:
    labels = Labels(seed, shape=(7, 20, 25))
    acc = ConfusionAccumulator(9, ignore_index=IGNORE)
    assert acc.matrix.dtype == np.int64 and acc.matrix.shape == (9, 9) and not acc.matrix.any()
    for bounds in [(0, 1), (1, 4), (4, 7)]:
        acc.add(labels.target[slice(*bounds)], labels.prediction[slice(*bounds)])
    np.testing.assert_array_equal(acc.matrix, labels.cm)

    first, second = ConfusionAccumulator(9), ConfusionAccumulator(9)
    first.add(labels.target[:3], labels.prediction[:3], ignore_index=IGNORE)
    second.add(labels.target[3:], labels.prediction[3:], ignore_index=IGNORE)
    first.merge(second)
    np.testing.assert_array_equal(first.matrix, labels.cm)


def test_accumulator_guards_its_counts() -> None:
    acc = ConfusionAccumulator(3)
    acc.add(np.array([0, 1]), np.array([0, 2]))
    acc.matrix[0, 0] = 100
    assert acc.matrix[0, 0] == 1
    with pytest.raises(ValueError, match="4 classes into one of 3"):
        acc.merge(ConfusionAccumulator(4))
    with pytest.raises(TypeError):
        acc.merge(np.zeros((3, 3), np.int64))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------
# Scalar and per-class metrics against scikit-learn
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_oa_and_kappa_match_sklearn(seed: int) -> None:
    labels = Labels(seed)
    assert oa(labels.cm) == pytest.approx(skm.accuracy_score(labels.t, labels.p), rel=1e-12)
    assert kappa(labels.cm) == pytest.approx(skm.cohen_kappa_score(labels.t, labels.p), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_miou_and_mf1_average_over_classes_in_target_or_prediction(seed: int) -> None:
    labels = Labels(seed)
    present = labels.present
    sk_iou = skm.jaccard_score(labels.t, labels.p, labels=present, average=None)
    sk_f1 = skm.f1_score(labels.t, labels.p, labels=present, average=None)
    np.testing.assert_allclose(per_class_iou(labels.cm)[present], sk_iou, rtol=1e-12)
    np.testing.assert_allclose(per_class_f1(labels.cm)[present], sk_f1, rtol=1e-12)
    assert miou(labels.cm) == pytest.approx(sk_iou.mean(), rel=1e-12)
    assert mf1(labels.cm) == pytest.approx(sk_f1.mean(), rel=1e-12)
    # A predicted-only class scores 0 and is averaged in, as in scikit-learn's default labels.
    assert per_class_iou(labels.cm)[labels.predicted_only] == 0 and per_class_f1(labels.cm)[labels.predicted_only] == 0
    assert miou(labels.cm) == pytest.approx(skm.jaccard_score(labels.t, labels.p, average="macro"), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_macc_is_macro_recall_over_classes_in_target_or_prediction(seed: int) -> None:
    labels = Labels(seed)
    sk_recall = skm.recall_score(labels.t, labels.p, labels=labels.present, average=None, zero_division=0)
    np.testing.assert_allclose(per_class_accuracy(labels.cm)[labels.present], sk_recall, rtol=1e-12)
    assert macc(labels.cm) == pytest.approx(sk_recall.mean(), rel=1e-12)
    assert macc(labels.cm) == pytest.approx(skm.recall_score(labels.t, labels.p, average="macro", zero_division=0))


def test_macc_counts_predicted_only_classes_as_zero_like_hs3bench() -> None:
    """HS3-Bench's R_M (torchmetrics macro accuracy) scores a predicted-only class 0, so it is lower than
    scikit-learn's balanced accuracy, which drops such classes."""
    labels = Labels(0)
    assert (per_class_accuracy(labels.cm)[labels.predicted_only] == 0).all()
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        balanced = skm.balanced_accuracy_score(labels.t, labels.p)
    n_target, n_union = np.unique(labels.t).size, labels.present.size
    assert macc(labels.cm) == pytest.approx(balanced * n_target / n_union, rel=1e-12)
    assert macc(labels.cm) < balanced


@pytest.mark.parametrize("seed", SEEDS)
def test_fwiou_matches_its_definition(seed: int) -> None:
    labels = Labels(seed)
    expected = 0.0
    for c in np.unique(labels.t):
        in_t, in_p = labels.t == c, labels.p == c
        expected += in_t.mean() * (in_t & in_p).sum() / (in_t | in_p).sum()
    assert fwiou(labels.cm) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_classes_absent_from_target_and_prediction_change_nothing(seed: int) -> None:
    labels = Labels(seed)
    cm = labels.cm
    for values in per_class_metrics(cm).values():
        assert np.isnan(values[labels.absent]).all()
        assert not np.isnan(values[labels.in_target]).any()
    reduced = np.delete(np.delete(cm, labels.absent, axis=0), labels.absent, axis=1)
    full, without = compute_metrics(cm), compute_metrics(reduced)
    assert full == pytest.approx(without, rel=1e-12)


def test_hand_computed_example() -> None:
    # Class 2 is predicted once but never in the target; class 3 is absent from both.
    cm = np.array([[3, 1, 0, 0], [2, 4, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(per_class_iou(cm), [0.5, 0.5, 0.0, np.nan])
    np.testing.assert_allclose(per_class_accuracy(cm), [3 / 4, 4 / 7, 0.0, np.nan])
    np.testing.assert_allclose(per_class_f1(cm), [2 / 3, 2 / 3, 0.0, np.nan])
    expected = {"oa": 7 / 11, "macc": 37 / 84, "mf1": 4 / 9, "miou": 1 / 3, "kappa": 1 / 3, "fwiou": 0.5}
    assert compute_metrics(cm) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shape", [(3, 3), (0, 0)])
def test_empty_matrix_gives_nan_without_warnings(shape: tuple[int, int]) -> None:
    cm = np.zeros(shape, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scalars, per_class = compute_metrics(cm), per_class_metrics(cm)
    assert all(np.isnan(v) for v in scalars.values())
    assert all(v.shape == (shape[0],) and np.isnan(v).all() for v in per_class.values())


def test_kappa_is_nan_when_chance_agreement_is_total() -> None:
    assert np.isnan(kappa(np.array([[5, 0], [0, 0]])))


def test_non_square_matrix_is_rejected() -> None:
    with pytest.raises(ValueError, match="square"):
        miou(np.zeros((2, 3), np.int64))


# --------------------------------------------------------------------------------------------------------------
# Registry: every registered metric is held to the same contract
# --------------------------------------------------------------------------------------------------------------


def test_registry_holds_the_six_metrics_and_compute_metrics_returns_them() -> None:
    assert set(SCALAR_METRICS) <= set(METRICS.module_dict)
    for name, fn in zip(SCALAR_METRICS, (oa, macc, mf1, miou, kappa, fwiou)):
        assert METRICS.get(name) is fn
    cm = Labels(0).cm
    values = compute_metrics(cm)
    assert set(values) == set(METRICS.module_dict)
    assert all(values[name] == METRICS.get(name)(cm) for name in SCALAR_METRICS)


@pytest.mark.parametrize("name", sorted(METRICS.module_dict))
@pytest.mark.parametrize("seed", SEEDS)
def test_registered_metric_contract(name: str, seed: int) -> None:
    fn = METRICS.get(name)
    cm = Labels(seed).cm
    value = fn(cm)
    assert isinstance(value, float) and -1.0 <= value <= 1.0
    perm = np.random.default_rng(seed).permutation(cm.shape[0])
    assert fn(cm[np.ix_(perm, perm)]) == pytest.approx(value, rel=1e-12)  # class order does not matter
    perfect = np.diag(cm.sum(axis=1))
    assert fn(perfect) == pytest.approx(1.0)
    assert np.isnan(fn(np.zeros_like(cm)))
