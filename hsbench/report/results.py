"""What a report is made of: one row per completed run, read from the results database only.

A suite's report takes the runs its cells point to (``benchmark_cells.run_id``) and labels them with the suite's
variant labels; a report without a suite takes every completed run and labels it with the strategy label stored
with the run. Either way tables and figures see the same frame, so they cannot disagree on which runs count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from hsbench.data.card import DatasetCard
from hsbench.data.dataset_spec import dataset_provider
from hsbench.errors import HsbenchError, UnknownNameError
from hsbench.evidence import UnitConfusions
from hsbench.faults import redact_url
from hsbench.options import config_hash
from hsbench.report.labels_used import with_labels_used
from hsbench.store import ResultsStore
from hsbench.suite import Suite

__all__ = ["ReportData", "REPORT_METRICS", "NothingToReport", "load_suite_results", "load_all_results"]

REPORT_METRICS: tuple[tuple[str, str], ...] = (("oa", "R_µ"), ("macc", "R_M"), ("mf1", "F1_M"), ("miou", "J_M"))
"""HS3-Bench's four columns, in its order: overall accuracy, mean class accuracy, macro F1, macro IoU."""


class NothingToReport(HsbenchError):
    """No completed run matches: an empty report would only hide that the wrong database or suite was given."""


def _require_runs(runs: pd.DataFrame, store: ResultsStore, scope: str, fix: str) -> pd.DataFrame:
    if runs.empty:
        raise NothingToReport(f"nothing to report: no completed runs {scope} in {redact_url(store.url)}; {fix}")
    return runs


_RUN_COLUMNS = ["run_id", "dataset", "dataset_version", "dataset_fingerprint", "split", "label", "seed", "run_dir",
                "provenance", "timings"]


@dataclass
class ReportData:
    """The runs of one report and the facts around them.

    Attributes:
        name: suite name (or ``all``); the report folder's name.
        description: one paragraph for the page header.
        runs: one row per run: the columns of ``_RUN_COLUMNS`` plus one column per metric of
            :data:`REPORT_METRICS` (fractions, full precision) and ``val_miou`` (NaN without val metrics);
            ``timings`` is the run's stored phase -> seconds mapping (``None`` for older rows).
        labels, datasets, splits: display orders.
        store: the database, for confusion matrices.
        expected: how many runs the report should have (the suite's cell count), ``None`` without a suite.
        sweep_storage: an Optuna storage (journal path or URL) whose studies get sweep plots.
    """

    name: str
    description: str
    runs: pd.DataFrame
    labels: list[str]
    datasets: list[str]
    splits: list[str]
    store: ResultsStore
    expected: int | None = None
    sweep_storage: str | None = None
    _confusions: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)
    _evidence: dict[str, UnitConfusions | None] = field(default_factory=dict, repr=False)

    @property
    def missing(self) -> int:
        return 0 if self.expected is None else self.expected - len(self.runs)

    def evidence(self, run_id: str) -> UnitConfusions | None:
        """The run's per-unit test matrices (hash-checked); a run stored without them is one unit ``run``, its
        total test matrix; ``None`` when the store has neither (a comparison then leaves the run out)."""
        if run_id not in self._evidence:
            units = self.store.evidence(run_id, "test")
            if units is None and (total := self.confusion(run_id)) is not None:
                units = UnitConfusions(("run",), total[None])
            self._evidence[run_id] = units
        return self._evidence[run_id]

    def confusion(self, run_id: str) -> np.ndarray | None:
        """The test confusion matrix of a run (read once)."""
        if run_id not in self._confusions:
            self._confusions[run_id] = self.store.confusion(run_id, "test")
        return self._confusions[run_id]

    @cached_property
    def cards(self) -> dict[str, DatasetCard | None]:
        """Dataset cards (class names, palettes) where the dataset is still registered."""
        return {name: _card_or_none(name) for name in self.datasets}

    def class_names(self, dataset: str, num_classes: int) -> list[str]:
        card = self.cards.get(dataset)
        if card is not None and card.num_classes == num_classes:
            return list(card.class_names)
        return [f"class {k}" for k in range(num_classes)]

    def select(self, *, split: str | None = None, dataset: str | None = None) -> pd.DataFrame:
        rows = self.runs
        if split is not None:
            rows = rows[rows["split"] == split]
        if dataset is not None:
            rows = rows[rows["dataset"] == dataset]
        return rows

    def blocks(self) -> Iterator[tuple[str, str, pd.DataFrame]]:
        """(split, dataset, runs) for every split and dataset with completed runs, in display order."""
        for split in self.splits:
            for dataset in self.datasets:
                runs = self.select(split=split, dataset=dataset)
                if len(runs):
                    yield split, dataset, runs


