"""The HS3-Bench leaderboard as numbers: per split, per dataset and strategy the four metrics as mean and std
over seeds, then an Average and a Worst-case block, with the best value of every block and metric flagged.

Rules (the table's footnote repeats them):

* mean and sample std (ddof = 1; 0 for one seed) over seeds; ``n`` counts the seeds;
* **Average**: for each seed, the mean over the split's datasets; then mean and std of that over the seeds
  that have every dataset (a strategy missing a dataset gets no Average);
* **Worst-case**: for each metric, the lowest per-dataset mean, with that dataset's std and ``n``
  (HS3-Bench's robustness view: how badly a strategy does where it does worst);
* best: the highest mean in a block (ties all bold); only flagged when a block compares two or more strategies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hsbench.report.labels_used import aggregate_labels, labels_over_datasets
from hsbench.report.results import REPORT_METRICS, ReportData

__all__ = ["leaderboard", "AVERAGE", "WORST_CASE", "metric_names"]

AVERAGE, WORST_CASE = "Average", "Worst-case"


def metric_names() -> list[str]:
    return [m for m, _ in REPORT_METRICS]


def _per_dataset(runs: pd.DataFrame) -> pd.DataFrame:
    grouped = runs.groupby(["split", "dataset", "label"], sort=False)
    metrics = metric_names()
    table = grouped[metrics].mean().add_suffix("_mean")
    table = table.join(grouped[metrics].std(ddof=1).fillna(0.0).add_suffix("_std"))
    table["n"] = grouped["seed"].nunique()
    table = table.join(grouped.apply(lambda g: pd.Series(aggregate_labels(g)), include_groups=False))
    return table.reset_index()


def _average(runs: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    rows = []
    for (split, label), group in runs.groupby(["split", "label"], sort=False):
        per_seed = group.pivot_table(index="seed", columns="dataset", values=metric_names(), aggfunc="mean")
        per_seed = per_seed.reindex(columns=pd.MultiIndex.from_product([metric_names(), datasets])).dropna()
        if per_seed.empty:  # no seed has every dataset
            continue
        complete = per_seed.index
        row = {"split": split, "dataset": AVERAGE, "label": label, "n": len(complete),
               **labels_over_datasets(group[group["seed"].isin(complete)])}
        for metric in metric_names():
            means = per_seed[metric].mean(axis=1)
            row[f"{metric}_mean"] = float(means.mean())
            row[f"{metric}_std"] = float(means.std(ddof=1)) if len(means) > 1 else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def _worst_case(per_dataset: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    rows = []
    for (split, label), group in per_dataset.groupby(["split", "label"], sort=False):
        if set(group["dataset"]) < set(datasets):
            continue
        row = {"split": split, "dataset": WORST_CASE, "label": label}
        for metric in metric_names():
            worst = group.loc[group[f"{metric}_mean"].idxmin()]
            row[f"{metric}_mean"] = float(worst[f"{metric}_mean"])
            row[f"{metric}_std"] = float(worst[f"{metric}_std"])
            row[f"{metric}_worst_dataset"] = worst["dataset"]
        row["n"] = int(group["n"].min())
        worst = group.loc[group["miou_mean"].idxmin()]  # the labels of the dataset where J_M is worst
        row.update({key: worst[key] for key in ("train_pixels", "val_pixels", "val_protocol")})
        rows.append(row)
    return pd.DataFrame(rows)


def _flag_best(table: pd.DataFrame) -> pd.DataFrame:
    for metric in metric_names():
        block_max = table.groupby(["split", "dataset"])[f"{metric}_mean"].transform("max")
        block_size = table.groupby(["split", "dataset"])["label"].transform("size")
        table[f"{metric}_best"] = np.isclose(table[f"{metric}_mean"], block_max, rtol=0, atol=1e-12) & (block_size > 1)
    return table


def leaderboard(data: ReportData) -> pd.DataFrame:
    """One row per (split, dataset or Average / Worst-case, strategy label), in display order.

    Columns: ``split, dataset, label, n``, ``<metric>_mean``, ``<metric>_std``, ``<metric>_best`` for each metric
    of :data:`REPORT_METRICS` (fractions, unrounded), ``<metric>_worst_dataset`` on Worst-case rows, and the
    labels used (:func:`~hsbench.report.labels_used.aggregate_labels`): ``train_pixels``, ``val_pixels`` (mean
    over seeds; Average: mean over datasets; Worst-case: the J_M-worst dataset's) and ``val_protocol``.
    """
    runs = data.runs.dropna(subset=metric_names(), how="all")
    if runs.empty:
        return pd.DataFrame()
    per_dataset = _per_dataset(runs)
    blocks = [per_dataset]
    for split in data.splits:
        split_runs = runs[runs["split"] == split]
        datasets = [d for d in data.datasets if d in set(split_runs["dataset"])]
        if len(datasets) > 1:
            blocks.append(_average(split_runs, datasets))
            blocks.append(_worst_case(per_dataset[per_dataset["split"] == split], datasets))
    table = pd.concat([b for b in blocks if not b.empty], ignore_index=True)
    table = _flag_best(table)
    return _ordered(table, data)


def _ordered(table: pd.DataFrame, data: ReportData) -> pd.DataFrame:
    split_rank = {s: i for i, s in enumerate(data.splits)}
    dataset_rank = {d: i for i, d in enumerate([*data.datasets, AVERAGE, WORST_CASE])}
    label_rank = {label: i for i, label in enumerate(data.labels)}
    keys = pd.DataFrame({
        "s": table["split"].map(split_rank).fillna(len(split_rank)),
        "d": table["dataset"].map(dataset_rank).fillna(len(dataset_rank)),
        "l": table["label"].map(label_rank).fillna(len(label_rank)),
    })
    return table.loc[keys.sort_values(["s", "d", "l"], kind="stable").index].reset_index(drop=True)
