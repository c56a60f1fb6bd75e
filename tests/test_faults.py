"""Faults of the environment end in one line: full disk, read-only folder, locked or unreachable database.

Each case runs the real command in-process (``hsbench.cli.main``) and checks the user-visible outcome: exit code,
one line on stderr naming the place and the cause, and the state of the results database (no row ``running``).
A full disk is simulated by making writes raise ``ENOSPC``; a read-only folder by ``chmod`` where that binds
(not as root) and by ``EROFS``/``EACCES`` everywhere; database faults are real (a SQLite lock, a read-only SQLite
URI, a closed TCP port).
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from test_store import _complete, _row

from hsbench import faults
from hsbench.cli import EXIT_PIPE_CLOSED, main
from hsbench.store import ResultsStore

FAST = ["--strategy", "in_domain", "--dataset", "tiny_segmentation", "--split", "fraction=0.5", "--model", "svm",
        "--no-progress", "--cfg-options", "svm_c_grid=[10]", "svm_max_pixels=300"]


def _run(results: Path, *extra: str) -> list[str]:
    return ["run", *FAST, "--results", str(results), *extra]


def _one_line(capsys) -> str:
    """The command's stderr, which must be exactly one line without a traceback."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "Logging error" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def _statuses(db: Path) -> list[str]:
    return ResultsStore(db).runs(status=None)["status"].tolist()


@pytest.fixture
def full_disk(monkeypatch):
    """From the first ``np.savez`` of a run on, every write fails with ENOSPC: the result files and ``log.txt``."""
    state = {"full": False}

    def savez(*args, **kwargs):
        state["full"] = True
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a failed write() names no file

    real_flush = logging.StreamHandler.flush

    def flush(handler):
        if state["full"] and isinstance(handler, logging.FileHandler):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_flush(handler)

    monkeypatch.setattr(np, "savez_compressed", savez)
    monkeypatch.setattr(logging.StreamHandler, "flush", flush)
    return state


def test_full_disk_mid_run_is_one_line_and_the_row_ends_failed(tmp_path, tiny_registered, full_disk, capsys) -> None:
    assert main(_run(tmp_path)) == 1
    line = _one_line(capsys)
    assert "no space left on the device (ENOSPC)" in line and str(tmp_path / "runs") in line
    record = ResultsStore(tmp_path / "hsbench.db").runs(status=None).iloc[0]
    assert record["status"] == "failed" and "ENOSPC" in record["error"] and len(record["error"]) < 500


def test_full_disk_with_a_broken_database_too_still_ends_in_one_line(tmp_path, tiny_registered, full_disk,
                                                                     monkeypatch, capsys) -> None:
    def fail(*args, **kwargs):
        raise OperationalError("UPDATE runs", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(ResultsStore, "fail", fail)
    assert main(_run(tmp_path)) == 1
    assert "no space left on the device (ENOSPC)" in _one_line(capsys)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_results_folder_turning_read_only_mid_run_ends_the_row_failed(tmp_path, tiny_registered, monkeypatch,
                                                                     capsys, code) -> None:
    def write(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path / "runs" / "x" / "confusion.npz"))

    monkeypatch.setattr(np, "savez_compressed", write)
    assert main(_run(tmp_path)) == 1
    line = _one_line(capsys)
    assert f"confusion.npz: {faults.OS_FAULTS[code][0]} ({errno.errorcode[code]})" in line
    assert _statuses(tmp_path / "hsbench.db") == ["failed"]


def test_read_only_results_folder_is_one_line_and_no_run_starts(tmp_path, tiny_registered, monkeypatch,
                                                                capsys) -> None:
    """The folder is read-only from the start (simulated, so that it binds as root too); the database lies elsewhere."""
    results, db = tmp_path / "results", tmp_path / "db" / "hsbench.db"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.is_relative_to(results):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert main(_run(results, "--db", str(db))) == 1
    line = _one_line(capsys)
    assert line.startswith(f"hsbench: error: {results}") and "read-only (EROFS)" in line
    assert "running" not in _statuses(db)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 555; the EROFS tests simulate it instead")
def test_chmod_read_only_results_folder_is_one_line(tmp_path, tiny_registered, capsys) -> None:
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    try:
        assert main(_run(results)) == 1
        line = _one_line(capsys)
        assert str(results) in line
    finally:
        results.chmod(0o755)
    assert not (results / "runs").exists()


def test_database_in_a_read_only_place_is_one_line_naming_it(tmp_path, tiny_registered, capsys) -> None:
    """A SQLite file opened read-only (a real read-only database, also as root): nothing can be recorded."""
    db = tmp_path / "hsbench.db"
    ResultsStore(db)  # the schema exists; every write is refused
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    assert main(_run(tmp_path / "results", "--db", url)) == 1
    line = _one_line(capsys)
    assert str(db) in line and "the database is read-only" in line
    assert _statuses(db) == []
    assert not (tmp_path / "results" / "runs").exists() or not any((tmp_path / "results" / "runs").iterdir())


def test_database_path_under_a_file_is_one_line(tmp_path, tiny_registered, capsys) -> None:
    (tmp_path / "afile").write_text("not a folder")
    assert main(_run(tmp_path, "--db", str(tmp_path / "afile" / "hsbench.db"))) == 1
    assert f"{tmp_path / 'afile'}: a file is in the way of a folder" in _one_line(capsys)


