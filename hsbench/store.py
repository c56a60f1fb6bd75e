"""The results database (SQLAlchemy): SQLite file by default, PostgreSQL by URL.

A run row is written as ``running`` when the run starts and becomes ``completed`` in one transaction with all
its metric and confusion rows, so a run killed at any moment leaves either nothing or a ``running`` row with no
results, never a half-written result. A re-run resets such a row and does the work again.

The runner's reads and writes are retried through a lost connection (a PostgreSQL restart) or a briefly locked
SQLite file (:mod:`hsbench.db_retry`); each write deletes what it is about to write first, so a retry after a
commit whose acknowledgement was lost writes the same rows once.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from hsbench.db_retry import retry_transient
from hsbench.evidence import UnitConfusions, decode, digest, encode

__all__ = ["ResultsStore", "RunRecord", "database_url"]

_meta = MetaData()

runs_table = Table(
    "runs",
    _meta,
    Column("run_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),  # running | completed | failed
    Column("dataset", String(128), nullable=False),
    Column("dataset_fingerprint", String(64), nullable=False),
    Column("dataset_version", String(32), nullable=False),
    Column("split", String(128), nullable=False),
    Column("split_hash", String(64)),
    Column("strategy", String(64), nullable=False),
    Column("strategy_label", String(128), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("config", JSON, nullable=False),
    Column("timings", JSON),
    Column("facts", JSON),
    Column("hsbench_version", String(32)),
    Column("git_commit", String(64)),
    Column("device", String(32)),
    # CPU, GPU, library versions and BLAS builds, threads, deterministic flags (hsbench.provenance);
    # NULL for runs stored by an older version.
    Column("provenance", JSON),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("run_dir", Text),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    # Sweep study whose best parameters this run re-fits (``hsbench sweep --refit-best``); NULL otherwise.
    Column("study", String(255)),
)

metrics_table = Table(
    "metrics",
    _meta,
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("part", String(16), primary_key=True),  # val | test
    Column("metric", String(32), primary_key=True),  # oa, miou, ... or iou / accuracy / f1 per class
    Column("class_index", Integer, primary_key=True),  # -1 for scalar metrics
    Column("value", Float),  # NULL for per-class values that are undefined (absent class)
)

confusion_table = Table(
    "confusions",
    _meta,
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("part", String(16), primary_key=True),
    Column("matrix", JSON, nullable=False),  # list of rows of int64 counts
)

evidence_table = Table(
    "evidence",
    _meta,
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("part", String(16), primary_key=True),
    Column("blob", LargeBinary, nullable=False),  # per-unit confusion matrices (hsbench.evidence.encode)
    Column("sha256", String(64), nullable=False),  # of ``blob``, checked when read
)

evaluations_table = Table(
    "evaluations",
    _meta,
    # A run's stored model evaluated on a dataset split (``hsbench evaluate``): the id hashes run, dataset, split,
    # part and class map (hsbench.cross_evaluation.evaluation_id), so evaluating the same thing again replaces it.
    Column("evaluation_id", String(64), primary_key=True),
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("dataset", String(128), nullable=False),
    Column("dataset_fingerprint", String(64), nullable=False),
    Column("dataset_version", String(32)),
    Column("split", String(128), nullable=False),
    Column("split_hash", String(64)),
    Column("split_seed", Integer),
    Column("part", String(16), nullable=False),
    Column("class_map", JSON),  # model class name -> evaluated class name or null; NULL: same class names
    Column("metrics", JSON, nullable=False),  # scalars, per-class lists, class names, excluded classes
    Column("confusion", JSON, nullable=False),  # list of rows of int64 counts
    Column("created_at", DateTime(timezone=True)),
    Column("hsbench_version", String(32)),
    Column("git_commit", String(64)),
    Column("device", String(32)),
    Column("provenance", JSON),
    Column("host", String(255)),
)


def database_url(db: str | Path) -> str:
    """A SQLAlchemy URL from a URL or a file path (a path means SQLite)."""
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        # SQLAlchemy's default PostgreSQL driver is psycopg2; the `postgres` extra installs psycopg 3.
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _engine_options(url: str) -> dict[str, Any]:
    """SQLite waits up to a minute for the write lock: benchmark workers and their progress bar share one file.

    A server's pooled connections are pinged before use (a restarted server left them dead) and a connection
    attempt gives up after 10 s, so that an unreachable host is reported, or retried, instead of hanging.
    """
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60.0}}
    server: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        server["connect_args"] = {"connect_timeout": 10}
    return server


def _add_missing_columns(engine: Engine) -> None:
    """Add nullable columns that this version declares but an older database lacks (additive migrations only).

    ``create_all`` creates missing tables but never alters existing ones, so a database made by an earlier
    version would otherwise fail on the first query naming a new column. Racing processes may both try: a
    failed ``ALTER`` is fine when the column now exists.
    """
    present = {name: {c["name"] for c in inspect(engine).get_columns(name)} for name in _meta.tables}
    preparer = engine.dialect.identifier_preparer
    for table in _meta.sorted_tables:
        for column in table.columns:
            if column.name in present[table.name] or not column.nullable:
                continue
            statement = (f"ALTER TABLE {preparer.quote(table.name)} ADD COLUMN {preparer.quote(column.name)} "
                         f"{column.type.compile(dialect=engine.dialect)}")
            try:
                with engine.begin() as conn:
                    conn.execute(text(statement))
            except DBAPIError:
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise


@dataclass(frozen=True)
class RunRecord:
    """One row of ``runs`` as the runner needs it."""

    run_id: str
    status: str
    run_dir: str | None
    error: str | None


MAX_ERROR_CHARS = 20_000
"""The stored error of a failed run is at most this long (its end: a traceback's last lines name the cause)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _float_or_none(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)



def default_database(results_dir: str | Path, db: str | Path | None = None) -> str | Path:
    """``db`` when given (a URL or SQLite path), else ``<results_dir>/hsbench.db``."""
    return db or Path(results_dir) / "hsbench.db"

class ResultsStore:
    """Reads and writes runs; reports read only through here."""

    def __init__(self, db: str | Path) -> None:
        self.url = database_url(db)
        self.engine: Engine = create_engine(self.url, future=True, **_engine_options(self.url))
        self._create_schema()

    def _create_schema(self, attempts: int = 5) -> None:
        """Create missing tables; tolerate other processes creating them at the same moment.

        Several processes (torchrun ranks, benchmark and sweep workers) may race on ``CREATE TABLE``. The loser's
        ``create_all`` fails on the first table the winner made while the winner may still be creating the next
        ones, so the loser tries again (``create_all`` skips existing tables); an error that persists is real.
        """
        for attempt in range(attempts):
            try:
                _meta.create_all(self.engine)
                break
            except DBAPIError:
                if set(_meta.tables) <= set(inspect(self.engine).get_table_names()):
                    break  # someone else created everything
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        _add_missing_columns(self.engine)

    def _transaction(self, fn: Callable[[Connection], Any], what: str) -> Any:
        """Run ``fn`` in one transaction, again after a lost connection or lock (it must be idempotent)."""

        def attempt() -> Any:
            with self.engine.begin() as conn:
                return fn(conn)

        return retry_transient(attempt, what)

    def get(self, run_id: str) -> RunRecord | None:
        query = select(runs_table.c.run_id, runs_table.c.status, runs_table.c.run_dir, runs_table.c.error).where(
            runs_table.c.run_id == run_id)
        row = self._transaction(lambda conn: conn.execute(query).first(), f"reading run {run_id}")
        return RunRecord(*row) if row else None

    def begin(self, run_id: str, row: dict[str, Any]) -> None:
        """Mark a run as started, replacing any earlier unfinished or failed attempt and its results."""
        values = {
            **row,
            "run_id": run_id,
            "status": "running",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": _now(),
            "finished_at": None,
            "error": None,
        }

        def write(conn: Connection) -> None:
            self._delete_results(conn, [run_id])
            # A re-run replaces the model, so evaluations of the old one go (SQLite does not enforce the cascade).
            conn.execute(delete(evaluations_table).where(evaluations_table.c.run_id == run_id))
            conn.execute(delete(runs_table).where(runs_table.c.run_id == run_id))
            conn.execute(insert(runs_table).values(**values))

        self._transaction(write, f"starting run {run_id}")

    def complete(
        self,
        run_id: str,
        *,
        metrics: dict[str, dict[str, float]],
        per_class: dict[str, dict[str, np.ndarray]],
        confusions: dict[str, np.ndarray],
        timings: dict[str, float],
        facts: dict[str, Any],
        evidence: dict[str, UnitConfusions] | None = None,
    ) -> None:
        """Write every result of a run and mark it completed, atomically (``evidence``: per-unit matrices)."""
        metric_rows = [
            {"run_id": run_id, "part": part, "metric": name, "class_index": -1, "value": _float_or_none(value)}
            for part, values in metrics.items()
            for name, value in values.items()
        ] + [
            {"run_id": run_id, "part": part, "metric": name, "class_index": k, "value": _float_or_none(v)}
            for part, values in per_class.items()
            for name, array in values.items()
            for k, v in enumerate(array.tolist())
        ]
        confusion_rows = [
            {"run_id": run_id, "part": part, "matrix": np.asarray(cm, dtype=np.int64).tolist()}
            for part, cm in confusions.items()
        ]
        evidence_rows = [{"run_id": run_id, "part": part, "blob": blob, "sha256": digest(blob)}
                         for part, units in (evidence or {}).items() for blob in [encode(units)]]

        def write(conn: Connection) -> None:
            self._delete_results(conn, [run_id])
            if metric_rows:
                conn.execute(insert(metrics_table), metric_rows)
            if confusion_rows:
                conn.execute(insert(confusion_table), confusion_rows)
            if evidence_rows:
                conn.execute(insert(evidence_table), evidence_rows)
            conn.execute(
                update(runs_table)
                .where(runs_table.c.run_id == run_id)
                .values(status="completed", timings=timings, facts=_jsonable(facts), finished_at=_now())
            )

        self._transaction(write, f"storing the results of run {run_id}")

    def fail(self, run_id: str, error: str, timings: dict[str, float] | None = None) -> None:
        """Mark a running run failed; the failure handler calls this, so it must not fail on its input.

        Only a ``running`` row changes: an interrupt that arrives after :meth:`complete` leaves the stored results
        valid. The error is stored without NUL characters (PostgreSQL text refuses them; a message quoting a
        corrupt file may hold some) and cut to its last :data:`MAX_ERROR_CHARS` (a traceback ends with its cause).
        """
        error = error.replace("\x00", "\\x00")[-MAX_ERROR_CHARS:]
        statement = (update(runs_table).where((runs_table.c.run_id == run_id) & (runs_table.c.status == "running"))
                     .values(status="failed", error=error, timings=_jsonable(timings), finished_at=_now()))
        self._transaction(lambda conn: conn.execute(statement), f"marking run {run_id} failed")

    def tag_study(self, run_ids: Iterable[str], study: str) -> None:
        """Mark runs as the refit of a sweep study's best parameters, so reports can show them with the study."""
        statement = update(runs_table).where(runs_table.c.run_id.in_(list(run_ids))).values(study=study)
        self._transaction(lambda conn: conn.execute(statement), f"tagging runs with study {study}")

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        """Every column of one run, ``None`` when there is no such run."""
        query = select(runs_table).where(runs_table.c.run_id == run_id)
        row = self._transaction(lambda conn: conn.execute(query).mappings().first(), f"reading run {run_id}")
        return None if row is None else dict(row)

    def run_ids_starting(self, prefix: str, limit: int = 3) -> list[str]:
        """Up to ``limit`` run ids that start with ``prefix`` (a shortened id, as ``git`` takes one)."""
        query = (select(runs_table.c.run_id).where(runs_table.c.run_id.startswith(prefix, autoescape=True))
                 .order_by(runs_table.c.run_id).limit(limit))
        return [r[0] for r in self._transaction(lambda conn: conn.execute(query).all(), "reading run ids")]

    def put_evaluation(self, row: dict[str, Any]) -> None:
        """Store an evaluation row (``hsbench evaluate``), replacing one with the same ``evaluation_id``."""
        values = {**_finite(_jsonable(row)), "created_at": _now(), "host": socket.gethostname()}

        def write(conn: Connection) -> None:
            conn.execute(delete(evaluations_table).where(
                evaluations_table.c.evaluation_id == values["evaluation_id"]))
            conn.execute(insert(evaluations_table).values(**values))

        self._transaction(write, f"storing evaluation {values['evaluation_id']}")

    def evaluations(self, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Evaluation rows (of the given runs), one per evaluation, oldest first."""
        query = select(evaluations_table).order_by(evaluations_table.c.created_at)
        if run_ids is not None:
            query = query.where(evaluations_table.c.run_id.in_(list(run_ids)))
        rows = self._transaction(lambda conn: conn.execute(query).mappings().all(), "reading evaluations")
        return pd.DataFrame(rows, columns=[c.name for c in evaluations_table.columns])

    @staticmethod
    def _delete_results(conn, run_ids: Iterable[str]) -> None:
        ids = list(run_ids)
        conn.execute(delete(metrics_table).where(metrics_table.c.run_id.in_(ids)))
        conn.execute(delete(confusion_table).where(confusion_table.c.run_id.in_(ids)))
        conn.execute(delete(evidence_table).where(evidence_table.c.run_id.in_(ids)))

    def runs(self, *, status: str | None = "completed") -> pd.DataFrame:
        """All runs (by default completed ones) as a data frame, one row per run."""
        query = select(runs_table)
        if status is not None:
            query = query.where(runs_table.c.status == status)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).mappings().all(), columns=[c.name for c in runs_table.columns])

    def scalar_metrics(self, run_ids: Iterable[str] | None = None, part: str = "test") -> pd.DataFrame:
        """Scalar metrics wide: one row per run id, one column per metric."""
        query = select(metrics_table.c.run_id, metrics_table.c.metric, metrics_table.c.value).where(
            (metrics_table.c.part == part) & (metrics_table.c.class_index == -1)
        )
        if run_ids is not None:
            query = query.where(metrics_table.c.run_id.in_(list(run_ids)))
        rows = self._transaction(lambda conn: conn.execute(query).all(), "reading metrics")
        long = pd.DataFrame(rows, columns=["run_id", "metric", "value"])
        if long.empty:
            return pd.DataFrame()
        return long.pivot(index="run_id", columns="metric", values="value")

    def confusion(self, run_id: str, part: str = "test") -> np.ndarray | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(confusion_table.c.matrix).where(
                    (confusion_table.c.run_id == run_id) & (confusion_table.c.part == part)
                )
            ).first()
        return None if row is None else np.asarray(row[0], dtype=np.int64)

    def evidence(self, run_id: str, part: str = "test") -> UnitConfusions | None:
        """The per-unit confusion matrices of a run's part, hash-checked; ``None`` for runs stored without them.

        Raises:
            EvidenceError: the stored blob no longer matches its recorded hash.
        """
        query = select(evidence_table.c.blob, evidence_table.c.sha256).where(
            (evidence_table.c.run_id == run_id) & (evidence_table.c.part == part))
        row = self._transaction(lambda conn: conn.execute(query).first(), f"reading the evidence of run {run_id}")
        return None if row is None else decode(bytes(row[0]), row[1], where=f"run {run_id} ({part})")

    def count_rows(self) -> dict[str, int]:
        """Row counts per table (for consistency checks)."""
        with self.engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (runs_table, metrics_table, confusion_table)
            }


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so numpy scalars and tuples are stored as plain values."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _finite(value: Any) -> Any:
    """NaN and infinities as ``None`` throughout (PostgreSQL's JSON has no NaN; an undefined metric is null)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
