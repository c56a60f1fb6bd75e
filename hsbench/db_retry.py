"""Short database transactions retried through lock contention and lost connections (a PostgreSQL restart).

Why: runs, benchmark workers and their progress bar share one results database. SQLite sometimes refuses a
writer at once (``database is locked``) instead of waiting its busy timeout, and a PostgreSQL server that
restarts drops every connection. Both pass within seconds, so failing a run that trained for hours over them
would be wrong. A real fault (a read-only file, a full disk, a missing table, a server down for minutes) still
ends in its error, after at most :data:`CONNECTION_RETRY_S`.

Every function given to :func:`retry_transient` must be safe to run twice: when a connection dies during a
commit, the commit may have happened although its acknowledgement was lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

__all__ = ["CONNECTION_RETRY_S", "LOCK_RETRY_S", "retry_transient", "short_error", "transient_kind"]

log = logging.getLogger("hsbench")

LOCK_RETRY_S = 10.0  # a lock that SQLite's own 60 s busy timeout did not resolve is not retried (see below)
CONNECTION_RETRY_S = 120.0  # long enough for a server restart or a fail-over, short enough to report a dead one

T = TypeVar("T")


def transient_kind(exc: BaseException) -> Literal["lock", "connection"] | None:
    """``lock`` (SQLite busy), ``connection`` (lost or refused, or the server's own operational error), or None.

    On a database server, DB-API's ``OperationalError`` means the server could not serve the statement now
    (disconnect, shutdown, start-up, serialisation failure), so it is transient; on SQLite it also covers
    permanent faults (a read-only file, a full disk), so there only lock contention is.
    """
    if not isinstance(exc, DBAPIError):
        return None
    message = str(exc.orig).lower()
    sqlite = type(exc.orig).__module__.startswith("sqlite3")
    if sqlite and isinstance(exc, OperationalError) and ("locked" in message or "busy" in message):
        return "lock"
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return "connection"
    if isinstance(exc, OperationalError) and not sqlite:
        return "connection"
    return None


def retry_transient(fn: Callable[[], T], what: str = "database transaction") -> T:
    """Run ``fn`` until it succeeds, retrying transient faults with backoff within their time budget.

    Lock errors are retried for :data:`LOCK_RETRY_S` from the first attempt, so a lock that was held through a
    whole busy timeout (the first attempt already took longer) fails at once; connection errors for
    :data:`CONNECTION_RETRY_S`, with exponential backoff capped at 5 s and one warning.
    """
    start, attempt, warned = time.monotonic(), 0, False
    while True:
        try:
            result = fn()
        except DBAPIError as exc:
            kind = transient_kind(exc)
            budget = LOCK_RETRY_S if kind == "lock" else CONNECTION_RETRY_S if kind == "connection" else 0.0
            left = budget - (time.monotonic() - start)
            if left <= 0:
                raise
            if kind == "connection" and not warned:
                log.warning("%s: database connection failed (%s); retrying for up to %.0f s", what,
                            short_error(exc), left)
                warned = True
            time.sleep(min(left, 0.05 * (attempt + 1) if kind == "lock" else min(5.0, 0.1 * 2**attempt)))
            attempt += 1
            continue
        if warned:
            log.warning("%s: database reachable again after %.1f s", what, time.monotonic() - start)
        return result


def short_error(exc: DBAPIError) -> str:
    """The driver's message without SQLAlchemy's statement and link: its first line."""
    text = str(exc.orig).strip()
    return text.splitlines()[0] if text else type(exc.orig).__name__
