"""The card facts a dataset was prepared with, kept beside the prepared cache (``<root>/<dataset>/card.json``).

A user dataset takes its band centres and widths from the raw ENVI headers. Once prepared, training reads only
the cache, so the raw folder may be moved or deleted; these facts let the card be rebuilt without it, making a
prepared dataset depend on its prepared cache alone. ``hsbench prepare`` writes the file; registration reads it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from hsbench.data.card import DatasetCard
from hsbench.data.prepared import _layout as layout

__all__ = ["CARD_FACTS", "CardFacts", "write_card_facts", "read_card_facts"]

log = logging.getLogger(__name__)

CARD_FACTS = "card.json"


@dataclass(frozen=True)
class CardFacts:
    """What a card needs from the raw files: band centres and widths (nm), for one card version."""

    dataset: str
    card_version: str
    wavelengths_nm: tuple[float, ...]
    fwhm_nm: tuple[float, ...] | None


def write_card_facts(dataset_dir: Path, card: DatasetCard) -> None:
    """Record the card's raw-derived facts beside the prepared data (atomically; replaces older facts)."""
    facts = {
        "dataset": card.name,
        "card_version": card.version,
        "num_bands": card.num_bands,
        "wavelengths_nm": list(card.wavelengths_nm),
        "fwhm_nm": list(card.fwhm_nm) if card.fwhm_nm else None,
    }
    dataset_dir.mkdir(parents=True, exist_ok=True)
    layout._atomic_write_json(dataset_dir / CARD_FACTS, facts)


def read_card_facts(dataset_dir: Path, dataset: str, card_version: str) -> CardFacts | None:
    """The facts stored for this dataset and card version, or None (not prepared, another version, unreadable).

    An unreadable file is a warning, not an error: the caller falls back to the raw headers, and a new
    ``hsbench prepare`` rewrites it.
    """
    path = dataset_dir / CARD_FACTS
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        fwhm = data.get("fwhm_nm")
        facts = CardFacts(str(data["dataset"]), str(data["card_version"]),
                          tuple(float(w) for w in data["wavelengths_nm"]),
                          tuple(float(w) for w in fwhm) if fwhm else None)
        if int(data["num_bands"]) != len(facts.wavelengths_nm) or not facts.wavelengths_nm:
            raise ValueError(f"{data['num_bands']} bands but {len(facts.wavelengths_nm)} wavelengths")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s is unreadable (%s); reading the raw headers instead, and `hsbench prepare` rewrites it",
                    path, exc)
        return None
    if facts.dataset != dataset or facts.card_version != card_version:
        return None
    return facts
