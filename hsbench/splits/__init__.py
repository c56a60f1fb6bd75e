"""Train / val / test splits: official lists, nested image fractions and pixel-level k-shot draws.

A split is a per-image pixel mask for each part (``None`` = every labelled pixel of the image), saved as JSON
plus arrays with a content hash that every run records. See ``DESIGN.md`` (Splits) for the kinds.
"""

from hsbench.splits._make import SCENE_VAL_FRACTION, make_split
from hsbench.splits._spec import DEFAULT_MIN_TEST, SPLIT_KINDS, VAL_PROTOCOLS, SplitSpec, parse_split_spec
from hsbench.splits._split import PARTS, Split

__all__ = [
    "DEFAULT_MIN_TEST",
    "PARTS",
    "SCENE_VAL_FRACTION",
    "SPLIT_KINDS",
    "VAL_PROTOCOLS",
    "Split",
    "SplitSpec",
    "make_split",
    "parse_split_spec",
]
