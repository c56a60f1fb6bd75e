"""Mean ranks across datasets: the Friedman test and the Nemenyi critical difference (Demšar 2006, JMLR 7:1-30).

A per-dataset leaderboard says who wins where; reviewers of benchmark papers ask whether one strategy is better
*across* datasets. Per split, each dataset ranks the strategies by mean test J_M over seeds (1 = best, ties share
the average rank); the Friedman test asks whether the mean ranks differ more than chance allows, and the Nemenyi
post hoc test calls two strategies different when their mean ranks differ by at least the critical difference
``CD = q_alpha * sqrt(k (k + 1) / (6 N))``. Friedman needs complete blocks, so a strategy missing on a dataset of
the split is left out (and named).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from hsbench.report.results import ReportData

__all__ = ["ALPHA", "RankTest", "rank_tests", "friedman", "nemenyi_q", "critical_difference", "cliques",
           "ranks_csv", "rank_lines", "rank_table"]

ALPHA = 0.05
"""Significance level of the Friedman test and of the Nemenyi critical difference."""

_METRIC = "miou"


def nemenyi_q(k: int, alpha: float = ALPHA) -> float:
    """``q_alpha`` of the Nemenyi test: the studentized range quantile for k groups and infinite df, over sqrt 2."""
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """The smallest difference of mean ranks that Nemenyi calls significant, for k strategies on n datasets."""
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n))


@dataclass(frozen=True)
class Friedman:
    """Friedman's chi-square and Iman and Davenport's less conservative F form, with their p-values."""

    chi2: float
    chi2_p: float
    f: float
    f_p: float


def friedman(mean_ranks: np.ndarray, n: int) -> Friedman:
    """The Friedman test from the mean ranks of k >= 2 strategies over n >= 2 datasets (Demšar 2006, section 3.2.2).

    No tie correction (as in Demšar), so the statistics can be checked by hand. When every dataset ranks the
    strategies alike, chi-square reaches n (k - 1) and F is infinite (p = 0).
    """
    k = len(mean_ranks)
    chi2 = 12 * n / (k * (k + 1)) * (float(np.sum(np.square(mean_ranks))) - k * (k + 1) ** 2 / 4)
    chi2 = max(chi2, 0.0)
    denominator = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denominator if denominator > 1e-12 else math.inf
    df1, df2 = k - 1, (k - 1) * (n - 1)
    f_p = float(stats.f.sf(f, df1, df2)) if math.isfinite(f) else 0.0
    return Friedman(chi2, float(stats.chi2.sf(chi2, df1)), f, f_p)


def cliques(mean_ranks: dict[str, float], cd: float) -> list[list[str]]:
    """Maximal groups of strategies (sorted by mean rank) whose mean ranks all lie less than ``cd`` apart.

    These are the bars of a critical-difference diagram; a strategy different from all others is in none.
    """
    order = sorted(mean_ranks, key=lambda label: (mean_ranks[label], label))
    groups: list[list[str]] = []
    last_end = 0
    for start in range(len(order)):
        end = start
        while end + 1 < len(order) and mean_ranks[order[end + 1]] - mean_ranks[order[start]] < cd:
            end += 1
        if end > start and end > last_end:  # not contained in the previous group
            groups.append(order[start:end + 1])
            last_end = end
    return groups


@dataclass(frozen=True)
class RankTest:
    """One split's rank analysis, or the one-line reason it has none (``reason`` set, the rest empty).

    Attributes:
        ranks: datasets x strategies, 1 = best J_M.
        excluded: strategies left out because they miss a dataset of the split.
    """

    split: str
    ranks: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: tuple[str, ...] = ()
    reason: str | None = None
    alpha: float = ALPHA

    @property
    def n(self) -> int:
        return len(self.ranks.index)

    @property
    def k(self) -> int:
        return len(self.ranks.columns)

    @property
    def mean_ranks(self) -> dict[str, float]:
        return {label: float(v) for label, v in self.ranks.mean(axis=0).items()}

    @property
    def friedman(self) -> Friedman:
        return friedman(np.array(list(self.mean_ranks.values())), self.n)

    @property
    def cd(self) -> float:
        return critical_difference(self.k, self.n, self.alpha)

    @property
    def cliques(self) -> list[list[str]]:
        return cliques(self.mean_ranks, self.cd)


def rank_tests(data: ReportData, alpha: float = ALPHA) -> list[RankTest]:
    """One :class:`RankTest` per split with completed runs, in display order."""
    runs = data.runs.dropna(subset=[_METRIC])
    return [_rank_test(data, split, runs[runs["split"] == split], alpha)
            for split in data.splits if (runs["split"] == split).any()]


def _rank_test(data: ReportData, split: str, runs: pd.DataFrame, alpha: float) -> RankTest:
    means = runs.groupby(["dataset", "label"])[_METRIC].mean().unstack("label")
    means = means.reindex(index=[d for d in data.datasets if d in means.index],
                          columns=[lab for lab in data.labels if lab in means.columns])
    complete = means.dropna(axis=1)
    excluded = tuple(lab for lab in means.columns if lab not in complete.columns)
    if len(complete.index) < 2 or len(complete.columns) < 2:
        reason = (f"no rank analysis: {len(complete.index)} dataset(s) and {len(complete.columns)} strategy(ies) "
                  "with results on every dataset; it needs at least 2 of each")
        return RankTest(split, excluded=excluded, reason=reason, alpha=alpha)
    ranks = complete.apply(lambda row: pd.Series(stats.rankdata(-row.to_numpy()), index=row.index), axis=1)
    return RankTest(split, ranks, excluded, alpha=alpha)


def ranks_csv(tests: list[RankTest]) -> str:
    """``ranks.csv``: one row per (split, strategy), with the split's Friedman statistics and critical difference."""
    rows = []
    for test in tests:
        if test.reason is not None:
            continue
        fr = test.friedman
        rows += [{"split": test.split, "label": label, "mean_rank": rank, "k": test.k, "n_datasets": test.n,
                  "friedman_chi2": fr.chi2, "friedman_p": fr.chi2_p, "iman_davenport_f": fr.f,
                  "iman_davenport_p": fr.f_p, "alpha": test.alpha, "critical_difference": test.cd}
                 for label, rank in sorted(test.mean_ranks.items(), key=lambda item: (item[1], item[0]))]
    columns = ["split", "label", "mean_rank", "k", "n_datasets", "friedman_chi2", "friedman_p", "iman_davenport_f",
               "iman_davenport_p", "alpha", "critical_difference"]
    return pd.DataFrame(rows, columns=columns).to_csv(index=False)


