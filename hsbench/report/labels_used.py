"""The labels a result really used: labelled train and val pixels, the val protocol and the excluded classes.

A few-label claim is only as honest as its val set: ``fraction=0.05`` trains on a handful of images but, under
the HS3-Bench protocol (``val=full``), stops early and selects hyperparameters on every val image. So every
leaderboard row states what its runs used, read from the facts each run recorded (:meth:`Split.protocol`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hsbench.data.card import DatasetCard
from hsbench.store import ResultsStore

__all__ = ["LABEL_COLUMNS", "LABELS_HEADER", "LABELS_LEGEND", "aggregate_labels", "excluded_notes", "labels_cells",
           "labels_over_datasets", "with_labels_used"]

LABEL_COLUMNS = ("train_pixels", "val_pixels", "val_protocol", "excluded_classes")
"""Per-run columns: labelled train and val pixels (NaN when a run did not record them), the val protocol and the
excluded classes (a tuple of class ids)."""

LABELS_HEADER = ["train px", "val px"]

LABELS_LEGEND = (
    "train px / val px: labelled pixels a run trained on and selected on (mean over seeds), with the val protocol: "
    "full = every labelled val pixel of the split (HS3-Bench), matched = val subsampled like train "
    "(`val=matched`). Average rows give the mean over datasets, Worst-case rows those of the J_M-worst dataset."
)


def _labels(facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """The label columns of one run from its facts; runs older than ``val_protocol`` used the full val set."""
    facts = facts if isinstance(facts, Mapping) else {}
    val = facts.get("val_labelled_pixels")
    return {
        "train_pixels": float(facts["train_labelled_pixels"]) if "train_labelled_pixels" in facts else np.nan,
        "val_pixels": float(val) if val is not None else np.nan,
        "val_protocol": str(facts.get("val_protocol", "full")),
        "excluded_classes": tuple(int(c) for c in facts.get("excluded_classes", ())),
    }


def with_labels_used(store: ResultsStore, runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with :data:`LABEL_COLUMNS` added from each run's stored facts."""
    stored = store.runs()
    facts = dict(zip(stored["run_id"], stored["facts"])) if len(stored) else {}
    columns = pd.DataFrame([_labels(facts.get(run_id)) for run_id in runs["run_id"]], index=runs.index,
                           columns=list(LABEL_COLUMNS))
    return pd.concat([runs.drop(columns=[c for c in LABEL_COLUMNS if c in runs]), columns], axis=1)


def _protocol(value: Any) -> str:
    """A run's val protocol; a missing one (NaN, e.g. a row that lacks the column) reads as unknown, ``?``."""
    return value if isinstance(value, str) else "?"


def _protocols(values: Sequence[Any]) -> str:
    return "/".join(sorted({_protocol(v) for v in values}))


def aggregate_labels(group: pd.DataFrame) -> dict[str, Any]:
    """The label columns of a leaderboard row over its runs: mean pixels over seeds, the protocol(s) used."""
    return {"train_pixels": float(group["train_pixels"].mean()), "val_pixels": float(group["val_pixels"].mean()),
            "val_protocol": _protocols(group["val_protocol"])}


def labels_over_datasets(runs: pd.DataFrame) -> dict[str, Any]:
    """An Average row's label columns: per dataset the mean over seeds, then the mean over datasets."""
    per_dataset = runs.groupby("dataset")[["train_pixels", "val_pixels"]].mean()
    return {"train_pixels": float(per_dataset["train_pixels"].mean()),
            "val_pixels": float(per_dataset["val_pixels"].mean()), "val_protocol": _protocols(runs["val_protocol"])}


def _pixels(value: float) -> str:
    return "?" if value is None or not np.isfinite(value) else f"{value:,.0f}"


def labels_cells(row: pd.Series) -> list[str]:
    """``["1,234", "5,678 (full)"]``: a leaderboard row's train and val labelled pixels and its val protocol."""
    val = f"{_pixels(row.get('val_pixels'))} ({_protocol(row.get('val_protocol'))})"
    return [_pixels(row.get("train_pixels")), val]


def excluded_notes(runs: pd.DataFrame, cards: Mapping[str, DatasetCard | None]) -> list[str]:
    """One line per (split, dataset) whose split excluded classes too small for it (macro means skip them).

    Args:
        runs: the report's runs, with :data:`LABEL_COLUMNS`.
        cards: dataset cards by name (class names where the dataset is still registered).
    """
    notes = []
    for (split, dataset), group in runs.groupby(["split", "dataset"], sort=True):
        seeds = group.drop_duplicates("seed")
        counts: dict[int, int] = {}
        for classes in seeds["excluded_classes"]:
            for c in classes:
                counts[c] = counts.get(c, 0) + 1
        if not counts:
            continue
        card = cards.get(dataset)
        names = card.class_names if card is not None else ()
        listed = ", ".join(
            (f"{c} ({names[c]})" if c < len(names) else str(c))
            + ("" if n == len(seeds) else f" in {n} of {len(seeds)} seeds")
            for c, n in sorted(counts.items())
        )
        notes.append(f"{split} on {dataset}: excluded classes {listed}; too few labelled pixels for the split, so "
                     "they are in no part and macro means run over the other classes")
    return notes
