"""How hard are the synthetic driving sets for a per-pixel linear classifier?

Trains scikit-learn's multinomial logistic regression on raw spectra of a subsample of train-split pixels and
reports, on the test split: overall accuracy (OA), mean class accuracy (mAcc) and the row-normalised confusion
matrix, unweighted and with class-balanced weights. The "context" lines add local context (5 x 5 and 11 x 11
box means of the spectra) to the same linear model, to show that spatial context helps. The synthetic sets are
meant to land well below perfect on raw spectra (classes share materials: grey cars and concrete, painted
facades and white cars, glass and shaded asphalt).

Run: ``OMP_NUM_THREADS=1 python benchmarks/synthetic_linear_probe.py [--train-pixels N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.ndimage import uniform_filter
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hsbench.data import Dataset
from hsbench.registry import DATASETS, lookup


def _features(cube: np.ndarray, context: bool) -> np.ndarray:
    """``(H * W, F)`` pixel features: the spectrum, optionally with box means around each pixel."""
    layers = [cube]
    if context:
        layers += [uniform_filter(cube, size=(1, k, k), mode="nearest") for k in (5, 11)]
    stacked = np.concatenate(layers, axis=0)
    return stacked.reshape(stacked.shape[0], -1).T


def _pixels(dataset: Dataset, part: str, context: bool) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for sample_id in dataset.card.official().part(part):
        sample = dataset.load(sample_id)
        labels = sample.labels.ravel()
        keep = labels != dataset.card.ignore_index
        xs.append(_features(sample.cube, context)[keep])
        ys.append(labels[keep])
    return np.concatenate(xs), np.concatenate(ys)


def probe(
    dataset: Dataset, *, train_pixels: int, seed: int, context: bool = False, balanced: bool = False
) -> np.ndarray:
    """Confusion matrix (rows: truth, columns: prediction) of a linear probe on the test split.

    ``balanced`` weights classes inversely to their frequency, so rare classes (pedestrians, metal) are not
    simply absorbed by road: its confusion matrix shows which spectra are alike rather than which are rare.
    """
    rng = np.random.default_rng(seed)
    x_train, y_train = _pixels(dataset, "train", context)
    pick = rng.choice(len(y_train), size=min(train_pixels, len(y_train)), replace=False)
    weights = "balanced" if balanced else None
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight=weights))
    model.fit(x_train[pick], y_train[pick])
    x_test, y_test = _pixels(dataset, "test", context)
    k = dataset.card.num_classes
    return np.bincount(y_test * k + model.predict(x_test), minlength=k * k).reshape(k, k)


def summarise(cm: np.ndarray) -> tuple[float, float]:
    """Overall accuracy and mean class accuracy (classes without test pixels left out)."""
    support = cm.sum(axis=1)
    per_class = np.diag(cm)[support > 0] / support[support > 0]
    return float(np.trace(cm) / cm.sum()), float(per_class.mean())


def _print_matrix(cm: np.ndarray, names: tuple[str, ...]) -> None:
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    short = [n[:6] for n in names]
    print("    " + " ".join(f"{s:>6}" for s in short) + "   <- predicted")
    for name, row, total in zip(short, rows, cm.sum(axis=1)):
        print(f"    {' '.join(f'{v:6.2f}' for v in row)}   {name} (n={total})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-pixels", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", nargs="+", default=["synthetic_drive", "synthetic_hyko"])
    args = parser.parse_args()
    for name in args.datasets:
        dataset = lookup(DATASETS, name).open(seed=args.seed)
        start = time.perf_counter()
        print(f"{name}: {dataset.card.num_bands} bands, {args.train_pixels} train pixels, seed {args.seed}")
        matrices = {}
        for balanced in (False, True):
            for context in (False, True):
                cm = probe(dataset, train_pixels=args.train_pixels, seed=args.seed, context=context, balanced=balanced)
                matrices[balanced, context] = cm
                oa, macc = summarise(cm)
                label = f"{'class-balanced' if balanced else 'unweighted'}, {'spectra + context' if context else 'raw'}"
                print(f"  linear {label:34s} OA {oa:.3f}  mAcc {macc:.3f}")
        elapsed = time.perf_counter() - start
        print(f"  test confusion, class-balanced, raw spectra (rows: truth, row-normalised; {elapsed:.0f} s in all):")
        _print_matrix(matrices[True, False], dataset.card.class_names)


if __name__ == "__main__":
    main()
