"""``leaderboard.html``: one self-contained page (inline CSS, figures embedded as PNG data URIs).

Self-contained so that a report can be mailed, attached to a paper review or opened from a CI artefact without
its folder; it needs no script and no network.
"""

from __future__ import annotations

import base64
import html
from itertools import groupby

from hsbench.report.cd_diagram import SECTION as RANK_SECTION
from hsbench.report.cross_dataset import CROSS_CAPTION, CROSS_TITLE, cross_dataset_matrices
from hsbench.report.figures import FigureFile, slug
from hsbench.report.labels_used import excluded_notes, labels_cells
from hsbench.report.pairwise import PAIRWISE_HEADER, left_out_lines, pairwise_rows
from hsbench.report.provenance import BUILDS_HEADER, BUILDS_TITLE, builds_rows, mixed_builds_warning
from hsbench.report.ranks import rank_lines, rank_table
from hsbench.report.results import ReportData
from hsbench.report.stats import METHOD
from hsbench.report.tables import (
    BOARD_HEADER,
    COMPARISON_HEADER,
    TableInputs,
    comparison_rows,
    dataset_cell,
    dataset_notes,
    legend,
    metric_cells,
    transductive_note,
)
from hsbench.report.timings import TIMINGS_CAPTION, TIMINGS_TITLE, timing_header, timing_rows, timing_table

