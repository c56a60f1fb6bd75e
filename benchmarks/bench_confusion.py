"""Confusion-matrix accumulation speed: ``hsbench.metrics.confusion_matrix`` against scikit-learn's.

Random labels over ``--pixels`` pixels (10 million by default, about 25 HSI-Drive test images), 5% of them set
to the ignore value 255, for K = 10 and K = 19 classes. Targets come as uint8 (how label maps are stored) and as
int64 (how a torch DataLoader delivers them); predictions are int64, as ``argmax`` returns them.

scikit-learn has no ignore index, so it is timed twice: including the masking a caller has to do
("sklearn+mask", the work hsbench replaces), and on arrays masked in advance ("sklearn", a lower bound on its
cost). The ratio quoted against the 20x target is the conservative one, against the lower bound. Every case
asserts that both give identical counts.

Usage::

    python benchmarks/bench_confusion.py [--pixels 10000000] [--repeats 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

from hsbench.metrics import confusion_matrix

IGNORE = 255
IGNORED_FRACTION = 0.05
CASES = ((10, np.uint8), (19, np.uint8), (10, np.int64), (19, np.int64))


def make_pixels(
    num_pixels: int, num_classes: int, target_dtype: type[np.integer], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random (target, prediction) with ``IGNORED_FRACTION`` of the targets set to ``IGNORE``."""
    target = rng.integers(0, num_classes, num_pixels).astype(target_dtype)
    target[rng.random(num_pixels) < IGNORED_FRACTION] = IGNORE
    prediction = rng.integers(0, num_classes, num_pixels, dtype=np.int64)
    return target, prediction


def median_seconds(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    """Median wall time of ``repeats`` calls (robust to other jobs on a shared machine) and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run_case(num_pixels: int, num_classes: int, target_dtype: type[np.integer], repeats: int, seed: int) -> float:
    """Time the three variants on one case, check identical counts, print a row; returns the conservative ratio."""
    target, prediction = make_pixels(num_pixels, num_classes, target_dtype, np.random.default_rng(seed))
    labels = np.arange(num_classes)

    def sklearn_with_mask() -> np.ndarray:
        valid = target != IGNORE
        return sklearn_confusion_matrix(target[valid], prediction[valid], labels=labels)

    valid = target != IGNORE
    target_valid, prediction_valid = target[valid], prediction[valid]
    t_ours, ours = median_seconds(lambda: confusion_matrix(target, prediction, num_classes, IGNORE), repeats)
    t_masked, reference = median_seconds(sklearn_with_mask, repeats)
    t_sklearn, _ = median_seconds(
        lambda: sklearn_confusion_matrix(target_valid, prediction_valid, labels=labels), repeats
    )
    assert ours.dtype == np.int64 and np.array_equal(ours, reference), "counts differ from scikit-learn"
    ratio = t_sklearn / t_ours
    print(
        f"K={num_classes:<3d} target={np.dtype(target_dtype).name:<6s} hsbench {1e3 * t_ours:7.1f} ms  "
        f"sklearn {1e3 * t_sklearn:7.1f} ms  sklearn+mask {1e3 * t_masked:7.1f} ms  "
        f"ratio {ratio:5.1f}x ({t_masked / t_ours:5.1f}x with mask)  counts identical"
    )
    return ratio


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"{args.pixels:,} pixels, {IGNORED_FRACTION:.0%} ignored, median of {args.repeats} runs")
    ratios = [run_case(args.pixels, k, dtype, args.repeats, args.seed) for k, dtype in CASES]
    print(f"smallest ratio: {min(ratios):.1f}x (target: 20x)")


if __name__ == "__main__":
    main()
