"""Is the winner's lead real? A paired comparison of the best and the runner-up over seeds.

Seeds pair naturally: one seed fixes the split (and the initialisation streams) for every strategy, so the
per-seed difference removes the split-to-split variation that dominates few-label results. The mean difference
gets a percentile bootstrap confidence interval; the gap is called real when the interval excludes zero. With
three seeds the interval is coarse (27 distinct resamples), which the report says next to the number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hsbench.report.results import ReportData

__all__ = ["PairedComparison", "bootstrap_ci", "compare_best_two", "MIN_PAIRED_SEEDS"]

_RESAMPLES = 10_000
_CONFIDENCE = 0.95
MIN_PAIRED_SEEDS = 3
"""Fewer paired seeds get no interval: two values give a bootstrap of four resamples, which means nothing."""


@dataclass(frozen=True)
class PairedComparison:
    """Best vs runner-up on one (split, dataset) by ``metric``; differences are best minus runner-up."""

    split: str
    dataset: str
    metric: str
    best: str
    runner_up: str
    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean_difference: float
    ci_low: float
    ci_high: float
    wins: int

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def verdict(self) -> str:
        if self.n < MIN_PAIRED_SEEDS:
            return f"{self.n} paired seed(s): too few for an interval"
        if self.ci_low > 0:
            return "real: the interval excludes 0"
        return f"not resolved with {self.n} seeds: the interval includes 0"


def bootstrap_ci(
    differences: np.ndarray, *, confidence: float = _CONFIDENCE, resamples: int = _RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``differences`` (seeded, so a report is reproducible)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def compare_best_two(data: ReportData, metric: str = "miou") -> list[PairedComparison]:
    """For every (split, dataset) with two or more strategies: best vs runner-up by mean ``metric``."""
    comparisons = []
    for split in data.splits:
        for dataset in data.datasets:
            runs = data.select(split=split, dataset=dataset)
            comparison = _compare(runs, split, dataset, metric)
            if comparison is not None:
                comparisons.append(comparison)
    return comparisons


def _compare(runs: pd.DataFrame, split: str, dataset: str, metric: str) -> PairedComparison | None:
    means = runs.groupby("label")[metric].mean().dropna().sort_values(ascending=False, kind="stable")
    if len(means) < 2:
        return None
    best, runner_up = means.index[0], means.index[1]
    per_seed = runs[runs["label"].isin([best, runner_up])].pivot_table(
        index="seed", columns="label", values=metric, aggfunc="mean").dropna()
    differences = (per_seed[best] - per_seed[runner_up]).to_numpy() if len(per_seed) else np.zeros(0)
    low, high = bootstrap_ci(differences) if differences.size >= MIN_PAIRED_SEEDS else (float("nan"), float("nan"))
    return PairedComparison(
        split=split, dataset=dataset, metric=metric, best=str(best), runner_up=str(runner_up),
        seeds=tuple(int(s) for s in per_seed.index), differences=tuple(float(x) for x in differences),
        mean_difference=float(differences.mean()) if differences.size else float("nan"),
        ci_low=low, ci_high=high, wins=int((differences > 0).sum()),
    )
