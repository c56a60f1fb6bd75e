"""The split spec: the short string a user types (``kshot=5,disjoint``) and its parsed, validated form."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hsbench.errors import ConfigError
from hsbench.splits._samplers import DEFAULT_SAMPLER, IMAGE_SAMPLERS

__all__ = ["SplitSpec", "parse_split_spec", "SPLIT_KINDS", "VAL_PROTOCOLS", "DEFAULT_MIN_TEST"]

SPLIT_KINDS = ("official", "fraction", "kshot")

VAL_PROTOCOLS = ("full", "matched")
"""``full``: the HS3-Bench protocol (every labelled val pixel of the split's val part); ``matched``: val is
subsampled like train (the same fraction, or the same k per class), so model selection sees no more labels than a
few-label user would have."""

DEFAULT_MIN_TEST = 10
"""Test pixels a class must keep to enter a ``kshot`` split (unless ``cap=half``): a class with fewer than
``k + min_test`` labelled pixels (in the training region of a disjoint split: fewer than ``k``, or fewer than
``min_test`` in the test region) is excluded, so it is neither trained on nor scored."""

_EXAMPLES = ("official, official:NAME, fraction=0.1, kshot=5, kshot=5,disjoint, with comma-separated options "
             "val=full|matched (fraction, kshot), guard=N (kshot=k,disjoint), min_test=N or cap=half (kshot), "
             "e.g. kshot=5,disjoint,guard=8,val=matched")


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
        guard: guard band of a disjoint split in pixels (``None``: the caller's default, the largest spatial
            context of the registered strategies).
        val: val protocol, one of :data:`VAL_PROTOCOLS`.
        min_test: test pixels a class needs to enter a ``kshot`` split (``None``: :data:`DEFAULT_MIN_TEST`).
        cap: ``half``: no class is excluded, but at most half of a class goes to train (``kshot`` only).
        sampler: how a ``fraction`` split picks its training images, a key of
            :data:`hsbench.splits._samplers.IMAGE_SAMPLERS` (``cross_domain_2026``: the 2026 study's draw).
    """

    kind: str
    name: str | None = None
    fraction: float | None = None
    k: int | None = None
    disjoint: bool = False
    guard: int | None = None
    val: str = "full"
    min_test: int | None = None
    cap: str | None = None
    sampler: str = DEFAULT_SAMPLER

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
            if not _whole(self.k, 1):
                raise ConfigError(f"kshot needs a whole number of pixels per class >= 1, got {self.k!r}")
        elif self.k is not None:
            raise ConfigError(f"k only goes with 'kshot' (got {self.kind} with k={self.k})")
        if self.disjoint and self.kind != "kshot":
            raise ConfigError(f"'disjoint' only applies to kshot splits, not {self.kind}")
        self._check_options()

    def _check_options(self) -> None:
        if self.guard is not None and (not self.disjoint or not _whole(self.guard, 0)):
            raise ConfigError(f"guard=N needs kshot=k,disjoint and a whole number >= 0, got guard={self.guard!r}")
        if self.val not in VAL_PROTOCOLS:
            raise ConfigError(f"val must be one of {', '.join(VAL_PROTOCOLS)}, got {self.val!r}")
        if self.val != "full" and self.kind == "official":
            raise ConfigError("val=matched goes with fraction or kshot splits; official splits keep their val list")
        if self.min_test is not None and (self.kind != "kshot" or not _whole(self.min_test, 1)):
            raise ConfigError(f"min_test=N needs a kshot split and a whole number >= 1, got {self.min_test!r}")
        if self.cap is not None and (self.cap != "half" or self.kind != "kshot"):
            raise ConfigError(f"cap only goes with kshot and takes the value 'half', got cap={self.cap!r}")
        if self.cap is not None and self.min_test is not None:
            raise ConfigError("give either cap=half (keep every class) or min_test=N (exclude small classes)")
        self._check_sampler()

    def _check_sampler(self) -> None:
        if self.sampler not in IMAGE_SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; samplers are {', '.join(IMAGE_SAMPLERS)}")
        if self.sampler == DEFAULT_SAMPLER:
            return
        if self.kind != "fraction":
            raise ConfigError(f"sampler={self.sampler} only goes with fraction=p splits, not {self.kind}")
        if self.val != "full" and not IMAGE_SAMPLERS[self.sampler].matched_val:
            raise ConfigError(f"sampler={self.sampler} keeps the full val list, as its study does; drop val={self.val}")

    @property
    def test_minimum(self) -> int:
        """Test pixels a class keeps in a ``kshot`` split without ``cap`` (0 with ``cap=half``)."""
        if self.cap is not None:
            return 0
        return DEFAULT_MIN_TEST if self.min_test is None else self.min_test

    def __str__(self) -> str:
        """The canonical form: ``parse_split_spec(str(spec)) == spec`` and equal specs print alike.

        Options at their defaults are left out, so specs written before they existed keep their text.
        """
        if self.kind == "official":
            return "official" if self.name is None else f"official:{self.name}"
        if self.kind == "fraction":
            head = f"fraction={float(self.fraction)!r}"  # repr round-trips a float exactly
        else:
            head = f"kshot={self.k}" + (",disjoint" if self.disjoint else "")
        options = [("guard", self.guard), ("val", None if self.val == "full" else self.val),
                   ("min_test", self.min_test), ("cap", self.cap),
                   ("sampler", None if self.sampler == DEFAULT_SAMPLER else self.sampler)]
        return head + "".join(f",{key}={value}" for key, value in options if value is not None)


def _whole(value: object, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


_OPTION_KEYS = ("guard", "val", "min_test", "cap", "sampler")


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
    values: dict[str, str] = {}
    for option in options:
        key, sep, value = (s.strip() for s in option.partition("="))
        key = key.lower()
        if key == "disjoint" and not sep:
            if disjoint:
                raise ConfigError(f"'disjoint' given twice in {text!r}")
            disjoint = True
        elif sep and key in _OPTION_KEYS:
            if key in values:
                raise ConfigError(f"'{key}' given twice in {text!r}")
            values[key] = value.lower()
        else:
            raise ConfigError(f"unknown split option {option!r} in {text!r}; options are 'disjoint', "
                              + ", ".join(f"'{k}=...'" for k in _OPTION_KEYS))
    extra = {
        "guard": _parse_count(values["guard"], text, "guard") if "guard" in values else None,
        "val": values.get("val", "full"),
        "min_test": _parse_count(values["min_test"], text, "min_test") if "min_test" in values else None,
        "cap": values.get("cap"),
        "sampler": values.get("sampler", DEFAULT_SAMPLER),
    }
    if head.lower().startswith("official"):
        rest = head[len("official") :].strip()
        if rest and not rest.startswith(":"):
            raise ConfigError(f"cannot read split spec {text!r}; write one of {_EXAMPLES}")
        name = rest[1:].strip() if rest else None
        return SplitSpec("official", name=name, disjoint=disjoint, **extra)
    key, sep, value = head.partition("=")
    key, value = key.strip().lower(), value.strip()
    if not sep or key not in ("fraction", "kshot"):
        raise ConfigError(f"cannot read split spec {text!r}; write one of {_EXAMPLES}")
    if key == "fraction":
        return SplitSpec("fraction", fraction=_parse_number(value, text), disjoint=disjoint, **extra)
    return SplitSpec("kshot", k=_parse_count(value, text, "k"), disjoint=disjoint, **extra)


def _parse_number(value: str, text: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"fraction in {text!r} is not a number; write e.g. fraction=0.1") from None


def _parse_count(value: str, text: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{what} in {text!r} is not a whole number; write e.g. kshot=5,guard=16") from None
