"""The split spec: the short string a user types (``kshot=5,disjoint``) and its parsed, validated form."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hsbench.errors import ConfigError

__all__ = ["SplitSpec", "parse_split_spec", "SPLIT_KINDS"]

SPLIT_KINDS = ("official", "fraction", "kshot")

_EXAMPLES = "official, official:NAME, fraction=0.1, kshot=5 or kshot=5,disjoint"


@dataclass(frozen=True)
class SplitSpec:
    """A parsed split spec.

    Validation lives here rather than in the parser so that a spec built in code is held to the same rules as
    one typed on the command line.

    Attributes:
        kind: ``official``, ``fraction`` or ``kshot``.
        name: official split name (``official:NAME``); ``None`` means the card's default split.
        fraction: share of the training pool, in ``(0, 1]`` (``fraction`` only).
        k: labelled pixels per class for training (``kshot`` only).
        disjoint: separate train and test spatially by blocks (``kshot`` only).
    """

    kind: str
    name: str | None = None
    fraction: float | None = None
    k: int | None = None
    disjoint: bool = False

    def __post_init__(self) -> None:
        if self.kind not in SPLIT_KINDS:
            raise ConfigError(f"unknown split kind {self.kind!r}; write one of {_EXAMPLES}")
        if self.kind != "official" and self.name is not None:
            raise ConfigError(f"a split name only goes with 'official' (got {self.kind} with name {self.name!r})")
        if self.kind == "official" and self.name is not None and not self.name:
            raise ConfigError("'official:' needs a split name after the colon, or write plain 'official'")
        if self.kind == "fraction":
            p = self.fraction
            if p is None or isinstance(p, bool) or not math.isfinite(p) or not 0.0 < p <= 1.0:
                raise ConfigError(f"fraction must be a number in (0, 1], got {p!r} (write e.g. fraction=0.1)")
        elif self.fraction is not None:
            raise ConfigError(f"a fraction only goes with 'fraction' (got {self.kind} with fraction {self.fraction})")
        if self.kind == "kshot":
            if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1:
                raise ConfigError(f"kshot needs a whole number of pixels per class >= 1, got {self.k!r}")
        elif self.k is not None:
            raise ConfigError(f"k only goes with 'kshot' (got {self.kind} with k={self.k})")
        if self.disjoint and self.kind != "kshot":
            raise ConfigError(f"'disjoint' only applies to kshot splits, not {self.kind}")

    def __str__(self) -> str:
        """The canonical form: ``parse_split_spec(str(spec)) == spec`` and equal specs print alike."""
        if self.kind == "official":
            return "official" if self.name is None else f"official:{self.name}"
        if self.kind == "fraction":
            return f"fraction={float(self.fraction)!r}"  # repr round-trips a float exactly
        return f"kshot={self.k}" + (",disjoint" if self.disjoint else "")


def parse_split_spec(text: str) -> SplitSpec:
    """Parse a user's split string.

    Keywords are case-insensitive and spaces around ``=``, ``:`` and ``,`` are ignored; official split names
    keep their case because they are looked up verbatim on the dataset card.

    Raises:
        ConfigError: the text is not one of the accepted forms, or a value is out of range.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"empty split spec; write one of {_EXAMPLES}")
    head, *options = (part.strip() for part in text.strip().split(","))
    disjoint = False
    for option in options:
        if option.lower() != "disjoint":
            raise ConfigError(f"unknown split option {option!r} in {text!r}; the only option is 'disjoint'")
        if disjoint:
            raise ConfigError(f"'disjoint' given twice in {text!r}")
        disjoint = True
    if head.lower().startswith("official"):
        rest = head[len("official") :].strip()
        if rest and not rest.startswith(":"):
            raise ConfigError(f"cannot read split spec {text!r}; write one of {_EXAMPLES}")
        name = rest[1:].strip() if rest else None
        return SplitSpec("official", name=name, disjoint=disjoint)
    key, sep, value = head.partition("=")
    key, value = key.strip().lower(), value.strip()
    if not sep or key not in ("fraction", "kshot"):
        raise ConfigError(f"cannot read split spec {text!r}; write one of {_EXAMPLES}")
    if key == "fraction":
        return SplitSpec("fraction", fraction=_parse_number(value, text), disjoint=disjoint)
    return SplitSpec("kshot", k=_parse_count(value, text), disjoint=disjoint)


def _parse_number(value: str, text: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"fraction in {text!r} is not a number; write e.g. fraction=0.1") from None


def _parse_count(value: str, text: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"k in {text!r} is not a whole number; write e.g. kshot=5") from None
