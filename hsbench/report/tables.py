"""The leaderboard as text: Markdown, LaTeX and CSV (HTML lives in :mod:`hsbench.report.html`).

Values are scaled to percent and rounded here, and only here (STYLE: metrics stay full precision in the
database); the CSV keeps full-precision fractions for anyone who wants to compute on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hsbench.report.cross_dataset import CROSS_CAPTION, CROSS_TITLE, cross_dataset_matrices
from hsbench.report.labels_used import LABELS_HEADER, LABELS_LEGEND, excluded_notes, labels_cells
from hsbench.report.leaderboard import AVERAGE, WORST_CASE, metric_names
from hsbench.report.pairwise import PairwiseRow
from hsbench.report.provenance import BUILDS_HEADER, BUILDS_TITLE, builds_rows, mixed_builds_warning
from hsbench.report.ranks import RankTest, rank_lines, rank_table
from hsbench.report.results import REPORT_METRICS, ReportData
from hsbench.report.stats import PairedComparison
from hsbench.report.timings import TIMINGS_CAPTION, TIMINGS_TITLE, timing_header, timing_rows, timing_table
from hsbench.strategy import TRANSDUCTIVE_MARK

__all__ = ["TableInputs", "TABLE_FORMATS", "COMPARISON_HEADER", "TRANSDUCTIVE_NOTE", "format_value",
           "format_over_seeds", "legend", "dataset_notes", "dataset_cell", "comparison_rows", "metric_cells",
           "BOARD_HEADER", "transductive_note", "markdown_table"]


@dataclass(frozen=True)
class TableInputs:
    data: ReportData
    board: pd.DataFrame
    comparisons: list[PairedComparison]
    ranks: list[RankTest] = field(default_factory=list)
    pairs: list[PairwiseRow] = field(default_factory=list)


def format_value(mean: float, std: float) -> str:
    """``71.36 ± 2.12`` (percent, two decimals); ``n/a`` for a missing value."""
    if mean is None or not np.isfinite(mean):
        return "n/a"
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def format_over_seeds(values: Sequence[float]) -> str:
    """``71.36 ± 2.12 (n=3)``: mean and sample std (ddof = 1, as in the leaderboards; 0 for one seed) of per-seed
    values; ``-`` for none."""
    if len(values) == 0:
        return "-"
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{format_value(float(np.mean(values)), std)} (n={len(values)})"


def legend(data: ReportData) -> str:
    done = len(data.runs)
    coverage = f" {done} of {data.expected} cells have a completed run." if data.expected is not None else ""
    return (
        "Test metrics in %, mean ± std (sample, ddof = 1) over n seeds. R_µ overall accuracy, R_M mean class "
        "accuracy, F1_M macro F1, J_M macro IoU (classes absent from target and prediction excluded). Best mean "
        f"of each block in bold. {AVERAGE}: per seed the mean over the split's datasets, then mean ± std over seeds "
        f"having every dataset. {WORST_CASE}: per metric the lowest per-dataset mean (± that dataset's std). "
        + LABELS_LEGEND + coverage
    )


TRANSDUCTIVE_NOTE = (f"{TRANSDUCTIVE_MARK} transductive: pretraining/statistics used unlabelled val and test pixels "
                     "of the scene (transductive=true)")


def transductive_note(block: pd.DataFrame) -> str | None:
    """The dagger's legend, for a leaderboard table with a transductive row (its label carries the mark): such a
    row read pixels the others may not, so its number is not comparable without the note."""
    marked = block["label"].astype(str).str.contains(TRANSDUCTIVE_MARK, regex=False).any() if len(block) else False
    return TRANSDUCTIVE_NOTE if marked else None


def dataset_cell(data: ReportData, dataset: str) -> str:
    """``name (v1)`` (or ``name (<version>)``) for dataset rows; Average / Worst-case rows keep their name."""
    versions = sorted(set(data.select(dataset=dataset)["dataset_version"].astype(str)))
    if not versions:
        return dataset
    return f"{dataset} ({'/'.join(f'v{v}' if v.isdigit() else v for v in versions)})"


def dataset_notes(data: ReportData) -> list[str]:
    """One line per dataset: version, content fingerprint and the official split fraction splits draw from."""
    notes = []
    for dataset in data.datasets:
        runs = data.select(dataset=dataset)
        if runs.empty:
            continue
        versions = ", ".join(sorted(set(runs["dataset_version"].astype(str))))
        prints = ", ".join(sorted({str(f)[:12] for f in runs["dataset_fingerprint"]}))
        card = data.cards.get(dataset)
        official = next(iter(card.official_splits), None) if card is not None else None
        split_note = f"; 'official' and 'fraction=p' splits use its official split '{official}'" if official else ""
        notes.append(f"{dataset}: version {versions}, content fingerprint {prints}{split_note}")
    return notes


def comparison_rows(comparisons: list[PairedComparison]) -> list[list[str]]:
    rows = []
    for c in comparisons:
        ci = "n/a" if not np.isfinite(c.ci_low) else f"[{100 * c.ci_low:+.2f}, {100 * c.ci_high:+.2f}]"
        rows.append([c.split, c.dataset, c.best, c.runner_up, str(c.n), f"{100 * c.mean_difference:+.2f}", ci,
                     f"{c.wins}/{c.n}", c.verdict])
    return rows


BOARD_HEADER = ["dataset", "strategy", "n", *(title for _, title in REPORT_METRICS), *LABELS_HEADER]
"""Leaderboard columns of the Markdown and HTML tables: metrics, then the labels each row used."""

COMPARISON_HEADER = ["split", "dataset", "best", "runner-up", "paired seeds", "Δ J_M (pp)", "95% CI (seeds x images)",
                     "seeds won", "verdict"]


def metric_cells(row: pd.Series, bold: Callable[[str], str]) -> list[str]:
    """The four formatted metric values of a leaderboard row, the best ones passed through ``bold``."""
    out = []
    for metric in metric_names():
        text = format_value(row[f"{metric}_mean"], row[f"{metric}_std"])
        out.append(bold(text) if row.get(f"{metric}_best", False) else text)
    return out


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table (header, rule, one line per row)."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def render_markdown(inputs: TableInputs) -> str:
    data, board = inputs.data, inputs.board
    lines = [f"# Leaderboard: {data.name}", ""]
    if data.description:
        lines += [data.description, ""]
    lines += [legend(data), ""]
    if (warning := mixed_builds_warning(data)) is not None:
        lines += [f"**{warning}**", ""]
    if board.empty:
        return "\n".join([*lines, "(no completed runs)", ""])
    for split, block in board.groupby("split", sort=False):
        rows = [[dataset_cell(data, r["dataset"]), r["label"], str(int(r["n"])), *metric_cells(r, lambda t: f"**{t}**"),
                 *labels_cells(r)] for _, r in block.iterrows()]
        lines += [f"## Split `{split}`", "", *markdown_table(BOARD_HEADER, rows), ""]
        if (note := transductive_note(block)) is not None:
            lines += [note, ""]
    if notes := excluded_notes(data.runs, data.cards):
        lines += ["## Excluded classes", "", *(f"- {note}" for note in notes), ""]
    if inputs.comparisons:
        lines += ["## Best vs runner-up (J_M, paired over seeds)", "",
                  *markdown_table(COMPARISON_HEADER, comparison_rows(inputs.comparisons)), ""]
    for test in inputs.ranks:
        table = markdown_table(*rank_table(test)) + [""] if test.reason is None else []
        lines += [f"## Mean ranks across datasets, split `{test.split}`", "", *table, *rank_lines(test), ""]
    if matrices := cross_dataset_matrices(data):
        lines += [f"## {CROSS_TITLE}", "", CROSS_CAPTION, ""]
        for matrix in matrices:
            lines += [f"### {matrix.label}", "", *markdown_table(matrix.header, matrix.rows), "",
                      *(f"- {note}" for note in matrix.notes), *([""] if matrix.notes else [])]
    timings = timing_table(data)
    lines += [f"## {TIMINGS_TITLE}", "", TIMINGS_CAPTION, "",
              *markdown_table(timing_header(timings), timing_rows(timings)), ""]
    lines += ["## Datasets", "", *(f"- {note}" for note in dataset_notes(data)), ""]
    lines += [f"## {BUILDS_TITLE}", "", *markdown_table(BUILDS_HEADER, builds_rows(data)), ""]
    return "\n".join(lines)


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def render_latex(inputs: TableInputs) -> str:
    """One booktabs table per split (needs ``\\usepackage{booktabs}``)."""
    data, board = inputs.data, inputs.board
    titles = {"R_µ": r"$R_\mu$", "R_M": r"$R_M$", "F1_M": r"$F1_M$", "J_M": r"$J_M$"}
    out = [f"% Leaderboard {data.name}: generated by hsbench report from the results database."]
    for split, block in board.groupby("split", sort=False):
        out += [r"\begin{table}[t]", r"\centering",
                r"\begin{tabular}{llr" + "r" * (len(REPORT_METRICS) + len(LABELS_HEADER)) + "}",
                r"\toprule", " & ".join(["Dataset", "Strategy", "$n$", *(titles[t] for _, t in REPORT_METRICS),
                                          *LABELS_HEADER]) + r" \\", r"\midrule"]
        previous = None
        for _, r in block.iterrows():
            if previous is not None and r["dataset"] != previous:
                out.append(r"\midrule")
            cells = [c.replace("±", r"$\pm$") for c in metric_cells(r, lambda t: f"\\textbf{{{t}}}")]
            dataset = "" if r["dataset"] == previous else _tex(dataset_cell(data, r["dataset"]))
            out.append(" & ".join([dataset, _tex(r["label"]), str(int(r["n"])), *cells,
                                   *(_tex(c) for c in labels_cells(r))]) + r" \\")
            previous = r["dataset"]
        out += [r"\bottomrule", r"\end{tabular}",
                rf"\caption{{{_tex(data.name)}, split \texttt{{{_tex(split)}}}: test metrics in \%, mean $\pm$ std "
                r"over $n$ seeds; best per block in bold; labelled train and val pixels (val protocol)."
                + "".join(f" {_tex(note)}." for note in excluded_notes(data.select(split=split), data.cards))
                + ("" if (dagger := transductive_note(block)) is None else f" {_tex(dagger)}.")
                + "}", r"\end{table}", ""]
    return "\n".join(out)


def render_csv(inputs: TableInputs) -> str:
    """The leaderboard frame itself: fractions at full precision, one row per (split, dataset, strategy)."""
    board = inputs.board.copy()
    if board.empty:
        return ""
    versions = inputs.data.runs.groupby("dataset")["dataset_version"].agg(lambda v: "/".join(sorted(set(map(str, v)))))
    board.insert(2, "dataset_version", board["dataset"].map(versions).fillna(""))
    return board.to_csv(index=False)


TABLE_FORMATS: dict[str, Callable[[TableInputs], str]] = {
    "md": render_markdown,
    "tex": render_latex,
    "csv": render_csv,
}
"""File suffix -> renderer of ``leaderboard.<suffix>``."""
