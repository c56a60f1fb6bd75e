"""Which stored run a command means: a run id, or a unique prefix of one (as ``git`` takes a short hash).

``hsbench predict`` and ``hsbench evaluate`` both name a run this way; one rule, one set of messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hsbench.config_files import did_you_mean
from hsbench.errors import DataError, UnknownNameError
from hsbench.faults import redact_url

if TYPE_CHECKING:
    from hsbench.store import ResultsStore

__all__ = ["RunNotFoundError", "find_run", "run_folder"]

_SHOWN = 5
"""Run ids listed for an ambiguous prefix."""


class RunNotFoundError(UnknownNameError):
    """A run id (or prefix) that names no run, or several."""


def find_run(store: ResultsStore, run: str) -> dict[str, Any]:
    """The completed run ``run`` (a whole id or a unique prefix) as its database row.

    Raises:
        RunNotFoundError: no run, or several, match (with close ids suggested, or the matches listed).
        DataError: the run did not complete, so it has no model.
    """
    row = store.run_row(run)
    if row is None:
        matches = store.run_ids_starting(run, limit=_SHOWN + 1) if run else []
        if len(matches) > 1:
            shown = ", ".join(matches[:_SHOWN]) + (", ..." if len(matches) > _SHOWN else "")
            count = len(matches) if len(matches) <= _SHOWN else f"more than {_SHOWN}"
            raise RunNotFoundError(f"run id prefix {run!r} matches {count} runs ({shown}); give more characters")
        if not matches:
            known = store.runs()["run_id"].tolist()
            raise RunNotFoundError(f"no run {run!r} in {redact_url(store.url)}{did_you_mean(run, known)} (is "
                                   "--results / --db the database the run was stored in?)")
        row = store.run_row(matches[0])
        assert row is not None
    if row["status"] != "completed":
        raise DataError(f"run {row['run_id']} is {row['status']}; only a completed run has a model")
    return row


def run_folder(row: dict[str, Any], results: Path | None = None) -> Path:
    """The run's folder: where it was written, else ``<results>/runs/<id>`` (a results folder moved or copied).

    Raises:
        DataError: neither exists.
    """
    candidates = [Path(row["run_dir"])] if row.get("run_dir") else []
    if results is not None:
        candidates.append(Path(results) / "runs" / str(row["run_id"]))
    for folder in candidates:
        if folder.is_dir():
            return folder
    where = candidates[0] if candidates else "(none recorded)"
    raise DataError(f"run {row['run_id']}: its folder {where} is gone, and its model with it; give the run "
                    "folder's path, or --results where it was moved")
