"""The table that ends ``hsbench run``: test metrics per strategy label, mean +- std over seeds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from hsbench.report.tables import format_value

__all__ = ["summarize_runs", "format_run_table", "TABLE_METRICS"]

# HS3-Bench reporting order: R_mu (OA), R_M (mean class accuracy), F1_M, J_M (mIoU); then kappa.
TABLE_METRICS: tuple[tuple[str, str], ...] = (("oa", "OA"), ("macc", "mAcc"), ("mf1", "mF1"), ("miou", "mIoU"),
                                             ("kappa", "kappa"))


def summarize_runs(rows: Iterable[dict]) -> pd.DataFrame:
    """Mean and sample std (ddof=1; 0 for one seed) per (dataset, split, label) over the given run rows.

    Each row holds ``dataset``, ``split``, ``label`` and the metric names of :data:`TABLE_METRICS`.
    """
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return frame
    keys = ["dataset", "split", "label"]
    metrics = [m for m, _ in TABLE_METRICS if m in frame]
    grouped = frame.groupby(keys, sort=False)[metrics]
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).fillna(0.0).add_suffix("_std"))
    summary["n"] = grouped.size()
    return summary.reset_index()


def format_run_table(summary: pd.DataFrame, columns: Sequence[tuple[str, str]] = TABLE_METRICS) -> str:
    """A Markdown table (values x100, mean ± std over seeds, best mIoU per dataset in bold)."""
    if summary.empty:
        return "(no completed runs)"
    header = ["dataset", "split", "strategy", "seeds", *(title for _, title in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = summary.groupby(["dataset", "split"])["miou_mean"].transform("max")
    for row, best_miou in zip(summary.itertuples(index=False), best):
        cells = [row.dataset, row.split, row.label, str(row.n)]
        for metric, _ in columns:
            text = format_value(getattr(row, f"{metric}_mean"), getattr(row, f"{metric}_std"))
            if metric == "miou" and row.miou_mean == best_miou and len(summary) > 1:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
