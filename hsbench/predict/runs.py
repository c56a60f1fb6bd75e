"""Which run's model ``hsbench predict`` applies: a run folder, or a run id (or its unique prefix) in the results
database (:mod:`hsbench.run_lookup`)."""

from __future__ import annotations

from pathlib import Path

from hsbench.errors import DataError
from hsbench.run_lookup import RunNotFoundError, find_run, run_folder
from hsbench.saved_model import MANIFEST_NAME, model_dir

__all__ = ["RunNotFoundError", "resolve_run"]


def resolve_run(run: str, *, results: Path, db: str | None = None) -> Path:
    """The folder of ``run``: an existing folder as given, else the run id (or a prefix naming one run) looked up
    in the results database (``db``, default ``<results>/hsbench.db``).

    Raises:
        RunNotFoundError: no run or several runs match the id (the message suggests close ids).
        DataError: no database to look in, a run that did not complete, a run folder that is gone, or a run
            without a saved model.
    """
    path = Path(run)
    folder = path if path.is_dir() else _folder_of_id(run, results=Path(results), db=db)
    if not (model_dir(folder) / MANIFEST_NAME).is_file() and not (folder / MANIFEST_NAME).is_file():
        raise DataError(f"run {run} ({folder}) has no saved model: it was run with --no-save-model or by an older "
                        "hsbench; run it again to keep its model")
    return folder


def _folder_of_id(run: str, *, results: Path, db: str | None) -> Path:
    from hsbench.store import ResultsStore, default_database

    if "/" in run or run.startswith("."):
        raise DataError(f"run folder {run} does not exist")
    database = default_database(results, db)
    if db is None and not Path(database).is_file():
        raise DataError(f"{run} is neither a run folder nor a run id of a results database: {database} does not "
                        "exist (give a run folder, or --results / --db where the run is stored)")
    return run_folder(find_run(ResultsStore(database), run), results)
