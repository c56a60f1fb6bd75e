"""Environment faults end in one line: a full disk, a read-only folder, a locked or unreachable database.

Why: such a fault is not a bug in hsbench, and the user can only act on *where* it happened and *why*; a long
traceback hides both. :func:`describe` turns a known fault into one line naming the path or database (password
hidden) and the cause, with a hint. Everything else returns ``None``, so programming errors keep their tracebacks.
The tables below are the whole policy: a new kind of fault is a new row, not a new branch.
"""

from __future__ import annotations

import errno
import logging
import re
from pathlib import Path

__all__ = ["EXIT_FAULT", "OS_FAULTS", "DB_FAULTS", "BestEffortFileHandler", "describe", "located", "redact_url"]

EXIT_FAULT = 1
"""Exit code of a command stopped by an environment fault (user mistakes exit 2)."""

_WRITABLE_FOLDER = "choose a writable folder (e.g. another --results)"

OS_FAULTS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", "free some space or choose another --results folder"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose another --results folder"),
    errno.EROFS: ("the file system is read-only", _WRITABLE_FOLDER),
    errno.EACCES: ("permission denied", f"check its permissions for this user, or {_WRITABLE_FOLDER}"),
    errno.EPERM: ("operation not permitted", f"check its permissions for this user, or {_WRITABLE_FOLDER}"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another path"),
    errno.EEXIST: ("a file is in the way of a folder", "move the file or choose another path"),
    errno.EISDIR: ("a folder is in the way of a file", "move the folder or choose another path"),
    errno.EIO: ("input/output error", "check the disk or network file system"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n)"),
    errno.ESTALE: ("stale network file handle", "check the network file system"),
}
"""errno -> (cause, hint) for an ``OSError`` from the file system."""

DB_FAULTS: tuple[tuple[str, str, str], ...] = (
    ("database is locked", "locked by another process beyond the retries",
     "stop the other writer, or use a PostgreSQL --db for many workers"),
    ("readonly database", "the database is read-only", "make the file and its folder writable, or pass another --db"),
    ("unable to open database file", "the database file cannot be opened",
     "check that its folder exists and is writable, or pass another --db"),
    ("database or disk is full", "no space left on the device", "free some space or pass another --db"),
    ("disk i/o error", "disk input/output error", "check the disk, or pass another --db"),
    ("connection refused", "connection refused", "start the server, or check the host and port in --db"),
    ("could not translate host name", "unknown host", "check the host name in --db"),
    ("name or service not known", "unknown host", "check the host name in --db"),
    ("timeout expired", "connection timed out", "check that the server is up and reachable"),
    ("password authentication failed", "authentication failed", "check the user and password in --db"),
    ("no password supplied", "authentication failed", "put the password in --db or in ~/.pgpass"),
    ("does not exist", "the database or user does not exist", "check the user and database names in --db"),
)
"""(text in the driver's message, cause, hint) for an operational database error; the first match wins."""

_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)


def redact_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL in it replaced by ``***``."""
    return _PASSWORD.sub(r"\g<head>***@", text)


def located(exc: BaseException, path: Path | str) -> BaseException:
    """Give a fault that names no file (a failed ``write`` or ``flush``) the place where it happened."""
    if isinstance(exc, OSError) and exc.errno in OS_FAULTS and exc.filename is None:
        exc.filename = str(path)
    return exc


def describe(exc: BaseException, *, database: str | Path | None = None) -> str | None:
    """One line for an environment fault, or ``None`` when ``exc`` is not one (it keeps its traceback).

    Args:
        exc: what was raised.
        database: the database the command uses (URL or SQLite path), named in database faults.
    """
    if isinstance(exc, OSError) and exc.errno in OS_FAULTS:
        cause, hint = OS_FAULTS[exc.errno]
        where = exc.filename if exc.filename is not None else "a file"
        return f"{where}: {cause} ({errno.errorcode[exc.errno]}); {hint}"
    return _describe_database(exc, database)


def _describe_database(exc: BaseException, database: str | Path | None) -> str | None:
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if not isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return None  # IntegrityError, ProgrammingError, ...: a bug, not the environment
    orig = getattr(exc, "orig", None) or exc
    message = str(orig).strip()
    lowered = message.lower()
    cause, hint = next(((c, h) for text, c, h in DB_FAULTS if text in lowered),
                       (message.splitlines()[0] if message else type(orig).__name__, "check --db"))
    where = f"database {redact_url(str(database))}" if database is not None else "the results database"
    return redact_url(f"{where}: {cause}; {hint}")


class BestEffortFileHandler(logging.FileHandler):
    """A run's ``log.txt``: when the disk is full or the folder read-only, lines are dropped without a word.

    The standard handler prints a "--- Logging error ---" traceback to stderr for every line it cannot write,
    which buries the one line that says what went wrong.
    """

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        pass

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the last buffered lines could not be flushed; the file is closed all the same
            pass
