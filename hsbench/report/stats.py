"""Is one strategy's lead real? A paired difference in J_M over seeds *and* test units.

Seeds pair strategies (one seed fixes the split and the initialisation streams for every strategy), and within a
seed the test units (images, or blocks of a scene: :mod:`hsbench.evidence`) pair them again. The statistic is
the mean over seeds of J_M(A) - J_M(B), each J_M computed from the *summed* confusion matrices of the seed's
units, never from per-image J_M.

Its standard error has two parts (docs/statistics.md derives them):

* seed level, ``s_d^2 / S``: the spread of the per-seed differences. It already holds the test-unit noise that is
  private to each seed. Seeds are not bootstrapped: a bootstrap over 3 values has 10 distinct resamples and
  underestimates the variance by (S-1)/S, which made the old percentile interval just [min, max].
* unit level, ``C``: units that are the same in every seed (a fixed test set, a scene's block grid) move all
  per-seed differences together, which the seed spread cannot see. A paired bootstrap of units (the same resampled
  units for both strategies and every seed) measures it as the covariance of the resampled per-seed differences
  between seeds.

The interval is ``T ± sqrt(t(S-1)^2 · s_d^2/S + t(N-1)^2 · C)``: each part scaled by the t quantile of its own
degrees of freedom (S seeds, N units), and ``p`` is the level at which that interval just reaches 0.
``p_signflip`` is the exact sign-flip permutation p-value over seeds; flipping units as well is not valid when
strategies interact with seeds (docs/statistics.md shows the false positive rate it gives), and over seeds alone
it cannot fall below 2/2^S (0.25 at 3 seeds), so it is reported as a check and ``p`` decides.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from hsbench.evidence import UnitConfusions
from hsbench.metrics import miou_of_each

__all__ = ["DifferenceEstimate", "MIN_PAIRED_SEEDS", "METHOD", "PairedComparison", "batched_estimate",
           "class_mask", "holm", "miou_batched", "paired_difference"]

_RESAMPLES = 2_000
_CONFIDENCE = 0.95
MIN_PAIRED_SEEDS = 3
"""Fewer paired seeds get no interval: the seed-level variance of two values has one degree of freedom."""
METHOD = ("paired two-level: t over seeds + paired bootstrap of the test units shared by the seeds, J_M from "
          "summed matrices; sign-flip permutation over seeds")


miou_batched = miou_of_each
"""J_M of every (K, K) matrix in ``cm[..., K, K]`` by the stored J_M's rule (:func:`hsbench.metrics.miou_of_each`)."""


def class_mask(num_classes: int, excluded: Sequence[int]) -> np.ndarray:
    """The evaluated-class mask of a split that excluded ``excluded`` (as ``Split.evaluated_classes``)."""
    mask = np.ones(num_classes, dtype=bool)
    mask[list(excluded)] = False
    return mask


@dataclass(frozen=True)
class DifferenceEstimate:
    """J_M(A) - J_M(B) with its interval; fractions, not percentage points."""

    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    units: int
    estimate: float
    ci_low: float
    ci_high: float
    se: float
    p: float
    p_signflip: float

    @property
    def resolved(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)

    def statement(self, a: str, b: str) -> str:
        """``A > B by +x.x J_M (95 % CI [lo, hi], p = ..)`` or ``not resolved (..)``, in percentage points."""
        if len(self.seeds) < MIN_PAIRED_SEEDS:
            return f"not resolved: {len(self.seeds)} paired seed(s), at least {MIN_PAIRED_SEEDS} needed"
        if not self.resolved:
            return f"not resolved ({100 * self.estimate:+.1f} J_M, {self._interval(1)})"
        winner, loser, sign = (a, b, 1) if self.estimate > 0 else (b, a, -1)
        return f"{winner} > {loser} by {100 * sign * self.estimate:+.1f} J_M ({self._interval(sign)})"

    def _interval(self, sign: int) -> str:
        """The interval of ``sign`` x (A - B): a verdict naming B the winner states B - A and its interval."""
        low, high = sorted((100 * sign * self.ci_low, 100 * sign * self.ci_high))
        return f"95 % CI [{low:+.1f}, {high:+.1f}], p = {self.p:.2g}"


