"""The results database: atomic completion, resets of unfinished runs, reads for reports."""

from __future__ import annotations

import numpy as np

from hsbench.store import ResultsStore, database_url


def _row() -> dict:
    return {"dataset": "d", "dataset_fingerprint": "f", "dataset_version": "1", "split": "fraction=0.1",
            "split_hash": "h", "strategy": "s", "strategy_label": "s/m", "seed": 0, "config": {"a": 1}}


def _complete(store: ResultsStore, run_id: str, miou: float = 0.5) -> None:
    store.complete(
        run_id,
        metrics={"test": {"miou": miou, "oa": 0.9}, "val": {"miou": 0.4}},
        per_class={"test": {"iou": np.array([0.5, np.nan])}},
        confusions={"test": np.array([[3, 1], [0, 0]])},
        timings={"fit": 1.0},
        facts={"best_epoch": np.int64(3)},
    )


def test_path_becomes_sqlite_url(tmp_path) -> None:
    assert database_url(tmp_path / "x.db").startswith("sqlite:///")
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"  # an explicit driver wins


def test_begin_then_complete_stores_metrics_confusion_and_status(tmp_path) -> None:
    store = ResultsStore(tmp_path / "r.db")
    store.begin("r1", _row())
    assert store.get("r1").status == "running"
    _complete(store, "r1")
    assert store.get("r1").status == "completed"
    assert store.scalar_metrics(["r1"]).loc["r1", "miou"] == 0.5
    np.testing.assert_array_equal(store.confusion("r1"), [[3, 1], [0, 0]])
    assert store.runs().iloc[0]["facts"] == {"best_epoch": 3}
    # 2 test scalars + 1 val scalar + 2 per-class values (NaN stored as NULL)
    assert store.count_rows() == {"runs": 1, "metrics": 5, "confusions": 1}


def test_restart_of_a_run_replaces_its_rows_without_duplicates(tmp_path) -> None:
    store = ResultsStore(tmp_path / "r.db")
    store.begin("r1", _row())
    _complete(store, "r1", miou=0.1)
    store.begin("r1", _row())  # a forced re-run
    assert store.count_rows() == {"runs": 1, "metrics": 0, "confusions": 0}
    assert store.runs().empty  # only completed runs are listed by default
    _complete(store, "r1", miou=0.7)
    assert store.scalar_metrics().loc["r1", "miou"] == 0.7
    assert store.count_rows()["metrics"] == 5


def test_failed_run_keeps_its_traceback(tmp_path) -> None:
    store = ResultsStore(tmp_path / "r.db")
    store.begin("r1", _row())
    store.fail("r1", "Traceback ...\nValueError: boom")
    record = store.get("r1")
    assert record.status == "failed" and "ValueError: boom" in record.error


def _open_store_after(barrier, path) -> None:
    barrier.wait()
    ResultsStore(path)  # an exception exits the child with code 1


def test_processes_racing_to_create_the_schema_all_succeed(tmp_path) -> None:
    """torchrun ranks and workers open a fresh database at the same moment; none may fail on CREATE TABLE."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    exit_codes = []
    for trial in range(15):
        barrier = ctx.Barrier(6)
        path = tmp_path / f"race-{trial}.db"
        children = [ctx.Process(target=_open_store_after, args=(barrier, path)) for _ in range(6)]
        for child in children:
            child.start()
        for child in children:
            child.join(60)
            exit_codes.append(child.exitcode)
    assert exit_codes == [0] * len(exit_codes)
    from sqlalchemy import inspect

    assert "runs" in inspect(ResultsStore(tmp_path / "race-0.db").engine).get_table_names()