def rank_lines(test: RankTest) -> list[str]:
    """The split's verdict as sentences (Markdown and HTML share them)."""
    lines = []
    if test.excluded:
        lines.append(f"Left out (missing on a dataset of the split): {', '.join(test.excluded)}.")
    if test.reason is not None:
        return [*lines, test.reason[0].upper() + test.reason[1:] + "."]
    fr = test.friedman
    verdict = ("the mean ranks differ" if fr.f_p < test.alpha
               else "equal mean ranks are not rejected, so no pair below is significantly different")
    lines.append(f"k = {test.k} strategies on N = {test.n} datasets (rank 1 = best mean test J_M). Friedman "
                 f"chi² = {fr.chi2:.2f} (p = {fr.chi2_p:.3g}), Iman-Davenport F = {fr.f:.2f} (p = {fr.f_p:.3g}): "
                 f"{verdict} at alpha = {test.alpha:g}. Nemenyi critical difference CD = {test.cd:.3f}.")
    groups = test.cliques
    lines.append("Not significantly different (mean ranks less than CD apart): "
                 + ("; ".join("{" + ", ".join(g) + "}" for g in groups) if groups else "none") + ".")
    return lines


def rank_table(test: RankTest) -> tuple[list[str], list[list[str]]]:
    """Header and rows: each strategy's mean rank and its rank on every dataset, best mean rank first."""
    header = ["strategy", "mean rank", *test.ranks.index]
    order = sorted(test.mean_ranks.items(), key=lambda item: (item[1], item[0]))
    return header, [[label, f"{rank:.2f}", *(f"{r:g}" for r in test.ranks[label])] for label, rank in order]
