"""Benchmark cells claimed through the results database, so many processes and machines split one matrix.

Each cell of a suite is a row of ``benchmark_cells``: ``pending`` -> ``running`` (claimed by one worker, which
keeps a heartbeat) -> ``done`` or ``failed``. A claim is a compare-and-swap: ``UPDATE ... WHERE state = <as read>
AND attempts = <as read>``, so of two workers racing for a cell exactly one sees ``rowcount == 1``. That needs no
table locks and behaves the same on SQLite (writers serialise on the file lock) and PostgreSQL (a concurrent
UPDATE re-checks its WHERE clause on the committed row).

A ``running`` cell is taken over when its heartbeat is older than the stale timeout (a crashed or unplugged
machine), or at once when its worker ran on this host and that process no longer exists (a SIGKILL here).
Heartbeats use the workers' wall clocks, so machines sharing a database need synchronised clocks (NTP), and the
stale timeout must be much longer than the heartbeat interval.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import JSON, Column, Float, Integer, MetaData, String, Table, Text, and_, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from hsbench.suite import Cell

__all__ = ["CellClaims", "ClaimedCell", "Heartbeat", "WorkerId", "CELL_STATES"]

log = logging.getLogger("hsbench")

CELL_STATES = ("pending", "running", "done", "failed")

_meta = MetaData()

cells_table = Table(
    "benchmark_cells",
    _meta,
    Column("suite", String(128), primary_key=True),
    Column("cell_id", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("dataset", String(128), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("label", String(128), nullable=False),
    Column("split", String(128), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("options", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),  # bumped by every claim: the version the CAS compares
    Column("worker", String(128)),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("heartbeat_at", Float),  # seconds since the epoch (worker clock)
    Column("finished_at", Float),
    Column("run_id", String(64)),
    Column("error", Text),
)

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerId:
    """Who holds a claim: a unique token plus where the process runs (for the same-host liveness check)."""

    token: str
    host: str
    pid: int

    @classmethod
    def current(cls) -> WorkerId:
        return cls(f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}", socket.gethostname(), os.getpid())


@dataclass(frozen=True)
class ClaimedCell:
    suite: str
    cell_id: str
    attempts: int


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _retry_locked(fn: Callable[[], T], attempts: int = 20) -> T:
    """Retry a short transaction that SQLite refused because another process held the write lock."""
    for attempt in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if "locked" not in str(exc).lower() and "busy" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


class CellClaims:
    """The ``benchmark_cells`` table of one results database.

    Args:
        engine: the results database's engine (``ResultsStore.engine``).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            _meta.create_all(engine)
        except DBAPIError:  # another process created the table at the same moment
            _meta.create_all(engine)

    def register(self, cells: Iterable[Cell]) -> int:
        """Add the cells that are not in the table yet (as ``pending``); return how many were added."""
        cells = list(cells)

        def attempt() -> int:
            with self.engine.begin() as conn:
                suites = {c.suite for c in cells}
                known = {tuple(r) for r in conn.execute(
                    select(cells_table.c.suite, cells_table.c.cell_id).where(cells_table.c.suite.in_(suites)))}
                rows = [_cell_row(c) for c in cells if (c.suite, c.cell_id) not in known]
                if rows:
                    conn.execute(insert(cells_table), rows)
                return len(rows)

        for _ in range(5):
            try:
                return _retry_locked(attempt)
            except IntegrityError:  # another worker registered some of them first: read again
                continue
        return _retry_locked(attempt)

    def claim(
        self,
        suite: str,
        worker: WorkerId,
        *,
        stale_after_s: float,
        retry_failed_before: float,
        only: set[str] | None = None,
    ) -> ClaimedCell | None:
        """Claim the first claimable cell of ``suite`` in matrix order, or return ``None`` when none is left.

        Claimable: ``pending``; ``failed`` before ``retry_failed_before`` (an earlier invocation's failure);
        ``running`` with a heartbeat older than ``stale_after_s``, or whose worker was on this host and is gone.
        ``only`` restricts the claim to these cell ids (the current version of the suite).
        """
        now = time.time()
        for row in self._candidates(suite, worker, now - stale_after_s, retry_failed_before):
            if only is not None and row.cell_id not in only:
                continue
            if row.state == "running" and not self._abandoned(row, worker, now - stale_after_s):
                continue
            if self._swap(suite, row, worker, now):
                if row.state == "running":
                    log.warning("cell %s of suite %s: taking over from %s (no heartbeat)", row.cell_id, suite,
                                row.worker)
                return ClaimedCell(suite, row.cell_id, row.attempts + 1)
        return None

    def _candidates(self, suite: str, worker: WorkerId, stale_before: float, failed_before: float) -> list[Any]:
        c = cells_table.c
        claimable = or_(
            c.state == "pending",
            and_(c.state == "failed", c.finished_at < failed_before),
            and_(c.state == "running", or_(c.heartbeat_at < stale_before, c.host == worker.host)),
        )
        query = select(c.cell_id, c.state, c.attempts, c.worker, c.host, c.pid, c.heartbeat_at).where(
            (c.suite == suite) & claimable).order_by(c.position)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return rows

    @staticmethod
    def _abandoned(row: Any, worker: WorkerId, stale_before: float) -> bool:
        if row.heartbeat_at is None or row.heartbeat_at < stale_before:
            return True
        return row.host == worker.host and row.worker != worker.token and not _pid_alive(row.pid)

    def _swap(self, suite: str, row: Any, worker: WorkerId, now: float) -> bool:
        c = cells_table.c
        statement = (
            update(cells_table)
            .where((c.suite == suite) & (c.cell_id == row.cell_id) & (c.state == row.state)
                   & (c.attempts == row.attempts))
            .values(state="running", attempts=row.attempts + 1, worker=worker.token, host=worker.host,
                    pid=worker.pid, heartbeat_at=now, finished_at=None, error=None)
        )

        def attempt() -> bool:
            with self.engine.begin() as conn:
                return conn.execute(statement).rowcount == 1

        return _retry_locked(attempt)

    def _owned_update(self, claimed: ClaimedCell, worker: WorkerId, **values: Any) -> bool:
        """Update a cell only while ``worker`` still holds it; ``False`` means the claim was taken over."""
        c = cells_table.c
        statement = (
            update(cells_table)
            .where((c.suite == claimed.suite) & (c.cell_id == claimed.cell_id) & (c.worker == worker.token)
                   & (c.state == "running") & (c.attempts == claimed.attempts))
            .values(**values)
        )

        def attempt() -> bool:
            with self.engine.begin() as conn:
                return conn.execute(statement).rowcount == 1

        return _retry_locked(attempt)

    def beat(self, claimed: ClaimedCell, worker: WorkerId) -> bool:
        """Refresh the heartbeat of a held cell."""
        return self._owned_update(claimed, worker, heartbeat_at=time.time())

    def finish(self, claimed: ClaimedCell, worker: WorkerId, *, state: str, run_id: str | None,
               error: str | None = None) -> bool:
        """Mark a held cell ``done`` or ``failed`` with its run id."""
        if state not in ("done", "failed"):
            raise ValueError(f"a finished cell is done or failed, not {state!r}")
        return self._owned_update(claimed, worker, state=state, run_id=run_id, error=error, finished_at=time.time())

    def release(self, claimed: ClaimedCell, worker: WorkerId) -> bool:
        """Give a held cell back (``pending``), e.g. on Ctrl-C, so the next worker starts it at once."""
        return self._owned_update(claimed, worker, state="pending", heartbeat_at=None)

    def cells(self, suite: str) -> list[dict[str, Any]]:
        """Every row of ``suite`` in matrix order (for progress bars and reports)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(cells_table).where(cells_table.c.suite == suite).order_by(
                cells_table.c.position)).mappings().all()
        return [dict(r) for r in rows]

    def progress(self, suite: str, cell_ids: set[str], since: float) -> tuple[int, int]:
        """``(finished, failed)`` among ``cell_ids``: done at any time, or failed at or after ``since``."""
        c = cells_table.c
        done = failed = 0
        with self.engine.connect() as conn:
            for cell_id, state, finished_at in conn.execute(
                    select(c.cell_id, c.state, c.finished_at).where(c.suite == suite)):
                if cell_id in cell_ids:
                    done += state == "done"
                    failed += state == "failed" and finished_at is not None and finished_at >= since
        return done + failed, failed

    def count_states(self, suite: str, cell_ids: Iterable[str] | None = None) -> dict[str, int]:
        """How many of the suite's cells (optionally only ``cell_ids``) are in each state."""
        ids = None if cell_ids is None else set(cell_ids)
        counts = dict.fromkeys(CELL_STATES, 0)
        c = cells_table.c
        with self.engine.connect() as conn:
            for cell_id, state in conn.execute(select(c.cell_id, c.state).where(c.suite == suite)):
                if ids is None or cell_id in ids:
                    counts[state] += 1
        return counts


