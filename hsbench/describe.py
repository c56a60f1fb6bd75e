"""Human-readable descriptions of registered entries (``hsbench show``)."""

from __future__ import annotations

import inspect
import json
import textwrap
from collections.abc import Callable

from hsbench.data.card import DatasetCard
from hsbench.registry import DATASETS, MODELS, STRATEGIES, lookup

__all__ = ["describe_card", "DESCRIBERS"]


def _wrap(label: str, text: str) -> str:
    return textwrap.fill(text, width=100, initial_indent=f"{label:<16}", subsequent_indent=" " * 16) if text else ""


def describe_card(card: DatasetCard) -> str:
    """The dataset card as text: bands with wavelengths, classes, ignore index, sizes, citation, how to obtain."""
    lines = [f"{card.name}  ({card.task}, card version {card.version})", ""]
    lines += [_wrap("description", card.description), _wrap("sizes", card.sizes)]
    lines.append(f"{'bands':<16}{card.num_bands} (cube order; nm" + (", FWHM nm" if card.fwhm_nm else "") + ")")
    for i, wl in enumerate(card.wavelengths_nm):
        fwhm = f"  FWHM {card.fwhm_nm[i]:.1f}" if card.fwhm_nm else ""
        lines.append(f"{'':<16}{i:>3}: {wl:8.2f}{fwhm}")
    lines.append(f"{'pseudo-RGB':<16}bands {list(card.pseudo_rgb_bands)}")
    lines.append(f"{'classes':<16}{card.num_classes}")
    for k, (name, rgb) in enumerate(zip(card.class_names, card.palette)):
        lines.append(f"{'':<16}{k:>3}: {name:<28} RGB {rgb}")
    lines.append(f"{'ignore index':<16}{card.ignore_index} (undefined / unlabelled pixels)")
    if card.raw_label_map:
        lines.append(_wrap("raw label map", ", ".join(f"{r}->{h}" for r, h in sorted(card.raw_label_map.items()))))
    for name, official in card.official_splits.items():
        lines.append(f"{'split ' + name:<16}{len(official.train)} train / {len(official.val)} val / "
                     f"{len(official.test)} test images")
    lines += [_wrap("citation", card.citation), _wrap("licence", card.licence)]
    lines.append(_wrap("how to obtain", card.how_to_obtain))
    return "\n".join([lines[0], "", *(line for line in lines[2:] if line)])


def _describe_dataset(name: str) -> str:
    return describe_card(lookup(DATASETS, name).card)


def _describe_strategy(name: str) -> str:
    cls = lookup(STRATEGIES, name)
    return "\n".join(
        [f"{name}: {cls.spec.description}", "", "options (defaults; set with --cfg-options key=value):",
         textwrap.indent(json.dumps(cls.defaults, indent=2), "  ")]
    )


def _describe_model(name: str) -> str:
    cls = lookup(MODELS, name)
    signature = inspect.signature(cls)
    doc = inspect.getdoc(cls) or ""
    return f"{name}{signature}\n\n{doc}"


DESCRIBERS: dict[str, Callable[[str], str]] = {
    "dataset": _describe_dataset,
    "strategy": _describe_strategy,
    "model": _describe_model,
}
