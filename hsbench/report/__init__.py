"""Tables and figures generated from stored results.

``format_run_table`` / ``summarize_runs`` make the small table that ends ``hsbench run``; ``write_report`` makes a
whole report (HS3-Bench leaderboards, paired comparisons, figures, one self-contained HTML page) from a
:class:`ReportData` loaded by ``load_suite_results`` or ``load_all_results``.
"""

from hsbench.report.results import REPORT_METRICS, ReportData, load_all_results, load_suite_results
from hsbench.report.run_table import format_run_table, summarize_runs
from hsbench.report.writer import ReportFiles, write_report

__all__ = [
    "REPORT_METRICS",
    "ReportData",
    "ReportFiles",
    "format_run_table",
    "load_all_results",
    "load_suite_results",
    "summarize_runs",
    "write_report",
]
