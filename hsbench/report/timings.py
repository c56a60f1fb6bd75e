"""How long the cells of a report took: wall time per cell and the mean of each phase, per (dataset, split, label).

A leaderboard says which strategy is best but not what it costs; the phase timings every run already stores
(``runs.timings``: phase -> seconds, measured by the runner) answer that without another measurement. A cell's
wall time is the sum of its phases, so it leaves out the runner's bookkeeping and is comparable across runs of one
machine. Runs stored without timings (older rows) count in ``n`` but in no time: a group without any shows ``-``.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from hsbench.report.results import ReportData

__all__ = ["PHASES", "TIMINGS_TITLE", "TIMINGS_CAPTION", "timing_table", "timing_header", "timing_rows",
           "timings_csv"]

PHASES = ("load", "split", "pretrain", "fit", "predict_val", "predict_test")
"""The runner's phases in the order they run; a phase not listed here (a future one) follows them, sorted."""

_PHASE_TITLES = {"split": "splitting", "predict_val": "predict val", "predict_test": "predict test"}
"""Display names where the phase name would read as something else (``split`` is also the split column)."""

TIMINGS_TITLE = "Timings (seconds per cell, this machine)"

TIMINGS_CAPTION = (
    "Wall time of a cell = the sum of its stored phase timings, in seconds; mean and max over the cell's seeds, "
    "then the mean of each phase over the runs that have it. n: runs with stored timings / runs. A phase a "
    "strategy does not have (or a group whose runs were stored without timings) shows as \"-\". The first cell "
    "of a strategy pays one-time pretraining that later cells reuse from the zoo, which is why max can be far "
    "above mean."
)

_KEYS = ["dataset", "split", "label"]


def _phases_of(timings: Any) -> dict[str, float]:
    """The numeric phases of one run's ``timings``; ``{}`` for a run without them (NULL, NaN, not a mapping)."""
    if not isinstance(timings, Mapping):
        return {}
    return {str(k): float(v) for k, v in timings.items() if isinstance(v, Real) and not isinstance(v, bool)}


def _phase_order(names: set[str]) -> list[str]:
    return [p for p in PHASES if p in names] + sorted(names - set(PHASES))


def timing_table(data: ReportData) -> pd.DataFrame:
    """One row per (dataset, split, label) with runs, in the report's display order (split, dataset, label).

    Columns: ``dataset, split, label, n`` (runs), ``timed`` (runs with timings), ``wall_mean``, ``wall_max`` and
    ``<phase>_mean`` for every phase any run has (:data:`PHASES` order); NaN where no run of the group has it.
    """
    runs = data.runs
    stored = runs["timings"] if "timings" in runs else pd.Series([None] * len(runs), index=runs.index)
    per_run = [_phases_of(t) for t in stored]
    phases = _phase_order({p for t in per_run for p in t})
    columns = [*_KEYS, "n", "timed", "wall_mean", "wall_max", *(f"{p}_mean" for p in phases)]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(per_run, index=runs.index, columns=phases, dtype=float).add_suffix("_mean")
    frame["wall"] = [sum(t.values()) if t else np.nan for t in per_run]
    grouped = frame.groupby([runs[k] for k in _KEYS], sort=False)  # keys apart: a phase is called "split"
    table = pd.DataFrame({"n": grouped.size(), "timed": grouped["wall"].count(),
                          "wall_mean": grouped["wall"].mean(), "wall_max": grouped["wall"].max()})
    table = table.join(grouped[[f"{p}_mean" for p in phases]].mean()).reset_index()
    return _ordered(table, data)[columns]


def _ordered(table: pd.DataFrame, data: ReportData) -> pd.DataFrame:
    ranks = {"split": data.splits, "dataset": data.datasets, "label": data.labels}
    keys = pd.DataFrame({k: table[k].map({v: i for i, v in enumerate(order)}).fillna(len(order))
                         for k, order in ranks.items()})
    return table.loc[keys.sort_values(["split", "dataset", "label"], kind="stable").index].reset_index(drop=True)


def _seconds(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{value:.2f}"


def timing_header(table: pd.DataFrame) -> list[str]:
    """The Markdown / HTML header of :func:`timing_table`'s rows."""
    phases = [c.removesuffix("_mean") for c in table.columns if c.endswith("_mean") and c != "wall_mean"]
    return ["dataset", "split", "strategy", "n", "cell mean", "cell max",
            *(_PHASE_TITLES.get(p, p) for p in phases)]


def timing_rows(table: pd.DataFrame) -> list[list[str]]:
    """Formatted cells: seconds with two decimals, ``-`` for a time no run of the group has."""
    times = [c for c in table.columns if c in ("wall_mean", "wall_max") or c.endswith("_mean")]
    return [[str(r["dataset"]), str(r["split"]), str(r["label"]), f"{int(r['timed'])}/{int(r['n'])}",
             *(_seconds(float(r[c])) for c in times)] for _, r in table.iterrows()]


def timings_csv(data: ReportData) -> str:
    """``timings.csv``: :func:`timing_table` at full precision (empty cells where a time is missing)."""
    return timing_table(data).to_csv(index=False)
