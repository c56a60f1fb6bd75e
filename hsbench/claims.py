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

A single run (``hsbench run``, a sweep's refit, a benchmark cell's run) is claimed the same way, as the cell
``<run id>`` of the reserved suite :data:`RUNS_SUITE` (see :func:`hold`): a second process on the same run waits
for the holder, or takes over when it died. Every transaction is retried through lock contention and lost
connections (:mod:`hsbench.db_retry`), and written so that running it twice is harmless.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, Float, Integer, MetaData, String, Table, Text, and_, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from hsbench.db_retry import retry_transient, short_error

if TYPE_CHECKING:  # hsbench.suite imports the runner, which claims its runs here
    from hsbench.suite import Cell

__all__ = ["CellClaims", "ClaimedCell", "Heartbeat", "Hold", "Holder", "WorkerId", "CELL_STATES", "RUNS_SUITE",
           "hold"]

log = logging.getLogger("hsbench")

CELL_STATES = ("pending", "running", "done", "failed")
RUNS_SUITE = "@runs"  # the suite of single-run claims; no suite can have this name (hsbench.names)

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


@dataclass(frozen=True)
class Holder:
    """Who runs a cell that another process wants (for the message of the one that waits)."""

    host: str | None
    pid: int | None

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.host}"


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
                return retry_transient(attempt, "registering cells")
            except IntegrityError:  # another worker registered some of them first: read again
                continue
        return retry_transient(attempt, "registering cells")

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

    def claim_cell(self, suite: str, cell_id: str, worker: WorkerId, *, stale_after_s: float,
                   what: str | None = None) -> ClaimedCell | Holder:
        """Claim one registered cell whatever its state, unless a live worker holds it: then return who does.

        For single runs (:func:`hold`), where ``done`` only means "nobody holds it now": whether the run must be
        done again is the results database's decision, not the claim's. ``what`` names the cell in the log line
        of a takeover.
        """
        while True:
            now = time.time()
            rows = self._rows((cells_table.c.suite == suite) & (cells_table.c.cell_id == cell_id))
            if not rows:
                raise KeyError(f"cell {cell_id} of suite {suite} is not registered")
            row = rows[0]
            if row.state == "running" and row.worker != worker.token and not self._abandoned(
                    row, worker, now - stale_after_s):
                return Holder(row.host, row.pid)
            if self._swap(suite, row, worker, now):
                if row.state == "running" and row.worker != worker.token:
                    log.warning("%s: taking over from %s (gone, or no heartbeat)",
                                what or f"cell {cell_id} of suite {suite}", Holder(row.host, row.pid))
                return ClaimedCell(suite, cell_id, row.attempts + 1)
            # another process changed the row between the read and the swap: read it again

    def _candidates(self, suite: str, worker: WorkerId, stale_before: float, failed_before: float) -> list[Any]:
        c = cells_table.c
        claimable = or_(
            c.state == "pending",
            and_(c.state == "failed", c.finished_at < failed_before),
            and_(c.state == "running", or_(c.heartbeat_at < stale_before, c.host == worker.host)),
        )
        return self._rows((c.suite == suite) & claimable)

    def _rows(self, where: Any) -> list[Any]:
        """The claim-relevant columns of the cells matching ``where``, in matrix order."""
        c = cells_table.c
        return self._read(select(c.cell_id, c.state, c.attempts, c.worker, c.host, c.pid, c.heartbeat_at).where(
            where).order_by(c.position))

    @staticmethod
    def _abandoned(row: Any, worker: WorkerId, stale_before: float) -> bool:
        if row.heartbeat_at is None or row.heartbeat_at < stale_before:
            return True
        return row.host == worker.host and row.worker != worker.token and not _pid_alive(row.pid)

    def _swap(self, suite: str, row: Any, worker: WorkerId, now: float) -> bool:
        """The compare-and-swap. Its second condition matches the row this very swap wrote, so a retry after a
        commit whose acknowledgement was lost (a dropped connection) still reports the claim as won."""
        c = cells_table.c
        as_read = (c.state == row.state) & (c.attempts == row.attempts)
        already_won = (c.state == "running") & (c.attempts == row.attempts + 1) & (c.worker == worker.token)
        statement = (
            update(cells_table)
            .where((c.suite == suite) & (c.cell_id == row.cell_id) & (as_read | already_won))
            .values(state="running", attempts=row.attempts + 1, worker=worker.token, host=worker.host,
                    pid=worker.pid, heartbeat_at=now, finished_at=None, error=None)
        )
        return self._update_one(statement, "claiming a cell")

    def _owned_update(self, claimed: ClaimedCell, worker: WorkerId, **values: Any) -> bool:
        """Update a cell only while ``worker`` still holds it; ``False`` means the claim was taken over.

        A row already in the new state counts as held, so a retried finish or release whose first commit went
        through (its acknowledgement lost with the connection) still succeeds.
        """
        c = cells_table.c
        states = ["running"] + ([values["state"]] if "state" in values else [])
        statement = (
            update(cells_table)
            .where((c.suite == claimed.suite) & (c.cell_id == claimed.cell_id) & (c.worker == worker.token)
                   & c.state.in_(states) & (c.attempts == claimed.attempts))
            .values(**values)
        )
        return self._update_one(statement, "updating a claimed cell")

    def _update_one(self, statement: Any, what: str) -> bool:
        """Run an update in its own transaction (retried through transient faults); whether it changed one row."""

        def attempt() -> bool:
            with self.engine.begin() as conn:
                return conn.execute(statement).rowcount == 1

        return retry_transient(attempt, what)

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
        query = select(cells_table).where(cells_table.c.suite == suite).order_by(cells_table.c.position)
        return [dict(r) for r in self._read(query, mappings=True)]

    def progress(self, suite: str, cell_ids: set[str], since: float) -> tuple[int, int]:
        """``(finished, failed)`` among ``cell_ids``: done at any time, or failed at or after ``since``."""
        c = cells_table.c
        finished = failed = 0
        rows = self._read(select(c.cell_id, c.state, c.finished_at).where(c.suite == suite))
        for cell_id, state, finished_at in rows:
            if cell_id in cell_ids and _finished(state, finished_at, since):
                finished += 1
                failed += state == "failed"
        return finished, failed

    def unfinished(self, suite: str, cell_ids: Iterable[str], since: float) -> set[str]:
        """Those of ``cell_ids`` not finished in the sense of :meth:`progress` (a cell not registered counts)."""
        c = cells_table.c
        rows = self._read(select(c.cell_id, c.state, c.finished_at).where(c.suite == suite))
        finished = {cell_id for cell_id, state, finished_at in rows if _finished(state, finished_at, since)}
        return set(cell_ids) - finished

    def held_by_live_workers(self, suite: str, cell_ids: Iterable[str], *, stale_after_s: float) -> set[str]:
        """Those of ``cell_ids`` running under a claim that no worker of this host could take over now."""
        ids, me, now = set(cell_ids), WorkerId.current(), time.time()
        rows = self._rows((cells_table.c.suite == suite) & (cells_table.c.state == "running"))
        return {r.cell_id for r in rows if r.cell_id in ids and not self._abandoned(r, me, now - stale_after_s)}

    def count_states(self, suite: str, cell_ids: Iterable[str] | None = None) -> dict[str, int]:
        """How many of the suite's cells (optionally only ``cell_ids``) are in each state."""
        ids = None if cell_ids is None else set(cell_ids)
        counts = dict.fromkeys(CELL_STATES, 0)
        c = cells_table.c
        for cell_id, state in self._read(select(c.cell_id, c.state).where(c.suite == suite)):
            if ids is None or cell_id in ids:
                counts[state] += 1
        return counts

    def _read(self, query: Any, *, mappings: bool = False) -> list[Any]:
        """All rows of a query, retried through lost connections (the progress bar reads during a restart)."""

        def read() -> list[Any]:
            with self.engine.connect() as conn:
                result = conn.execute(query)
                return list(result.mappings().all() if mappings else result.all())

        return retry_transient(read, "reading benchmark cells")