def _card_or_none(name: str) -> DatasetCard | None:
    try:
        return dataset_provider(name).card
    except UnknownNameError:
        return None


def _with_metrics(store: ResultsStore, runs: pd.DataFrame) -> pd.DataFrame:
    metrics = store.scalar_metrics(runs["run_id"].tolist()) if len(runs) else pd.DataFrame()
    for metric, _ in REPORT_METRICS:
        runs[metric] = runs["run_id"].map(metrics[metric]) if metric in metrics else np.nan
    val = store.scalar_metrics(runs["run_id"].tolist(), part="val") if len(runs) else pd.DataFrame()
    runs["val_miou"] = runs["run_id"].map(val["miou"]) if "miou" in val else np.nan  # picks best vs runner-up
    runs = with_labels_used(store, runs)  # labelled train / val pixels, val protocol, excluded classes
    return runs.reset_index(drop=True)


def load_suite_results(store: ResultsStore, suite: Suite, *, sweep_storage: str | None = None) -> ReportData:
    """The completed runs of ``suite``'s current cells, labelled with the suite's variant labels."""
    from hsbench.claims import CellClaims

    cells = suite.cells()
    run_of = {r["cell_id"]: r["run_id"] for r in CellClaims(store.engine).cells(suite.name) if r["state"] == "done"}
    completed = store.runs().set_index("run_id")
    rows = []
    for cell in cells:
        run_id = run_of.get(cell.cell_id)
        if run_id is None or run_id not in completed.index:
            continue
        run = completed.loc[run_id]
        rows.append({"run_id": run_id, "dataset": cell.dataset, "dataset_version": run["dataset_version"],
                     "dataset_fingerprint": run["dataset_fingerprint"], "split": cell.split, "label": cell.label,
                     "seed": cell.seed, "run_dir": run["run_dir"], "provenance": run["provenance"],
                     "timings": run["timings"]})
    runs = _require_runs(_with_metrics(store, pd.DataFrame(rows, columns=_RUN_COLUMNS)), store,
                         f"of suite {suite.name} ({len(cells)} cells)",
                         f"run `hsbench benchmark --suite {suite.name}` first, or check --results / --db")
    return ReportData(
        name=suite.name,
        description=suite.description,
        runs=runs,
        labels=suite.labels,
        datasets=[d.name for d in suite.datasets],
        splits=list(dict.fromkeys(s for d in suite.datasets for s in suite.splits_of(d))),
        store=store,
        expected=len(cells),
        sweep_storage=sweep_storage,
    )


def load_all_results(store: ResultsStore, *, sweep_storage: str | None = None) -> ReportData:
    """Every completed run, labelled with its strategy label.

    Refits of a sweep study show as ``label (tuned: study)``. Runs of one label that differ in options on the same
    dataset and split get the options' hash appended, so that different configurations are never averaged
    together. For a repeated configuration (same label, options and seed) the latest run counts.
    """
    runs = _require_runs(store.runs(), store, "at all",
                         "run `hsbench run` or `hsbench benchmark` first, or check --results / --db")
    runs = runs.sort_values("finished_at")
    runs["options_hash"] = [config_hash(c.get("options", {}), 6) for c in runs["config"]]
    runs["label"] = runs["strategy_label"]
    if "study" in runs:  # refits of a sweep's best parameters (``hsbench sweep --refit-best``)
        tuned = runs["study"].notna()
        runs.loc[tuned, "label"] = runs.loc[tuned, "strategy_label"] + " (tuned: " + runs.loc[tuned, "study"] + ")"
    variants = runs.groupby(["dataset", "split", "label"])["options_hash"].transform("nunique")
    ambiguous = variants > 1
    runs.loc[ambiguous, "label"] = runs.loc[ambiguous, "label"] + "#" + runs.loc[ambiguous, "options_hash"]
    runs = runs.drop_duplicates(["dataset", "split", "label", "seed"], keep="last")
    frame = _with_metrics(store, runs[_RUN_COLUMNS].copy())
    return ReportData(
        name="all",
        description="Every completed run in the results database.",
        runs=frame,
        labels=sorted(frame["label"].unique()),
        datasets=sorted(frame["dataset"].unique()),
        splits=_split_order(frame["split"].unique()),
        store=store,
        sweep_storage=sweep_storage,
    )


def _split_order(splits) -> list[str]:
    """Splits sorted by kind, then by label budget (fraction or k)."""
    from hsbench.report.budget import label_budget

    def key(split: str) -> tuple[str, float]:
        budget = label_budget(split)
        return (budget.family if budget else split, budget.amount if budget else 0.0)

    return sorted(splits, key=key)
