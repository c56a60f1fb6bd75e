"""Report figures from stored results: label-efficiency curves, per-class IoU heatmaps, confusion matrices.

Figures are built on ``matplotlib.figure.Figure`` directly, so a report never touches the global backend of the
program that calls it; seaborn (the project's statistical plotting layer) draws the heatmaps and the mean ± std
curves onto those figures' axes, never through its global theme. Each is saved as PNG (embedded in the HTML page)
and SVG (for papers).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from hsbench.metrics import per_class_iou
from hsbench.report.budget import label_budget
from hsbench.report.results import ReportData

__all__ = ["FigureFile", "FIGURES", "save_figure", "label_colour", "slug", "wrap_label"]

_DPI = 110
_ANNOTATE_MAX_CLASSES = 20
_CONFUSION_COLUMNS = 4


@dataclass(frozen=True)
class FigureFile:
    """A saved figure: ``png`` and ``svg`` share the stem; ``section`` groups figures on the HTML page."""

    section: str
    title: str
    png: Path
    svg: Path


def slug(text: str) -> str:
    """A file-name-safe form of a label or split (``fraction=0.05`` -> ``fraction-0.05``)."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-")


def wrap_label(label: str, width: int = 22) -> str:
    """A long strategy label on several lines, broken after ``/`` where possible (figure titles are narrow)."""
    lines, current = [], ""
    for part in re.split(r"(?<=/)", label):
        if current and len(current) + len(part) > width:
            lines.append(current)
            current = ""
        current += part
    return "\n".join([*lines, current])


def save_figure(fig: Figure, out_dir: Path, stem: str, *, section: str, title: str) -> FigureFile:
    """Write ``stem.png`` and ``stem.svg`` byte for byte reproducibly, so a regenerated report diffs clean.

    Neither file gets a timestamp, and the SVG's element ids are hashed with a fixed salt (the stem) instead of
    matplotlib's default random one.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    fig.savefig(png, dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    with matplotlib.rc_context({"svg.hashsalt": stem}):
        fig.savefig(svg, bbox_inches="tight", metadata={"Date": None})
    return FigureFile(section, title, png, svg)


def label_colour(data: ReportData, label: str) -> str:
    """One colour per strategy label, the same in every figure."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(data.labels) <= 10 else "tab20"]
    index = data.labels.index(label) if label in data.labels else len(data.labels)
    return to_hex(cmap(index % cmap.N))


def label_efficiency(data: ReportData, out_dir: Path) -> list[FigureFile]:
    """J_M against the label budget, one panel per dataset, one line per strategy (mean, band = ± std)."""
    runs = data.runs.dropna(subset=["miou"]).copy()
    budgets = {split: label_budget(split) for split in data.splits}
    runs = runs[runs["split"].map(lambda s: budgets.get(s) is not None)]
    figures = []
    for family in dict.fromkeys(b.family for b in budgets.values() if b is not None):
        family_runs = runs[runs["split"].map(lambda s, f=family: budgets[s].family == f)].copy()
        if family_runs["split"].nunique() < 2:
            continue
        family_runs["amount"] = family_runs["split"].map(lambda s: budgets[s].amount)
        datasets = [d for d in data.datasets if d in set(family_runs["dataset"])]
        fig = Figure(figsize=(4.2 * len(datasets), 3.4), layout="constrained")
        axes = fig.subplots(1, len(datasets), squeeze=False)[0]
        for ax, dataset in zip(axes, datasets):
            _efficiency_panel(ax, data, family_runs[family_runs["dataset"] == dataset], dataset, family)
        axes[0].set_ylabel("test J_M (%)")
        fig.supxlabel(next(b.axis_label for b in budgets.values() if b is not None and b.family == family))
        for ax in axes[:-1]:
            ax.get_legend().remove()
        sns.move_legend(axes[-1], "lower right", title=None, fontsize=7)
        stem = "label_efficiency" if family == "fraction" else f"label_efficiency_{slug(family)}"
        figures.append(save_figure(fig, out_dir, stem, section="Label efficiency",
                                   title=f"J_M vs label budget ({family}), mean ± std over seeds"))
    return figures


def _budget_tick(amount: float, family: str) -> str:
    return f"{100 * amount:g}%" if family == "fraction" else f"{amount:g}"


def _efficiency_panel(ax, data: ReportData, runs, dataset: str, family: str) -> None:
    labels = [lab for lab in data.labels if lab in set(runs["label"])]
    percent = runs.assign(miou=100 * runs["miou"])
    sns.lineplot(data=percent, x="amount", y="miou", hue="label", hue_order=labels,
                 palette={lab: label_colour(data, lab) for lab in labels}, estimator="mean", errorbar="sd",
                 err_kws={"alpha": 0.18, "linewidth": 0}, marker="o", markersize=4, markeredgewidth=0, ax=ax)
    ax.set(xlabel="", ylabel="")
    ax.set_xscale("log")
    amounts = sorted(runs["amount"].unique())
    ax.set_xticks(amounts, [_budget_tick(a, family) for a in amounts], fontsize=7)
    ax.minorticks_off()
    ax.set_title(dataset, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)