def _cell_row(cell: Cell) -> dict[str, Any]:
    return {
        "suite": cell.suite, "cell_id": cell.cell_id, "position": cell.position, "dataset": cell.dataset,
        "strategy": cell.strategy, "label": cell.label, "split": cell.split, "seed": cell.seed,
        "options": cell.options, "state": "pending", "attempts": 0,
    }


class Heartbeat:
    """A daemon thread that refreshes a held cell's heartbeat every ``interval_s`` while the cell runs.

    A thread rather than calls from the training loop, because strategies know nothing of benchmarks; PyTorch
    releases the GIL in its kernels, so the beat keeps time during training.
    """

    def __init__(self, claims: CellClaims, claimed: ClaimedCell, worker: WorkerId, interval_s: float) -> None:
        self._claims, self._claimed, self._worker = claims, claimed, worker
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hsbench-heartbeat", daemon=True)
        self.lost = False

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                held = self._claims.beat(self._claimed, self._worker)
            except DBAPIError as exc:  # a database hiccup: try again at the next beat
                log.warning("heartbeat of cell %s failed: %s", self._claimed.cell_id, exc)
                continue
            if not held:
                self.lost = True
                log.warning("cell %s was taken over by another worker (missed heartbeats?)", self._claimed.cell_id)
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
