"""Files a user hands in are data: one reader for every config file, and one did-you-mean for unknown keys.

YAML goes through ``yaml.safe_load`` (no ``!!python/...`` tags, so no object is ever constructed from a file) and
JSON through ``json``. A Python config file runs code when it is read, so it is refused unless the user says, with
an explicit flag, that they trust it; only then does mmengine's ``Config.fromfile`` see it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from hsbench.errors import ConfigError

__all__ = ["read_config_file", "parse_config_text", "did_you_mean", "reject_unknown_keys", "DATA_SUFFIXES"]

DATA_SUFFIXES = (".yaml", ".yml", ".json")


def parse_config_text(text: str, source: str) -> Any:
    """Parse YAML (JSON is a subset) safely; a malformed file is one :class:`ConfigError` naming ``source``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{source} is not valid YAML/JSON ({detail}); tags such as !!python/... are never "
                          "run, fix or remove them") from None


def read_config_file(path: Path, *, what: str = "config file", trust_code: bool = False,
                     trust_flag: str = "--trust-config") -> dict[str, Any]:
    """Read a YAML or JSON mapping from ``path`` without running anything in it.

    Args:
        path: the file.
        what: what the file is, for messages ("run config", "suite", ...).
        trust_code: allow a Python config file (it runs when read); only set from an explicit user flag.
        trust_flag: the flag that sets ``trust_code``, named in the refusal.

    Raises:
        ConfigError: missing or unreadable file, malformed content, not a mapping, or Python without trust.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".py":
        if not trust_code:
            raise ConfigError(f"{what} {path} is a Python file, and reading it would run its code; use YAML or JSON, "
                              f"or pass {trust_flag} if you wrote this file yourself and trust it")
        return _read_trusted_python(path, what)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{what} {path} is not valid JSON: {exc}") from None
    else:
        data = parse_config_text(text, f"{what} {path}")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be a mapping of keys to values, got {type(data).__name__}")
    return data


def _read_trusted_python(path: Path, what: str) -> dict[str, Any]:
    from mmengine.config import Config

    try:
        return Config.fromfile(str(path)).to_dict()
    except Exception as exc:  # mmengine raises many types for malformed files
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None


def did_you_mean(name: str, valid: Iterable[str], cutoff: float = 0.5) -> str:
    """``" (did you mean 'x'?)"`` for the closest valid names, or ``""``."""
    close = difflib.get_close_matches(str(name), sorted(str(v) for v in valid), n=3, cutoff=cutoff)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def require_choice(option: str, value: Any, valid: Iterable[str]) -> str:
    """``value`` if it names one of ``valid``, else a one-line ConfigError with the closest names."""
    valid = sorted(str(v) for v in valid)
    if value not in valid:
        raise ConfigError(f"unknown {option} {value!r}{did_you_mean(str(value), valid)}; valid: {', '.join(valid)}")
    return str(value)


def reject_unknown_keys(raw: Mapping[Any, Any], allowed: Iterable[str], owner: str) -> None:
    """One error naming the first unknown key, its closest valid keys and all allowed keys."""
    allowed = sorted(allowed)
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise ConfigError(f"{owner} has unknown key {unknown[0]!r}{did_you_mean(unknown[0], allowed)}; "
                          f"allowed: {', '.join(allowed)}")