def _mean_iou_matrix(data: ReportData, runs) -> tuple[list[str], np.ndarray] | None:
    labels, rows = [], []
    for label in [lab for lab in data.labels if lab in set(runs["label"])]:
        ious = [per_class_iou(cm) for cm in (data.confusion(r) for r in runs[runs["label"] == label]["run_id"])
                if cm is not None]
        if ious:
            with np.errstate(invalid="ignore"):
                stacked = np.stack(ious)
                rows.append(np.where(np.isnan(stacked).all(axis=0), np.nan, np.nanmean(stacked, axis=0)))
            labels.append(label)
    return (labels, np.stack(rows)) if rows else None


def iou_heatmaps(data: ReportData, out_dir: Path) -> list[FigureFile]:
    """Per (dataset, split): strategies x classes, mean test IoU over seeds (blank: class absent)."""
    figures = []
    for split, dataset, runs in data.blocks():
        matrix = _mean_iou_matrix(data, runs)
        if matrix is None:
            continue
        labels, values = matrix
        classes = data.class_names(dataset, values.shape[1])
        fig = Figure(figsize=(1.2 + 0.55 * len(classes), 1.0 + 0.42 * len(labels)), layout="constrained")
        ax = fig.subplots()
        sns.heatmap(100 * values, vmin=0, vmax=100, cmap="viridis", annot=len(classes) <= _ANNOTATE_MAX_CLASSES,
                    fmt=".0f", annot_kws={"fontsize": 6}, xticklabels=classes, yticklabels=labels,
                    cbar_kws={"label": "IoU (%)", "shrink": 0.8}, ax=ax)
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
        ax.tick_params(axis="y", labelrotation=0, labelsize=7)
        _anchor_right(ax)
        ax.set_title(f"{dataset}, {split}: per-class test IoU", fontsize=9)
        figures.append(save_figure(fig, out_dir, f"iou_{slug(dataset)}_{slug(split)}", section="Per-class IoU",
                                   title=f"{dataset}, {split}"))
    return figures


def confusion_figures(data: ReportData, out_dir: Path) -> list[FigureFile]:
    """Per (dataset, split): one row-normalised test confusion matrix per strategy, summed over seeds."""
    figures = []
    for split, dataset, runs in data.blocks():
        summed = {}
        for label in [lab for lab in data.labels if lab in set(runs["label"])]:
            matrices = [cm for cm in (data.confusion(r) for r in runs[runs["label"] == label]["run_id"])
                        if cm is not None]
            if matrices:
                summed[label] = np.sum(matrices, axis=0)
        if not summed:
            continue
        classes = data.class_names(dataset, next(iter(summed.values())).shape[0])
        side = 0.9 + 0.28 * len(classes)
        ncols = min(len(summed), _CONFUSION_COLUMNS)
        nrows = -(-len(summed) // ncols)
        fig = Figure(figsize=(side * ncols, (side + 0.6) * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, (label, cm) in zip(axes, summed.items()):
            _confusion_panel(ax, cm, classes, label)
        for ax in axes[len(summed):]:
            ax.set_visible(False)
        for ax in axes[::ncols]:
            ax.set_ylabel("target", fontsize=8)
        figures.append(save_figure(fig, out_dir, f"confusion_{slug(dataset)}_{slug(split)}",
                                   section="Confusion matrices", title=f"{dataset}, {split} (rows sum to 100%)"))
    return figures


def _confusion_panel(ax, cm: np.ndarray, classes: list[str], label: str) -> None:
    support = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.where(support > 0, cm / np.maximum(support, 1), np.nan)
    sns.heatmap(100 * normalised, vmin=0, vmax=100, cmap="Blues", square=True, cbar=False, xticklabels=classes,
                yticklabels=classes, ax=ax)
    ax.tick_params(axis="x", labelrotation=60, labelsize=6)
    ax.tick_params(axis="y", labelrotation=0, labelsize=6)
    _anchor_right(ax)
    ax.set_xlabel("prediction", fontsize=8)
    ax.set_title(wrap_label(label, 30), fontsize=8)


def _anchor_right(ax) -> None:
    """Rotated x tick labels anchored at their right end, so a long class name ends under its column."""
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")


def _qualitative(data: ReportData, out_dir: Path) -> list[FigureFile]:
    from hsbench.report.qualitative import qualitative_panels

    return qualitative_panels(data, out_dir)


def _sweeps(data: ReportData, out_dir: Path) -> list[FigureFile]:
    from hsbench.report.sweeps import sweep_figures

    return sweep_figures(data, out_dir)


def _critical_difference(data: ReportData, out_dir: Path) -> list[FigureFile]:
    from hsbench.report.cd_diagram import critical_difference_figures

    return critical_difference_figures(data, out_dir)


FIGURES: dict[str, Callable[[ReportData, Path], list[FigureFile]]] = {
    "label_efficiency": label_efficiency,
    "iou_heatmap": iou_heatmaps,
    "qualitative": _qualitative,
    "confusion": confusion_figures,
    "critical_difference": _critical_difference,
    "sweeps": _sweeps,
}
"""Figure kind -> builder; the report runs each and the HTML page shows them in this order."""