def test_database_locked_beyond_the_retries_is_one_line(tmp_path, tiny_registered, monkeypatch, capsys) -> None:
    import hsbench.store

    db = tmp_path / "hsbench.db"
    ResultsStore(db)
    monkeypatch.setattr(hsbench.store, "_engine_options", lambda url: {"connect_args": {"timeout": 0.05}})
    monkeypatch.setattr("hsbench.db_retry.LOCK_RETRY_S", 0.2, raising=False)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert main(_run(tmp_path)) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    line = _one_line(capsys)
    assert f"database {db}: locked by another process" in line
    assert _statuses(db) == []


def test_unreachable_postgresql_is_one_line_with_the_password_hidden(tmp_path, tiny_registered, capsys) -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is an extra: pip install 'hsbench[postgres]'")
    assert main(_run(tmp_path, "--db", "postgresql://user:s3cret@127.0.0.1:1/x")) == 1
    line = _one_line(capsys)
    assert "database postgresql://user:***@127.0.0.1:1/x: connection refused" in line and "s3cret" not in line
    assert not (tmp_path / "runs").exists()


def test_programming_errors_keep_their_tracebacks(tmp_path, tiny_registered, monkeypatch) -> None:
    def bug(*args, **kwargs):
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    monkeypatch.setattr(ResultsStore, "begin", bug)
    with pytest.raises(IntegrityError):
        main(_run(tmp_path))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OSError(errno.ENOSPC, "x", "/r/a.json"), "/r/a.json: no space left on the device (ENOSPC)"),
        (PermissionError(errno.EACCES, "x", "/r"), "/r: permission denied (EACCES)"),
        (OSError(errno.ENOENT, "x", "/r/a.json"), None),  # a missing input is checked where it is read
        (ValueError("bug"), None),
        (KeyError("split"), None),
    ],
)
def test_describe_translates_environment_faults_only(exc, expected) -> None:
    line = faults.describe(exc)
    assert line == expected if expected is None else line.startswith(expected)


def test_redact_url_hides_passwords_only() -> None:
    assert faults.redact_url("postgresql://u:p@h:5432/db and sqlite:///a/b.db") == \
        "postgresql://u:***@h:5432/db and sqlite:///a/b.db"
    assert faults.redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_failed_write_names_the_run_folder() -> None:
    exc = faults.located(OSError(errno.ENOSPC, "No space left on device"), "/r/runs/abc")
    assert faults.describe(exc).startswith("/r/runs/abc: no space left")
    assert faults.located(OSError(errno.ENOENT, "x"), "/r").filename is None  # not a fault: left as it was


def test_failing_a_run_does_not_undo_its_completion(tmp_path) -> None:
    """An interrupt right after ``complete`` reaches the failure handler; the stored results stay valid."""
    store = ResultsStore(tmp_path / "r.db")
    store.begin("r1", _row())
    _complete(store, "r1", miou=0.5)
    store.fail("r1", "KeyboardInterrupt")
    assert store.get("r1").status == "completed"


def test_nul_characters_and_huge_errors_are_stored(tmp_path) -> None:
    store = ResultsStore(tmp_path / "r.db")
    store.begin("r1", _row())
    store.fail("r1", "bad byte \x00 in a file name\n" + "x" * 200_000 + "\nOSError: the last line")
    error = store.get("r1").error
    assert "\x00" not in error and len(error) < 100_000 and error.endswith("OSError: the last line")


@pytest.mark.parametrize("argv", [["report"], ["report", "--suite", "quick"]])
def test_report_with_nothing_to_report_is_one_line_exit_2(tmp_path, capsys, argv) -> None:
    assert main([*argv, "--results", str(tmp_path), "--reports", str(tmp_path / "reports")]) == 2
    line = _one_line(capsys)
    assert "no completed runs" in line and str(tmp_path / "hsbench.db") in line
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("argv", [["show", "dataset", "synthetic_drive"], ["list", "datasets"]])
def test_closed_pipe_ends_quietly(argv) -> None:
    """The reader of stdout is gone before hsbench writes (``hsbench list | head -1`` when head exited)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "hsbench", *argv], stdout=write_end, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    finally:
        os.close(write_end)
    assert result.stderr == "" and result.returncode == EXIT_PIPE_CLOSED


def test_full_disk_in_a_benchmark_is_one_line_and_leaves_nothing_running(tmp_path, tiny_registered, full_disk,
                                                                         capsys) -> None:
    from sqlalchemy import select

    from hsbench.claims import cells_table

    suite = tmp_path / "suite.yaml"
    suite.write_text("name: disk\nseeds: [0]\nsplits: [fraction=0.5]\ndatasets: [tiny_segmentation]\n"
                     "strategies: [{strategy: in_domain, options: {model: svm, svm_c_grid: [10], "
                     "svm_max_pixels: 300}}]\n")
    argv = ["benchmark", "--suite", str(suite), "--results", str(tmp_path), "--no-progress", "--device", "cpu"]
    assert main(argv) == 1
    assert "no space left on the device (ENOSPC)" in _one_line(capsys)
    store = ResultsStore(tmp_path / "hsbench.db")
    assert store.runs(status=None)["status"].tolist() == ["failed"]
    with store.engine.connect() as conn:
        assert "running" not in [row.state for row in conn.execute(select(cells_table.c.state))]
