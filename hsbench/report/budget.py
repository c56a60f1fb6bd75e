"""The label budget of a split (the x axis of label-efficiency curves), one reader per split kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hsbench.errors import ConfigError
from hsbench.splits import SplitSpec, parse_split_spec

__all__ = ["LabelBudget", "label_budget", "BUDGET_READERS"]


@dataclass(frozen=True)
class LabelBudget:
    """How many labels a split gives: ``amount`` on an axis shared by every split of one ``family``."""

    family: str
    amount: float
    axis_label: str


BUDGET_READERS: dict[str, Callable[[SplitSpec], LabelBudget | None]] = {
    "fraction": lambda s: LabelBudget("fraction", float(s.fraction), "labelled fraction of the training images"),
    "kshot": lambda s: LabelBudget(
        "kshot,disjoint" if s.disjoint else "kshot", float(s.k), "labelled pixels per class"
        + (" (spatially disjoint test)" if s.disjoint else "")
    ),
    "official": lambda s: None,  # one point, no curve
}
"""Split kind -> its budget; a kind without a budget has no label-efficiency curve."""


def label_budget(split: str) -> LabelBudget | None:
    """The budget of a split spec string, or ``None`` when it has none (or cannot be read)."""
    try:
        spec = parse_split_spec(split)
    except ConfigError:
        return None
    return BUDGET_READERS[spec.kind](spec)