__all__ = ["render_html"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #1b1b1b; background: #ffffff; line-height: 1.45; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.88rem; }
th, td { border: 1px solid #c9c9c9; padding: 0.28rem 0.6rem; text-align: right; white-space: nowrap; }
th { background: #eef2f7; } .text { text-align: left; }
tr.aggregate td { background: #f7f7f2; }
strong { color: #0b3d91; }
p.legend { font-size: 0.85rem; color: #444; }
figure { display: inline-block; margin: 0.6rem 1rem 1rem 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption { font-size: 0.8rem; color: #444; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _row(cells: list[str], *, header: bool = False, css: str = "", text_columns: int = 2) -> str:
    tag = "th" if header else "td"
    parts = [f'<{tag} class="text">{c}</{tag}>' if i < text_columns else f"<{tag}>{c}</{tag}>"
             for i, c in enumerate(cells)]
    return f'<tr class="{css}">' + "".join(parts) + "</tr>" if css else "<tr>" + "".join(parts) + "</tr>"


def _table(css: str, header: list[str], rows: list[list[str]], *, text_columns: int = 2) -> list[str]:
    """A ``<table class=css>`` of plain-text cells (escaped here), header row first."""
    return [f'<table class="{css}">', _row([_e(h) for h in header], header=True, text_columns=text_columns),
            *(_row([_e(c) for c in r], text_columns=text_columns) for r in rows), "</table>"]


def _board_tables(inputs: TableInputs) -> list[str]:
    data, board = inputs.data, inputs.board
    header = BOARD_HEADER
    out = []
    for split, block in board.groupby("split", sort=False):
        rows = [_row([_e(h) for h in header], header=True)]
        for _, r in block.iterrows():
            # metric cells hold only digits, '.', '±' and 'n/a': nothing to escape
            cells = [_e(dataset_cell(data, r["dataset"])), _e(r["label"]), str(int(r["n"])),
                     *metric_cells(r, _strong), *(_e(c) for c in labels_cells(r))]
            aggregate = r["dataset"] not in data.datasets
            rows.append(_row(cells, css="aggregate" if aggregate else ""))
        out += [f"<h2>Split <code>{_e(split)}</code></h2>", '<table class="leaderboard">', *rows, "</table>"]
        if (note := transductive_note(block)) is not None:
            out.append(f'<p class="legend">{_e(note)}</p>')
    if notes := excluded_notes(data.runs, data.cards):
        out += ["<h2>Excluded classes</h2>", "<ul>", *(f"<li>{_e(n)}</li>" for n in notes), "</ul>"]
    return out


def _strong(text: str) -> str:
    return f"<strong>{text}</strong>"


def _comparison_table(inputs: TableInputs) -> list[str]:
    if not inputs.comparisons:
        return []
    return ["<h2>Best vs runner-up (J_M, paired over seeds)</h2>",
            *_table("comparison", COMPARISON_HEADER, comparison_rows(inputs.comparisons), text_columns=4)]


def _pairwise_tables(inputs: TableInputs) -> list[str]:
    """Per (split, dataset): every pair with its Holm-adjusted p-value and verdict (``pairwise.md``'s table)."""
    if not inputs.pairs:
        return []
    out = ["<h2>All pairs (J_M, paired over seeds and test units, Holm-adjusted per block)</h2>",
           f'<p class="legend">Method: {_e(METHOD)}; see docs/statistics.md.</p>']
    cells = pairwise_rows(inputs.pairs)
    for (split, dataset), block in groupby(cells, key=lambda c: (c[0], c[1])):
        out += [f"<h3>Split <code>{_e(split)}</code>, {_e(dataset)}</h3>",
                *_table("pairwise", PAIRWISE_HEADER[2:], [r[2:] for r in block])]
    reasons = left_out_lines(inputs.pairs)
    return out + (["<ul>", *(f"<li>{_e(line)}</li>" for line in reasons), "</ul>"] if reasons else [])


def _rank_sections(inputs: TableInputs, figures: list[FigureFile]) -> list[str]:
    """Per split: the mean-rank table, the Friedman / Nemenyi verdict and the critical-difference diagram."""
    diagrams = {f.png.stem: f for f in figures if f.section == RANK_SECTION}
    out = []
    for test in inputs.ranks:
        out.append(f"<h2>Mean ranks across datasets, split <code>{_e(test.split)}</code></h2>")
        if test.reason is None:
            out += _table("ranks", *rank_table(test), text_columns=1)
        out += [f'<p class="legend">{_e(line)}</p>' for line in rank_lines(test)]
        diagram = diagrams.get(f"critical_difference_{slug(test.split)}")
        if diagram is not None:
            out.append(_figure(diagram))
    return out


def _builds_table(data: ReportData) -> list[str]:
    return [f"<h2>{_e(BUILDS_TITLE)}</h2>", *_table("builds", BUILDS_HEADER, builds_rows(data), text_columns=4)]


def _timings_table(data: ReportData) -> list[str]:
    table = timing_table(data)
    return [f"<h2>{_e(TIMINGS_TITLE)}</h2>", f'<p class="legend">{_e(TIMINGS_CAPTION)}</p>',
            *_table("timings", timing_header(table), timing_rows(table), text_columns=3)]


def _cross_dataset_tables(data: ReportData) -> list[str]:
    """Per strategy label, J_M of its models on the datasets they were evaluated on; nothing without evaluations."""
    matrices = cross_dataset_matrices(data)
    if not matrices:
        return []
    out = [f"<h2>{_e(CROSS_TITLE)}</h2>", f'<p class="legend">{_e(CROSS_CAPTION)}</p>']
    for matrix in matrices:
        out += [f"<h3>{_e(matrix.label)}</h3>", *_table("cross-dataset", matrix.header, matrix.rows, text_columns=1)]
        if matrix.notes:
            out += ["<ul>", *(f"<li>{_e(n)}</li>" for n in matrix.notes), "</ul>"]
    return out


def _figure(figure: FigureFile) -> str:
    encoded = base64.b64encode(figure.png.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{_e(figure.title)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{_e(figure.title)} (<code>{_e(figure.svg.name)}</code>)</figcaption></figure>")


def render_html(inputs: TableInputs, figures: list[FigureFile]) -> str:
    """The whole page as a string."""
    data = inputs.data
    body = [f"<h1>Leaderboard: {_e(data.name)}</h1>"]
    if data.description:
        body.append(f"<p>{_e(data.description)}</p>")
    body.append(f'<p class="legend">{_e(legend(data))}</p>')
    if (warning := mixed_builds_warning(data)) is not None:
        body.append(f'<p class="warning"><strong>{_e(warning)}</strong></p>')
    if inputs.board.empty:
        body.append("<p>(no completed runs)</p>")
    else:
        body += _board_tables(inputs)
    body += _comparison_table(inputs)
    body += _pairwise_tables(inputs)
    body += _rank_sections(inputs, figures)
    body += _cross_dataset_tables(data)
    body += _timings_table(data)
    notes = dataset_notes(data)
    if notes:
        body += ["<h2>Datasets</h2>", "<ul>", *(f"<li>{_e(n)}</li>" for n in notes), "</ul>"]
    body += _builds_table(data)
    for section, group in groupby([f for f in figures if f.section != RANK_SECTION], key=lambda f: f.section):
        body += [f"<h2>{_e(section)}</h2>", *(_figure(f) for f in group)]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>hsbench leaderboard: {_e(data.name)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        *body, "</body>", "</html>", "",
    ])
