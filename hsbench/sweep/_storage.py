"""Where a study lives: an Optuna journal file (one machine) or a database by URL (PostgreSQL for many machines).

Every kind gives the two things parallel workers need beyond Optuna's storage API:

* **Heartbeats**, so that a trial whose worker died is failed instead of staying ``RUNNING`` forever. Optuna
  implements its heartbeat protocol for RDB storages only; :class:`HeartbeatJournalStorage` adds it to the
  journal storage (a heartbeat is a trial system attribute holding the wall-clock time).
* A **claim lock**, held while a worker counts the trials taken and asks for a new one, so that K workers sharing
  an N-trial budget create exactly N trials: a file lock next to the journal (released by the kernel when its
  holder dies), or a PostgreSQL advisory lock (released when its connection closes).
"""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat  # Optuna's heartbeat protocol (no public alias)
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from hsbench.errors import ConfigError
from hsbench.store import database_url

__all__ = ["Heartbeat", "HeartbeatJournalStorage", "StorageKind", "STORAGE_KINDS", "storage_kind", "open_storage"]

ClaimLock = Callable[[], AbstractContextManager[None]]
"""Returns a context manager that holds the study's claim lock while entered."""

_HEARTBEAT_ATTR = "hsbench:heartbeat"


@dataclass(frozen=True)
class Heartbeat:
    """How often a running trial proves its worker alive, and after how long without proof it is failed.

    The grace period must exceed the longest stretch a trial can hold the GIL without releasing it (a long
    scikit-learn fit), or a live trial would be declared dead.
    """

    interval_s: int = 10
    grace_s: int = 120

    def __post_init__(self) -> None:
        if self.interval_s < 1 or self.grace_s <= self.interval_s:
            raise ConfigError(f"heartbeat interval must be >= 1 s and below the grace period, got {self}")


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with Optuna's heartbeat protocol.

    ``study.optimize`` and :func:`optuna.storages.fail_stale_trials` then treat it as they treat an RDB storage
    with ``heartbeat_interval`` set.
    """

    def __init__(self, backend: JournalFileBackend, heartbeat: Heartbeat) -> None:
        super().__init__(backend)
        self.heartbeat = heartbeat

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, _HEARTBEAT_ATTR, time.time())
        except UpdateFinishedTrialError:
            pass  # another worker declared the trial dead meanwhile; the worker learns it when it reports

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return [trial._trial_id for trial in running if now - _last_sign_of_life(trial) > self.heartbeat.grace_s]

    def get_heartbeat_interval(self) -> int:
        return self.heartbeat.interval_s

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return None

    get_failed_trial_callback = get_heartbeat_stale_trial_callback  # the name before Optuna 4.9


def _last_sign_of_life(trial: FrozenTrial) -> float:
    started = trial.datetime_start.timestamp() if trial.datetime_start is not None else time.time()
    return float(trial.system_attrs.get(_HEARTBEAT_ATTR, started))


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open_journal(location: str, heartbeat: Heartbeat) -> BaseStorage:
    path = Path(location).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return HeartbeatJournalStorage(JournalFileBackend(str(path)), heartbeat)


def _journal_claim_lock(location: str, study: str) -> ClaimLock:
    path = Path(location).expanduser().with_name(Path(location).name + ".claim")
    return lambda: _file_lock(path)


def _open_rdb(location: str, heartbeat: Heartbeat) -> BaseStorage:
    return RDBStorage(
        database_url(location), heartbeat_interval=heartbeat.interval_s, grace_period=heartbeat.grace_s
    )


def _sqlite_claim_lock(location: str, study: str) -> ClaimLock:
    path = Path(database_url(location).removeprefix("sqlite:///"))
    return lambda: _file_lock(path.with_name(path.name + ".claim"))


def _postgres_claim_lock(location: str, study: str) -> ClaimLock:
    engine = create_engine(database_url(location), poolclass=NullPool)
    key = int.from_bytes(hashlib.sha256(f"hsbench-sweep:{study}".encode()).digest()[:8], "big", signed=True)

    @contextmanager
    def hold() -> Iterator[None]:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})

    return hold


@dataclass(frozen=True)
class StorageKind:
    """One kind of study storage.

    Attributes:
        description: shown in errors and docs.
        open: ``open(location, heartbeat) -> storage``.
        claim_lock: ``claim_lock(location, study) -> ClaimLock``.
        parallel: whether several worker processes may share it.
    """

    description: str
    open: Callable[[str, Heartbeat], BaseStorage]
    claim_lock: Callable[[str, str], ClaimLock]
    parallel: bool = True


STORAGE_KINDS: dict[str, StorageKind] = {
    "journal": StorageKind("Optuna journal file: many processes on one machine", _open_journal,
                           _journal_claim_lock),
    "postgresql": StorageKind("PostgreSQL URL: many machines", _open_rdb, _postgres_claim_lock),
    # Optuna advises against SQLite with parallel workers (database locking); one worker is fine.
    "sqlite": StorageKind("SQLite URL: one worker process only", _open_rdb, _sqlite_claim_lock, parallel=False),
}
"""Storage kinds by name: a location without ``://`` is a journal file, a URL is named by its scheme."""


def storage_kind(location: str) -> StorageKind:
    """The kind of a ``--storage`` value (a journal file path or a database URL)."""
    name = location.split("://", 1)[0].split("+", 1)[0] if "://" in location else "journal"
    if name not in STORAGE_KINDS:
        kinds = "; ".join(f"{key}: {kind.description}" for key, kind in STORAGE_KINDS.items())
        raise ConfigError(f"unsupported sweep storage {location!r}; supported: {kinds}")
    return STORAGE_KINDS[name]


def open_storage(location: str, heartbeat: Heartbeat | None = None) -> BaseStorage:
    """An Optuna storage with heartbeats for a journal file path or a database URL."""
    return storage_kind(location).open(location, heartbeat or Heartbeat())
