"""Tables and figures generated from stored results."""

from hsbench.report.run_table import format_run_table, summarize_runs

__all__ = ["format_run_table", "summarize_runs"]
