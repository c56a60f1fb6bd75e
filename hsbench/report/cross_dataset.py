"""Cross-dataset evaluation: J_M of a strategy's models on the datasets they were evaluated on (``hsbench evaluate``).

One matrix per strategy label with evaluation rows: rows are the dataset and split the models were trained on,
columns the dataset (and split, part, class map) they were evaluated on, and each cell the J_M mean ± std over
the runs (seeds) evaluated there. The cell of a row's own dataset and split is the runs' own test J_M, so a
column reads as "how much is lost by moving to this dataset". Read from the ``evaluations`` table of the
report's runs only; a report whose runs have no evaluation has no section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hsbench.options import config_hash
from hsbench.report.results import ReportData

__all__ = ["CROSS_CAPTION", "CROSS_TITLE", "CrossMatrix", "cross_dataset_matrices"]

CROSS_TITLE = "Cross-dataset evaluation (J_M)"

CROSS_CAPTION = (
    "J_M in %, mean ± std (ddof = 1) over the n runs (seeds) evaluated, of each strategy's stored models: rows are "
    "the dataset [split] they were trained on, columns the dataset [split] they were evaluated on with `hsbench "
    "evaluate` (part other than test and class map named). The cell of a row's own dataset and split is the runs' "
    "own test J_M. With a class map, dataset classes no model class maps to are left out of the metrics and "
    "predictions of model classes that map to nothing count as wrong; \"-\": not evaluated."
)


@dataclass(frozen=True)
class CrossMatrix:
    """One strategy label's matrix, formatted; ``notes``: the class maps and excluded classes of its columns."""

    label: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str]


_Column = tuple[str, str, str, str]
"""(evaluated dataset, split, part, class-map hash or "")."""


def _column_title(column: _Column) -> str:
    dataset, split, part, mapped = column
    return (f"{dataset} [{split}]" + (f" {part}" if part != "test" else "")
            + (f" map {mapped}" if mapped else ""))


def _map_hash(class_map: Any) -> str:
    return config_hash(class_map, 6) if isinstance(class_map, dict) else ""


def _miou(metrics: Any) -> float:
    value = metrics.get("miou") if isinstance(metrics, dict) else None
    return float(value) if value is not None else np.nan


def _cell(values: pd.Series) -> str:
    from hsbench.report.tables import format_over_seeds  # tables imports this module

    finite = [float(v) for v in values if np.isfinite(v)]
    return format_over_seeds(finite)


def _evaluations(data: ReportData) -> pd.DataFrame:
    """The report's runs' evaluation rows with their run's label, trained-on dataset and split, and J_M."""
    if data.runs.empty:
        return pd.DataFrame()
    evaluations = data.store.evaluations(data.runs["run_id"].tolist())
    if evaluations.empty:
        return evaluations
    runs = data.runs[["run_id", "label", "dataset", "split"]].rename(
        columns={"dataset": "trained_dataset", "split": "trained_split"})
    frame = evaluations.merge(runs, on="run_id")
    frame["column"] = [(d, s, p, _map_hash(m)) for d, s, p, m in
                       zip(frame["dataset"], frame["split"], frame["part"], frame["class_map"])]
    frame["value"] = [_miou(m) for m in frame["metrics"]]
    return frame


def _notes(rows: pd.DataFrame) -> list[str]:
    notes = []
    for column, group in rows.groupby("column", sort=False):
        metrics = group["metrics"].iloc[-1]
        excluded = list(metrics.get("excluded_classes") or []) if isinstance(metrics, dict) else []
        mapping = metrics.get("mapping") or {} if isinstance(metrics, dict) else {}
        wrong = [model for model, target in mapping.items() if target is None]
        if not column[3] and not excluded:
            continue
        parts = []
        if column[3]:
            merged = [f"{m} -> {t}" for m, t in mapping.items() if t is not None and m != t]
            parts.append("class map " + (", ".join(merged) if merged else "(names kept)"))
        if wrong:
            parts.append(f"counted wrong: {', '.join(wrong)}")
        if excluded:
            parts.append(f"left out: {', '.join(excluded)}")
        notes.append(f"{_column_title(column)}: {'; '.join(parts)}")
    return notes


def cross_dataset_matrices(data: ReportData) -> list[CrossMatrix]:
    """One :class:`CrossMatrix` per label (report order) whose runs have evaluation rows; ``[]`` when none do."""
    evaluations = _evaluations(data)
    if evaluations.empty:
        return []
    matrices = []
    for label in [lab for lab in data.labels if lab in set(evaluations["label"])]:
        rows = evaluations[evaluations["label"] == label]
        runs = data.runs[data.runs["label"] == label]
        trained = list(dict.fromkeys(zip(rows["trained_dataset"], rows["trained_split"])))
        trained.sort(key=lambda t: (_index(data.datasets, t[0]), _index(data.splits, t[1])))
        own = [(d, s, "test", "") for d, s in trained]
        columns = list(dict.fromkeys([*own, *sorted(set(rows["column"]) - set(own), key=_column_order)]))
        body = []
        for (dataset, split), diagonal in zip(trained, own):
            cells = []
            for column in columns:
                if column == diagonal:
                    values = runs[(runs["dataset"] == dataset) & (runs["split"] == split)]["miou"]
                else:
                    values = rows[(rows["trained_dataset"] == dataset) & (rows["trained_split"] == split)
                                  & (rows["column"] == column)]["value"]
                cells.append(_cell(values))
            body.append([f"{dataset} [{split}]", *cells])
        header = ["trained on", *(_column_title(c) for c in columns)]
        matrices.append(CrossMatrix(label, header, body, _notes(rows)))
    return matrices


def _column_order(column: _Column) -> tuple:
    """Columns without a class map first, then by dataset, split and part (test first)."""
    dataset, split, part, mapped = column
    return (bool(mapped), dataset, split, part != "test", part, mapped)


def _index(order: list[str], value: str) -> int:
    return order.index(value) if value in order else len(order)
