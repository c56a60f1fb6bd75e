"""Every pair of strategies on every (split, dataset), Holm-adjusted, and best vs runner-up picked on val.

A report with L strategies makes L(L-1)/2 comparisons per block; Holm's step-down adjustment keeps the chance of
any false "A > B" in a block at 5 %. "Best" and "runner-up" are picked on validation J_M where every run of the
block has it, so the test comparison is not the one that picked them; otherwise they are picked on test J_M and
the comparison is marked post hoc.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import pandas as pd

from hsbench.evidence import UnitConfusions
from hsbench.report.results import ReportData
from hsbench.report.stats import METHOD, DifferenceEstimate, PairedComparison, holm, paired_difference

__all__ = ["PairwiseRow", "PAIRWISE_HEADER", "compare_best_two", "pairwise", "pairwise_csv", "pairwise_markdown",
           "pairwise_rows", "left_out_lines"]

log = logging.getLogger("hsbench")


@dataclass(frozen=True)
class PairwiseRow:
    """One pair of one block: ``a`` minus ``b``; ``p_holm`` is adjusted over the block's pairs.

    ``left_out``: runs of the pair that stored no test matrix at all, so their seeds were not paired.
    """

    split: str
    dataset: str
    a: str
    b: str
    estimate: DifferenceEstimate
    p_holm: float
    left_out: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        return self.estimate.statement(self.a, self.b)


def _block_difference(
    data: ReportData, runs: pd.DataFrame, a: str, b: str
) -> tuple[DifferenceEstimate, tuple[str, ...]]:
    """The pair's estimate, with the seeds' excluded classes, and the runs left out for lack of test matrices."""
    evidence: dict[str, dict[int, UnitConfusions]] = {a: {}, b: {}}
    excluded: dict[int, set[int]] = {}
    left_out = []
    for r in runs[runs["label"].isin([a, b])].itertuples():
        units = data.evidence(r.run_id)
        if units is None:
            left_out.append(r.run_id)
            continue
        evidence[r.label][int(r.seed)] = units
        excluded.setdefault(int(r.seed), set()).update(getattr(r, "excluded_classes", ()))
    if left_out:
        log.warning("%s on %s: runs %s have no stored test matrices; %s vs %s leaves their seeds out",
                    runs["split"].iloc[0], runs["dataset"].iloc[0], ", ".join(left_out), a, b)
    estimate = paired_difference(evidence[a], evidence[b], excluded={s: sorted(c) for s, c in excluded.items()})
    return estimate, tuple(left_out)


def _blocks(data: ReportData):
    """The blocks of :meth:`ReportData.blocks` with at least two strategies, and those strategies in order."""
    for split, dataset, runs in data.blocks():
        labels = [label for label in data.labels if label in set(runs["label"])]
        if len(labels) >= 2:
            yield split, dataset, runs, labels


def pairwise(data: ReportData) -> list[PairwiseRow]:
    """All pairs of every block, in display order, with Holm-adjusted p-values per block."""
    rows: list[PairwiseRow] = []
    for split, dataset, runs, labels in _blocks(data):
        pairs = list(itertools.combinations(labels, 2))
        estimates = [_block_difference(data, runs, a, b) for a, b in pairs]
        adjusted = holm([e.p for e, _ in estimates])
        rows += [PairwiseRow(split, dataset, a, b, e, p, out)
                 for (a, b), (e, out), p in zip(pairs, estimates, adjusted)]
    return rows


def _ranked(runs: pd.DataFrame) -> tuple[pd.Series, str]:
    """Mean J_M per label on val when every run has it, else on test."""
    if "val_miou" in runs and runs["val_miou"].notna().all():
        return runs.groupby("label")["val_miou"].mean(), "val"
    return runs.groupby("label")["miou"].mean().dropna(), "test"


def compare_best_two(data: ReportData, rows: list[PairwiseRow] | None = None) -> list[PairedComparison]:
    """Best vs runner-up of every block, with the Holm p-value of that pair among all pairs of the block."""
    rows = pairwise(data) if rows is None else rows
    by_pair = {(r.split, r.dataset, r.a, r.b): r for r in rows}
    out = []
    for split, dataset, runs, _ in _blocks(data):
        means, chosen_on = _ranked(runs)
        means = means.sort_values(ascending=False, kind="stable")
        if len(means) < 2:
            continue
        best, runner_up = str(means.index[0]), str(means.index[1])
        row = by_pair.get((split, dataset, best, runner_up))
        flipped = row is None
        row = row or by_pair[(split, dataset, runner_up, best)]
        e, sign = row.estimate, -1.0 if flipped else 1.0
        low, high = (-e.ci_high, -e.ci_low) if flipped else (e.ci_low, e.ci_high)
        differences = tuple(sign * d for d in e.differences)
        out.append(PairedComparison(
            split=split, dataset=dataset, metric="miou", best=best, runner_up=runner_up, seeds=e.seeds,
            differences=differences, mean_difference=sign * e.estimate, ci_low=low, ci_high=high,
            wins=sum(d > 0 for d in differences), p=e.p, p_signflip=e.p_signflip, p_holm=row.p_holm,
            units=e.units, chosen_on=chosen_on, post_hoc=chosen_on != "val"))
    return out


PAIRWISE_HEADER = ["split", "dataset", "A", "B", "paired seeds", "test units", "Δ J_M (pp)", "95% CI (pp)", "p",
                   "p (Holm)", "p (sign-flip)", "verdict"]


def _pp(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:+.2f}"


def _p(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3g}"


def pairwise_rows(rows: list[PairwiseRow]) -> list[list[str]]:
    """The cells of the pairwise table (percentage points), one list per pair."""
    out = []
    for r in rows:
        e = r.estimate
        ci = "n/a" if not math.isfinite(e.ci_low) else f"[{_pp(e.ci_low)}, {_pp(e.ci_high)}]"
        out.append([r.split, r.dataset, r.a, r.b, str(len(e.seeds)), str(e.units), _pp(e.estimate), ci, _p(e.p),
                    _p(r.p_holm), _p(e.p_signflip), r.verdict])
    return out


def pairwise_csv(rows: list[PairwiseRow]) -> str:
    """Every pair as CSV, fractions at full precision (for re-analysis)."""
    records = [{"split": r.split, "dataset": r.dataset, "a": r.a, "b": r.b, "seeds": len(r.estimate.seeds),
                "units": r.estimate.units, "difference": r.estimate.estimate, "ci_low": r.estimate.ci_low,
                "ci_high": r.estimate.ci_high, "p": r.estimate.p, "p_holm": r.p_holm,
                "p_signflip": r.estimate.p_signflip, "verdict": r.verdict} for r in rows]
    return pd.DataFrame(records, columns=["split", "dataset", "a", "b", "seeds", "units", "difference", "ci_low",
                                          "ci_high", "p", "p_holm", "p_signflip", "verdict"]
                        ).to_csv(index=False, lineterminator="\n")


def pairwise_markdown(name: str, rows: list[PairwiseRow]) -> str:
    """The pairwise table per block, with the method in one paragraph."""
    from hsbench.report.tables import markdown_table  # tables imports this module

    lines = [f"# All pairs: {name}", "", f"Method: {METHOD}. p (Holm): adjusted over the pairs of one "
             "(split, dataset); see docs/statistics.md.", ""]
    if not rows:
        return "\n".join([*lines, "(fewer than two strategies in every block)", ""])
    lines += markdown_table(PAIRWISE_HEADER, pairwise_rows(rows))
    reasons = [f"- {line}" for line in left_out_lines(rows)]
    return "\n".join([*lines, "", *([*reasons, ""] if reasons else [])])


def left_out_lines(rows: list[PairwiseRow]) -> list[str]:
    """One reason line per block whose comparisons left runs out (no stored test matrix to pair)."""
    blocks: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        blocks.setdefault((r.split, r.dataset), set()).update(r.left_out)
    return [f"{split} on {dataset}: left out runs {', '.join(sorted(ids))}: no stored test confusion matrix"
            for (split, dataset), ids in blocks.items() if ids]
