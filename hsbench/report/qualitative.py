"""Qualitative panels: pseudo-RGB input, ground truth and every strategy's prediction for the same test images.

The runner saves each run's first test predictions as ``predictions/<sample>.png`` panels (pseudo-RGB | ground
truth | prediction, in the dataset palette, 2-pixel white gaps: :func:`hsbench.visualize.save_prediction_panel`;
the sample id encoded by :func:`hsbench.names.path_component`, decoded here).
This module cuts those panels apart, so reports need no image arrays in the database; a run folder that is not
on this machine (another worker's disk) just leaves its column out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from hsbench.names import name_from_component
from hsbench.report.figures import FigureFile, save_figure, slug, wrap_label
from hsbench.report.results import ReportData

__all__ = ["qualitative_panels", "split_prediction_panel", "PANEL_GAP_PX"]

PANEL_GAP_PX = 2
"""Width of the white gaps :func:`hsbench.visualize.save_prediction_panel` puts between the three images."""
MAX_SAMPLES = 3


def split_prediction_panel(panel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pseudo_rgb, ground_truth, prediction)`` images of one saved run panel ``(H, 3W + 2 gaps, 3)``."""
    width = (panel.shape[1] - 2 * PANEL_GAP_PX) // 3
    if 3 * width + 2 * PANEL_GAP_PX != panel.shape[1]:
        raise ValueError(f"a prediction panel {panel.shape[1]} px wide is not three images with two gaps")
    step = width + PANEL_GAP_PX
    return panel[:, :width], panel[:, step : step + width], panel[:, 2 * step : 2 * step + width]


def _prediction_files(run_dir: str | None) -> dict[str, Path]:
    folder = Path(run_dir) / "predictions" if run_dir else None
    if folder is None or not folder.is_dir():
        return {}
    return {name_from_component(p.stem): p for p in sorted(folder.glob("*.png"))}


def _pick_seed(runs: pd.DataFrame) -> int | None:
    """The seed covered by the most strategies (smallest on ties), so the panel compares like with like."""
    coverage = runs.groupby("seed")["label"].nunique()
    return None if coverage.empty else int(coverage[coverage == coverage.max()].index.min())


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def qualitative_panels(data: ReportData, out_dir: Path) -> list[FigureFile]:
    """One figure per (dataset, split): rows = test images, columns = input, ground truth, each strategy."""
    figures = []
    for split in data.splits:
        for dataset in data.datasets:
            figure = _panel(data, data.select(split=split, dataset=dataset), dataset, split, out_dir)
            if figure is not None:
                figures.append(figure)
    return figures


def _panel(data: ReportData, runs: pd.DataFrame, dataset: str, split: str, out_dir: Path) -> FigureFile | None:
    seed = _pick_seed(runs)
    if seed is None:
        return None
    files = {}
    for label in data.labels:
        rows = runs[(runs["label"] == label) & (runs["seed"] == seed)]
        found = _prediction_files(rows["run_dir"].iloc[0]) if len(rows) else {}
        if found:
            files[label] = found
    samples = sorted(set.intersection(*(set(f) for f in files.values())))[:MAX_SAMPLES] if files else []
    if not samples:
        return None
    columns = ["pseudo-RGB input", "ground truth", *files]
    fig = Figure(figsize=(1.9 * len(columns), 1.6 * len(samples) + 0.7), layout="constrained")
    axes = fig.subplots(len(samples), len(columns), squeeze=False)
    for row, sample in enumerate(samples):
        first = split_prediction_panel(_load(next(iter(files.values()))[sample]))
        images = [first[0], first[1], *(split_prediction_panel(_load(f[sample]))[2] for f in files.values())]
        for col, image in enumerate(images):
            ax = axes[row, col]
            ax.imshow(image, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(wrap_label(columns[col]), fontsize=7)
        axes[row, 0].set_ylabel(sample, fontsize=7)
    _palette_legend(fig, data, dataset)
    return save_figure(fig, out_dir, f"qualitative_{slug(dataset)}_{slug(split)}", section="Qualitative results",
                       title=f"{dataset}, {split}, seed {seed} (black: unlabelled / ignored)")


def _palette_legend(fig: Figure, data: ReportData, dataset: str) -> None:
    card = data.cards.get(dataset)
    if card is None:
        return
    handles = [Patch(facecolor=np.asarray(rgb) / 255, edgecolor="0.5", linewidth=0.5, label=name)
               for name, rgb in zip(card.class_names, card.palette)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=6, frameon=False)