def _finished(state: str, finished_at: float | None, since: float) -> bool:
    """Done at any time, or failed during this invocation (an earlier failure is retried)."""
    return state == "done" or (state == "failed" and finished_at is not None and finished_at >= since)


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


@dataclass(frozen=True)
class Hold:
    """What :func:`hold` got: ``busy`` names the live holder when the caller would not wait (and holds nothing);
    ``waited_for`` names the holder it waited for, if any (its result is new, not a leftover)."""

    busy: Holder | None = None
    waited_for: Holder | None = None


@contextmanager
def hold(
    claims: CellClaims,
    cell: Cell,
    *,
    what: str,
    stale_after_s: float,
    heartbeat_s: float,
    wait: bool = True,
    poll_s: float = 1.0,
) -> Iterator[Hold]:
    """Hold one cell, with a heartbeat, for the duration of the ``with`` block; nobody else holds it meanwhile.

    A live holder elsewhere is waited for (one log line names it) until it ends or dies, or, with ``wait=False``,
    reported at once through :attr:`Hold.busy` (then nothing is held). On leaving the block the cell becomes
    ``done``, or ``pending`` again when the block raised.

    Args:
        claims: the claims table of the results database.
        cell: the cell (registered here when new), e.g. a run as the cell ``<run id>`` of :data:`RUNS_SUITE`.
        what: how the log line calls it ("run 3f2a... (in_domain svm)").
    """
    claims.register([cell])
    worker, waited_for = WorkerId.current(), None
    while not isinstance(result := claims.claim_cell(cell.suite, cell.cell_id, worker, stale_after_s=stale_after_s,
                                                     what=what), ClaimedCell):
        if not wait:
            log.info("%s is being run by %s; not waiting (--no-wait)", what, result)
            yield Hold(busy=result)
            return
        if waited_for is None:  # a warning: benchmark workers show only those, and a silent wait looks hung
            log.warning("%s is being run by %s; waiting for it to finish", what, result)
        waited_for = result
        time.sleep(poll_s)
    try:
        with Heartbeat(claims, result, worker, heartbeat_s):
            yield Hold(waited_for=waited_for)
    except BaseException:
        _settle(lambda: claims.release(result, worker), what)
        raise
    _settle(lambda: claims.finish(result, worker, state="done", run_id=None), what)


def _settle(give_back: Callable[[], bool], what: str) -> None:
    """Give a claim back, best effort: when the database itself fails, the block's own outcome (its result
    stored, or its error) matters more, and a claim left behind is taken over once this process is gone."""
    try:
        give_back()
    except DBAPIError as exc:
        log.warning("%s: could not release its claim (%s); it is taken over once this process ends", what,
                    short_error(exc))
