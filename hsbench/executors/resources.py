"""What one benchmark cell (or sweep worker) asks of a cluster: CPUs, GPUs, memory, wall time, where to queue.

A suite file (top level and per dataset) and the CLI flags give the same six keys; both go through
:func:`parse_resources`, so a typo or a malformed value fails when the suite loads, not when a job is submitted
hours later. Only cluster executors (Slurm, Ray) read them; the local executor ignores them, and they are never
part of a cell id: asking for more memory does not make a finished cell unfinished.

Units follow Slurm, the stricter of the two: memory ``"16G"`` / ``"512M"`` / ``"2048"`` (a bare number is MiB;
K/M/G/T are binary units), wall time ``"90"`` (minutes), ``"H:MM:SS"`` or ``"D-HH:MM:SS"``, always a string:
YAML reads an unquoted ``2:00:00`` as the number 7200. Ray gets the same request converted
(:attr:`Resources.mem_bytes`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from hsbench.config_files import reject_unknown_keys
from hsbench.errors import ConfigError

__all__ = ["RESOURCE_KEYS", "Resources", "parse_resources"]

RESOURCE_KEYS = ("cpus", "gpus", "mem", "time", "partition", "account")

_MEM_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$", re.IGNORECASE)
_MEM_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_MINUTES_RE = re.compile(r"^\d+$")
_HMS_RE = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")
_DHMS_RE = re.compile(r"^(\d+)-(\d{1,2}):([0-5]\d):([0-5]\d)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")

_MEM_FORM = 'a positive size such as "16G", "512M" or "2048" (MiB; suffixes K/M/G/T are KiB..TiB)'
_TIME_FORM = 'minutes ("90"), "H:MM:SS" or "D-HH:MM:SS", greater than zero'
_NAME_FORM = "a non-empty name of letters, digits, '.', '_' and '-'"


@dataclass(frozen=True)
class Resources:
    """What one benchmark cell or sweep worker asks of a cluster (Slurm job / Ray task); ``None`` = engine default.

    Attributes:
        cpus: CPUs per job (Slurm ``--cpus-per-task``, Ray ``num_cpus``); None = the engine's default, 1.
        gpus: GPUs per job (Slurm ``--gpus-per-node``, Ray ``num_gpus``); None = 0.
        mem: memory per job as given, suffix upper-cased (``"16G"``, ``"512M"``, ``"2048"`` = MiB).
        time: wall-time limit per job as given: minutes (``"90"``), ``"H:MM:SS"`` or ``"D-HH:MM:SS"``.
        partition: Slurm partition (Slurm only).
        account: Slurm account (Slurm only).
    """

    cpus: int | None = None
    gpus: int | None = None
    mem: str | None = None
    time: str | None = None
    partition: str | None = None
    account: str | None = None

    def merged(self, override: Resources) -> Resources:
        """These resources with every field that ``override`` sets (not None) replaced: dataset over suite,
        CLI over file."""
        changes = {key: getattr(override, key) for key in RESOURCE_KEYS if getattr(override, key) is not None}
        return dataclasses.replace(self, **changes)

    @property
    def mem_bytes(self) -> int | None:
        """``mem`` in bytes (rounded up), for Ray; None when unset."""
        if self.mem is None:
            return None
        number, unit = _split_mem(self.mem)
        return math.ceil(number * _MEM_UNITS[unit or "M"])

    @property
    def mem_mib(self) -> int | None:
        """``mem`` in MiB, rounded up (a whole number is what Slurm's ``--mem`` takes); None when unset."""
        mem_bytes = self.mem_bytes
        return None if mem_bytes is None else math.ceil(Fraction(mem_bytes, 2**20))

    @property
    def time_minutes(self) -> int | None:
        """``time`` in whole minutes, rounded up (``"1-02:00:00"`` is 1560); None when unset."""
        return None if self.time is None else math.ceil(Fraction(_time_seconds(self.time), 60))

    def describe(self) -> str:
        """The set fields as ``key=value`` in :data:`RESOURCE_KEYS` order (for dry runs and logs), or
        ``"defaults"``."""
        parts = [f"{key}={getattr(self, key)}" for key in RESOURCE_KEYS if getattr(self, key) is not None]
        return " ".join(parts) if parts else "defaults"


def parse_resources(value: Any, owner: str) -> Resources:
    """Validate a ``resources`` mapping (from YAML, or built from CLI flags with None for unset flags).

    Args:
        value: the mapping, or None (nothing asked: :class:`Resources` with every field unset).
        owner: who gave it ("suite quick resources", "--executor flags"), named in every error.

    Raises:
        ConfigError: not a mapping, an unknown key (with the closest valid ones), or a value out of its form.
    """
    if value is None:
        return Resources()
    if not isinstance(value, Mapping):
        raise ConfigError(f"{owner}: resources must be a mapping with keys {', '.join(RESOURCE_KEYS)}, "
                          f"got {value!r}")
    reject_unknown_keys(value, RESOURCE_KEYS, owner)
    given = {key: value[key] for key in RESOURCE_KEYS if value.get(key) is not None}
    parsed: dict[str, Any] = {}
    for key in ("cpus", "gpus"):
        if key in given:
            parsed[key] = _count(given[key], key, 1 if key == "cpus" else 0, owner)
    if "mem" in given:
        parsed["mem"] = _mem(given["mem"], owner)
    if "time" in given:
        parsed["time"] = _time(given["time"], owner)
    for key in ("partition", "account"):
        if key in given:
            item = given[key]
            if not isinstance(item, str) or not _NAME_RE.match(item):
                raise ConfigError(f"{owner}: {key} must be {_NAME_FORM}, got {item!r}")
            parsed[key] = item
    return Resources(**parsed)


def _count(value: Any, key: str, minimum: int, owner: str) -> int:
    # bool is an int subclass: `gpus: true` is a mistake, not one GPU
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{owner}: {key} must be a whole number >= {minimum}, got {value!r}")
    return value


def _mem(value: Any, owner: str) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    match = _MEM_RE.match(text) if isinstance(text, str) else None
    if match is None or Fraction(match.group(1)) == 0:
        raise ConfigError(f"{owner}: mem must be {_MEM_FORM}, got {value!r}")
    return match.group(1) + match.group(2).upper()


def _split_mem(mem: str) -> tuple[Fraction, str]:
    match = _MEM_RE.match(mem)
    if match is None:  # only parse_resources builds Resources from files, but a hand-built one may be wrong
        raise ConfigError(f"mem must be {_MEM_FORM}, got {mem!r}")
    return Fraction(match.group(1)), match.group(2).upper()


def _time(value: Any, owner: str) -> str:
    if not isinstance(value, str):
        # YAML 1.1 reads an unquoted 2:00:00 as the number 7200 (base 60) and 1:30 as 90: taken as minutes that
        # would silently ask for 5 days, so a number is refused rather than guessed at
        raise ConfigError(f"{owner}: time must be a quoted string, {_TIME_FORM}, got the number {value!r} "
                          f'(YAML reads an unquoted 2:00:00 as 7200); write time: "2:00:00" or time: "90"')
    try:
        seconds = _time_seconds(value)
    except ConfigError:
        seconds = 0
    if seconds <= 0:
        raise ConfigError(f"{owner}: time must be {_TIME_FORM}, got {value!r}")
    return value


def _time_seconds(time: str) -> int:
    if _MINUTES_RE.match(time):
        return int(time) * 60
    match = _HMS_RE.match(time)
    if match:
        hours, minutes, seconds = (int(g) for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds
    match = _DHMS_RE.match(time)
    if match and int(match.group(2)) < 24:
        days, hours, minutes, seconds = (int(g) for g in match.groups())
        return days * 86400 + hours * 3600 + minutes * 60 + seconds
    raise ConfigError(f"time must be {_TIME_FORM}, got {time!r}")
