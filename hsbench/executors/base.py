"""What every executor offers the placement loop: submit picklable calls with resources, poll which have ended.

An executor only places work. Which benchmark cell or sweep trial a job runs is decided inside the job, through
the results database's claims (:mod:`hsbench.claims`) or the Optuna storage, exactly as for local workers. So a
job that is killed, preempted or lost with its node costs at most the cell it held: the claim of a dead worker is
taken over by the next job (at once on the same host, after the stale timeout elsewhere).
"""

from __future__ import annotations

import importlib
import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hsbench.config_files import require_choice
from hsbench.errors import ConfigError, HsbenchError
from hsbench.executors.resources import Resources

__all__ = ["Executor", "ExecutorSettings", "JobEnd", "EXECUTORS", "SubmitterView", "register_executor", "open_executor",
           "absolute_path", "absolute_location", "import_engine"]

SHARED_ENV = ("HSBENCH_HOME", "HSBENCH_DATA")
"""Environment a job takes over from the submitting process: where the zoo, caches and prepared data live."""


@dataclass(frozen=True)
class ExecutorSettings:
    """Where jobs run (``--executor`` and its flags).

    Attributes:
        name: ``local`` (this machine's processes, today's behaviour), ``slurm`` or ``ray``.
        resources: flag values that override the suite file's ``resources`` (unset fields leave them).
        ray_address: the Ray cluster to join (``None``: start a local one on this machine's CPUs).
        max_requeues: how often one job that ended abnormally (killed, lost node, crash) is submitted again.
        max_parallel: at most this many jobs of one submission run at once (Slurm array throttle; Ray: unset).
    """

    name: str = "local"
    resources: Resources = field(default_factory=Resources)
    ray_address: str | None = None
    max_requeues: int = 2
    max_parallel: int | None = None

    def __post_init__(self) -> None:
        require_choice("executor", self.name, ("local", *EXECUTORS))
        if self.max_requeues < 0:
            raise ConfigError(f"--max-requeues must be >= 0, got {self.max_requeues}")
        if self.max_parallel is not None and self.max_parallel < 1:
            raise ConfigError(f"--max-parallel must be >= 1, got {self.max_parallel}")
        if self.ray_address is not None and self.name != "ray":
            raise ConfigError("--ray-address needs --executor ray")

    @property
    def remote(self) -> bool:
        """Whether jobs go through a cluster engine rather than this machine's worker processes."""
        return self.name != "local"


@dataclass(frozen=True)
class JobEnd:
    """How one job ended: ``ok`` when its call returned; otherwise one line on why and where its log is."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class SubmitterView:
    """What the submitting process sees, so that a job on another node can check it sees the same.

    A probe file with a fresh token goes into the (shared) jobs folder; a job that cannot read that token does not
    share the results folder with the submitter, and stops with one line instead of writing results nobody reads.
    The job also takes over :data:`SHARED_ENV`, so it uses the same zoo and data roots.
    """

    probe: Path
    token: str
    env: dict[str, str]

    @classmethod
    def write(cls, folder: Path) -> SubmitterView:
        folder = absolute_path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        probe = folder / "storage_probe.txt"
        probe.write_text(token)
        return cls(probe, token, {key: os.environ[key] for key in SHARED_ENV if os.environ.get(key)})

    def enter(self) -> None:
        """Called first in every job: take over the environment, then check the shared folder."""
        os.environ.update(self.env)
        try:
            seen = self.probe.read_text()
        except OSError:
            seen = None
        if seen != self.token:
            raise HsbenchError(f"this job's node ({socket.gethostname()}) does not see {self.probe.parent} as the "
                               "submitting machine does: put the results folder, $HSBENCH_HOME and the data root on "
                               "storage shared by every node (docs/scaling.md)")


def import_engine(module: str, executor: str) -> Any:
    """The engine's package, or a one-line error saying which extra installs it (engines are optional)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"--executor {executor} needs {module}: pip install 'hsbench[{executor}]'") from exc


def absolute_path(path: Path | str) -> Path:
    """``path`` made absolute against this process's working directory (a job may start in another one)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def absolute_location(location: str | Path | None) -> str | None:
    """A database URL, journal or SQLite path as a job must see it: URLs unchanged, file paths made absolute."""
    if location is None or "://" in str(location):
        return None if location is None else str(location)
    return str(absolute_path(location))


class Executor(ABC):
    """A cluster engine seen as: submit calls (each a job with the same resources), then poll until they end."""

    name: ClassVar[str]
    install_hint: ClassVar[str]

    @abstractmethod
    def submit(self, calls: Sequence[Callable[[], Any]], resources: Resources, label: str) -> list[Hashable]:
        """Start one job per call (one Slurm job array, or one Ray task each); return a handle per job."""

    @abstractmethod
    def poll(self, handles: Sequence[Hashable]) -> dict[Hashable, JobEnd]:
        """The handles among ``handles`` whose jobs have ended, with how they ended; never blocks for long."""

    @abstractmethod
    def cancel(self, handles: Sequence[Hashable]) -> None:
        """Stop these jobs (Ctrl-C of the submitting command)."""

    def close(self) -> None:  # noqa: B027 - most engines hold nothing to release
        """Release what the executor took when it opened (e.g. a local Ray cluster this process started)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


EXECUTORS: dict[str, Callable[[ExecutorSettings, Path], Executor]] = {}
"""Remote executors by name: ``factory(settings, jobs_dir) -> Executor``. ``local`` is not one: it is the
benchmark's and the sweep's own worker processes."""


def register_executor(name: str) -> Callable[[type[Executor]], type[Executor]]:
    """Class decorator adding an executor to :data:`EXECUTORS` under ``name``."""

    def add(cls: type[Executor]) -> type[Executor]:
        cls.name = name
        EXECUTORS[name] = cls
        return cls

    return add


def open_executor(settings: ExecutorSettings, jobs_dir: Path) -> Executor:
    """The executor ``settings`` names, with its job files (logs, submitted calls) under ``jobs_dir``."""
    factory = EXECUTORS[require_choice("executor", settings.name, EXECUTORS)]
    return factory(settings, jobs_dir)
