"""Strategy options: defaults merged with user overrides, ``key=value`` parsing, canonical hashing."""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from hsbench.errors import ConfigError

__all__ = ["parse_key_values", "merge_options", "canonical_json", "config_hash"]


def parse_key_values(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are read as YAML scalars (``0.1`` -> float, ``true`` -> bool)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"option {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        parsed[key.strip()] = value
    return parsed


def merge_options(defaults: Mapping[str, Any], overrides: Mapping[str, Any], *, owner: str) -> dict[str, Any]:
    """Defaults with overrides applied; ``a.b=v`` sets key ``b`` of a dict-valued option ``a``.

    Unknown keys are an error naming the closest valid keys: a typo must never silently run the default.
    """
    merged = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        head, _, tail = key.partition(".")
        if head not in merged:
            close = difflib.get_close_matches(head, list(merged), n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{owner} has no option {head!r}{hint}; options are {', '.join(sorted(merged))}")
        if tail:
            if not isinstance(merged[head], dict):
                raise ConfigError(f"{owner} option {head!r} is not a mapping, so {key!r} cannot be set")
            merged[head] = {**merged[head], tail: value}
        else:
            merged[head] = value
    return merged


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the form that run ids hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(value: Any, length: int = 16) -> str:
    """Short SHA-256 of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]
