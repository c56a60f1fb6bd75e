"""The critical-difference diagram (Demšar 2006, figure 1): mean ranks on an axis, the Nemenyi CD as a bar, and
strategies not significantly different joined by a thick line.

One figure says at a glance which strategies a benchmark separates across datasets and which it does not.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from hsbench.report.figures import FigureFile, label_colour, save_figure, slug
from hsbench.report.ranks import RankTest, rank_tests
from hsbench.report.results import ReportData

__all__ = ["SECTION", "critical_difference_figures", "draw_cd_diagram"]

SECTION = "Mean ranks (critical difference)"
_ROW = 0.32  # vertical spacing of labels and clique bars, in axis units


def critical_difference_figures(data: ReportData, out_dir: Path) -> list[FigureFile]:
    """``critical_difference_<split>.{png,svg}`` for every split with a rank analysis (the report says why not)."""
    figures = []
    for test in rank_tests(data):
        if test.reason is not None:
            continue
        fig = draw_cd_diagram(test, {label: label_colour(data, label) for label in test.ranks.columns})
        figures.append(save_figure(fig, out_dir, f"critical_difference_{slug(test.split)}", section=SECTION,
                                   title=f"{test.split}: mean rank of J_M over {test.n} datasets, "
                                         f"Nemenyi CD = {test.cd:.2f} (alpha = {test.alpha:g}; Friedman "
                                         f"p = {test.friedman.f_p:.3g})"))
    return figures


def draw_cd_diagram(test: RankTest, colours: dict[str, str]) -> Figure:
    """The diagram of one split: rank 1 (best) at the left, the better half labelled left, the rest right."""
    mean_ranks, groups, k = test.mean_ranks, test.cliques, test.k
    order = sorted(mean_ranks, key=lambda label: (mean_ranks[label], label))
    half = (k + 1) // 2
    label_top = _ROW * (len(groups) + 1)
    fig = Figure(figsize=(6.4, 1.1 + 0.3 * (half + len(groups))), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for tick in range(1, k + 1):
        ax.plot([tick, tick], [0, 0.08], color="black", lw=1)
        ax.text(tick, 0.14, str(tick), ha="center", va="bottom", fontsize=8)
    cd_y = 0.75
    ax.plot([1, 1 + test.cd], [cd_y, cd_y], color="black", lw=1.5)
    for end in (1, 1 + test.cd):
        ax.plot([end, end], [cd_y - 0.06, cd_y + 0.06], color="black", lw=1.5)
    ax.text(1 + test.cd / 2, cd_y + 0.1, f"CD = {test.cd:.2f}", ha="center", va="bottom", fontsize=8)
    for row, group in enumerate(groups):
        y = -_ROW * (row + 0.7)
        ax.plot([mean_ranks[group[0]] - 0.03, mean_ranks[group[-1]] + 0.03], [y, y], color="black", lw=3.5,
                solid_capstyle="round")
    for position, label in enumerate(order):
        left = position < half
        row = position if left else k - 1 - position
        y = -(label_top + _ROW * row)
        x_end = 1 - 0.25 if left else k + 0.25
        rank = mean_ranks[label]
        ax.plot([rank, rank, x_end], [0, y, y], color=colours.get(label, "black"), lw=1)
        ax.plot([rank], [0], "o", color=colours.get(label, "black"), ms=4)
        ax.text(x_end + (-0.05 if left else 0.05), y, f"{label} ({rank:.2f})", ha="right" if left else "left",
                va="center", fontsize=8)
    ax.set_xlim(1 - 0.3, k + 0.3)
    ax.set_ylim(-(label_top + _ROW * half), cd_y + 0.35)
    return fig