def batched_estimate(
    a: np.ndarray, b: np.ndarray, weights: np.ndarray, classes: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The estimate for a batch of comparisons at once (the simulation in tests/test_statistics.py uses this).

    Args:
        a, b: ``(M, S, N, K, K)`` unit matrices of the two strategies: M comparisons, S paired seeds, N units
            aligned by id (a unit a seed lacks is a zero matrix).
        weights: ``(R, N)`` bootstrap counts of the units, shared by both strategies and all seeds.
        classes: ``(S, K)`` evaluated-class mask of each seed's split (``None``: every class).

    Returns:
        ``estimate, se, ci_low, ci_high, p, differences`` arrays over M (``differences``: ``(M, S)``).
    """
    seeds, units = a.shape[1], int(((a.sum((-1, -2)) + b.sum((-1, -2))) > 0).any(1).sum(-1).max())
    d = miou_batched(a.sum(2), classes) - miou_batched(b.sum(2), classes)
    estimate = d.mean(-1)
    seed_var = d.var(-1, ddof=1) / seeds
    star = (miou_batched(np.einsum("ru,msukl->mrskl", weights, a), classes)
            - miou_batched(np.einsum("ru,msukl->mrskl", weights, b), classes))
    star = star - star.mean(1, keepdims=True)
    cov = np.einsum("mrs,mrt->mst", star, star) / (weights.shape[0] - 1)
    off = ~np.eye(seeds, dtype=bool)
    # A bootstrap variance of N units is (N-1)/N of the unbiased one: undo that, as for s_d^2.
    shared = np.clip(cov[:, off].mean(-1), 0.0, None) * units / max(units - 1, 1)
    df_seed, df_unit = seeds - 1, max(units - 1, 1)
    half = _half_width(seed_var, shared, df_seed, df_unit, 1.0 - _CONFIDENCE)
    return {"estimate": estimate, "se": np.sqrt(seed_var + shared), "ci_low": estimate - half,
            "ci_high": estimate + half, "p": _p_value(estimate, seed_var, shared, df_seed, df_unit), "differences": d}


def _half_width(seed_var, shared, df_seed: int, df_unit: int, alpha) -> np.ndarray:
    """Each variance part scaled by its own two-sided t quantile: exact when one part dominates, a little
    conservative when both matter, and never narrowed by a data-dependent degrees-of-freedom estimate."""
    q_seed, q_unit = sps.t.isf(np.asarray(alpha) / 2, df_seed), sps.t.isf(np.asarray(alpha) / 2, df_unit)
    return np.sqrt(q_seed**2 * seed_var + q_unit**2 * shared)


def _p_value(estimate, seed_var, shared, df_seed: int, df_unit: int, steps: int = 60) -> np.ndarray:
    """The level at which the interval just reaches 0 (bisection on log alpha), so p < 0.05 iff 0 is outside."""
    estimate = np.abs(np.asarray(estimate, dtype=np.float64))
    low, high = np.full(estimate.shape, np.log(1e-15)), np.zeros(estimate.shape)
    for _ in range(steps):
        mid = (low + high) / 2
        covers = _half_width(seed_var, shared, df_seed, df_unit, np.exp(mid)) >= estimate
        low, high = np.where(covers, mid, low), np.where(covers, high, mid)
    return np.where(estimate > 0, np.exp(high), 1.0)


def signflip_p(differences: np.ndarray) -> float:
    """Exact two-sided sign-flip permutation p-value of the mean of per-seed differences."""
    d = np.asarray(differences, dtype=np.float64)
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    flipped = np.abs(signs @ d) / d.size
    return float((flipped >= abs(d.mean()) - 1e-12).mean())


def _seed_units(x: UnitConfusions, y: UnitConfusions) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The units both runs of one seed have, as ``(ids, x matrices, y matrices)``.

    They are the same split, so normally all. When they share none, one of them was stored without unit evidence
    (its evidence is its total, one unit ``run``): the seed then counts as one unit, each run's total.
    """
    common = sorted(set(x.ids) & set(y.ids))
    if not common:
        return ["run"], x.total()[None], y.total()[None]
    rows = [dict(zip(run.ids, range(len(run.ids)))) for run in (x, y)]
    return common, x.matrices[[rows[0][u] for u in common]], y.matrices[[rows[1][u] for u in common]]


def _aligned(
    a: Mapping[int, UnitConfusions], b: Mapping[int, UnitConfusions], excluded: Mapping[int, Sequence[int]]
) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """Paired seeds, ``(1, S, N, K, K)`` arrays over the union of unit ids (zeros where a seed lacks one) and the
    ``(S, K)`` class mask of each seed's split."""
    seeds = sorted(set(a) & set(b))
    per_seed = {s: _seed_units(a[s], b[s]) for s in seeds}
    ids = sorted(set().union(*(units[0] for units in per_seed.values()))) if seeds else []
    index = {u: i for i, u in enumerate(ids)}
    k = a[seeds[0]].matrices.shape[-1] if seeds else 0
    arrays = [np.zeros((1, len(seeds), len(ids), k, k), dtype=np.int64) for _ in range(2)]
    for si, s in enumerate(seeds):
        units, xa, xb = per_seed[s]
        rows = [index[u] for u in units]
        arrays[0][0, si, rows], arrays[1][0, si, rows] = xa, xb
    masks = np.stack([class_mask(k, excluded.get(s, ())) for s in seeds]) if seeds else np.ones((0, k), bool)
    return seeds, arrays[0], arrays[1], masks


def paired_difference(
    a: Mapping[int, UnitConfusions], b: Mapping[int, UnitConfusions], *,
    excluded: Mapping[int, Sequence[int]] | None = None, resamples: int = _RESAMPLES, seed: int = 0,
) -> DifferenceEstimate:
    """J_M(A) - J_M(B) over the seeds both have, paired by seed and unit id (seeded: reports are reproducible).

    ``excluded``: per seed, the classes that seed's split excluded (both strategies share the split); J_M skips
    them as the stored J_M does.
    """
    seeds, xa, xb, masks = _aligned(a, b, excluded or {})
    nan = float("nan")
    if not seeds:
        return DifferenceEstimate((), (), 0, nan, nan, nan, nan, nan, nan)
    d = miou_batched(xa.sum(2), masks) - miou_batched(xb.sum(2), masks)
    if len(seeds) < MIN_PAIRED_SEEDS:
        return DifferenceEstimate(tuple(seeds), tuple(d[0].tolist()), xa.shape[2], float(d.mean()),
                                  nan, nan, nan, nan, nan)
    n = xa.shape[2]
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    r = {key: value[0] for key, value in batched_estimate(xa, xb, weights, masks).items()}
    return DifferenceEstimate(
        seeds=tuple(seeds), differences=tuple(float(x) for x in r["differences"]), units=n,
        estimate=float(r["estimate"]), ci_low=float(r["ci_low"]), ci_high=float(r["ci_high"]),
        se=float(r["se"]), p=float(r["p"]), p_signflip=signflip_p(r["differences"]),
    )


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over all pairs of one block); NaN stays NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(p))
    out = np.full(p.shape, np.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


@dataclass(frozen=True)
class PairedComparison:
    """``best`` vs ``runner_up`` on one (split, dataset); differences are best minus runner-up.

    ``chosen_on`` says which means picked the two (``val`` where every run has val metrics, else ``test``);
    ``post_hoc`` is true when they were picked on the same test numbers that are then compared.
    """

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
    p: float
    p_signflip: float
    p_holm: float
    units: int
    chosen_on: str
    post_hoc: bool
    method: str = METHOD

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def verdict(self) -> str:
        estimate = DifferenceEstimate(self.seeds, self.differences, self.units, self.mean_difference, self.ci_low,
                                      self.ci_high, float("nan"), self.p, self.p_signflip)
        text = estimate.statement(self.best, self.runner_up)
        return f"{text}; post hoc: chosen on test means" if self.post_hoc else text
