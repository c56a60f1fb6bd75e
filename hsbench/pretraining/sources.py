"""Pretraining sources: one registered dataset, or a list of them whose unlabelled pixels are pooled.

The ``source`` option of the pretraining strategies (``s2former``, ``cross_domain``) is a registered dataset name
(``synthetic_aerial``, a prepared scene such as ``samson``) or a list of names (YAML ``[samson, jasper_ridge]``,
on the command line ``--cfg-options source=[samson,jasper_ridge]``, the spelling of every list option). Every
source is opened as a whole :class:`~hsbench.data.dataset.Dataset`: all its pixels, never its labels. Sensors are
bridged through wavelengths: each source keeps its own band centres (the spectral FM's positional encoding, the
S2Former grid resampling and per-source standardisation), so scenes of different cameras pool.

Compatibility: a single source (a string, or a one-element list, which is the same thing) gives the recipe,
fingerprint and zoo key it always had. ``source_options`` are the dataset's options for a single source; with a
list they map a source name to that source's options (``{synthetic_aerial: {num_images: 4}}``), and any other key
is refused. A list's fingerprint hashes its sources' fingerprints in order, so the order is part of the zoo key.

A source that is the run's target dataset would hand its val and test pixels to pretraining; the strategies refuse
it (:func:`refuse_target_source`) unless the run is transductive (which reads whole target scenes anyway).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsbench.config_files import did_you_mean
from hsbench.data.dataset import Dataset
from hsbench.errors import ConfigError, UnknownNameError
from hsbench.registry import DATASETS, lookup, names

__all__ = ["Source", "source_names", "recipe_source", "recipe_source_options", "source_option_map", "open_sources",
           "sources_fingerprint", "refuse_target_source"]


@dataclass(frozen=True)
class Source:
    """One opened source dataset (used without labels)."""

    name: str
    dataset: Dataset


def source_names(source: Any, *, option: str = "source") -> tuple[str, ...]:
    """The source names of a ``source`` option value: a name or a non-empty list of distinct names.

    Raises:
        ConfigError: not a string or a list of strings, an empty list, a name given twice, or a comma-separated
            string (lists are written ``[a,b]``).
    """
    if isinstance(source, str):
        text = source.strip()
        if "," in text:
            items = ",".join(part.strip() for part in text.strip("[]").split(","))
            raise ConfigError(f"{option}={source!r}: a list of sources is written as a list, e.g. "
                              f"--cfg-options {option}=[{items}] (YAML: {option}: [{items.replace(',', ', ')}])")
        if not text:
            raise ConfigError(f"{option} is empty: give a registered dataset name or a list of them")
        return (text,)
    if isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)):
        items = tuple(source)
        if not items:
            raise ConfigError(f"{option}=[] names no source: give a registered dataset name or a list of them")
        if not all(isinstance(item, str) and item.strip() for item in items):
            raise ConfigError(f"{option}={list(items)!r}: every source must be a dataset name")
        stripped = tuple(item.strip() for item in items)
        repeated = sorted({item for item in stripped if stripped.count(item) > 1})
        if repeated:
            raise ConfigError(f"{option} lists {', '.join(repeated)} more than once; each source is pooled once")
        return stripped
    raise ConfigError(f"{option}={source!r}: give a registered dataset name or a list of them")


def recipe_source(source: Any) -> str | list[str]:
    """The recipe's ``source`` field: the plain name for one source (a one-element list included, so that it
    reuses the single source's zoo artifact), else the list in its order."""
    items = source_names(source)
    return items[0] if len(items) == 1 else list(items)


def source_option_map(source: Any, source_options: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Options of each source's ``open``: ``source_options`` itself for one source; for a list, ``source_options``
    maps source names to options (sources not named open with none).

    Raises:
        ConfigError: with a list, a key of ``source_options`` that is not one of the sources, or a value that is
            not a mapping.
    """
    items = source_names(source)
    options = dict(source_options or {})
    if len(items) == 1:
        return {items[0]: options}
    unknown = sorted(set(options) - set(items))
    if unknown:
        raise ConfigError(
            f"with several sources ({', '.join(items)}), source_options maps a source name to that source's options, "
            f"e.g. {{{items[0]}: {{...}}}}; {', '.join(unknown)} is not one of the sources")
    bad = sorted(name for name, value in options.items() if not isinstance(value, Mapping))
    if bad:
        raise ConfigError(f"source_options of {', '.join(bad)} must be a mapping of that dataset's options")
    return {name: dict(options.get(name) or {}) for name in items}


def recipe_source_options(source: Any, source_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The recipe's ``source_options`` field: as given (checked against the sources by :func:`source_option_map`);
    for a list, the name -> options map of the sources that were given options."""
    source_option_map(source, source_options)
    return {name: dict(value) if isinstance(value, Mapping) else value
            for name, value in dict(source_options or {}).items()}


def open_sources(source: Any, source_options: Mapping[str, Any] | None, *, data_root: Path | None = None,
                 extra_valid: Sequence[str] = ()) -> list[Source]:
    """Open every source with its options; a real dataset that is not prepared under ``data_root`` raises its
    usual "prepare it first" :class:`~hsbench.errors.DataError`.

    Raises:
        UnknownNameError: a name that is not a registered dataset (``extra_valid`` names what else the caller
            accepts, for the message).
    """
    per_source = source_option_map(source, source_options)
    registered = names(DATASETS)
    for name in per_source:
        if name not in registered:
            valid = [*registered, *extra_valid]
            raise UnknownNameError(f"unknown pretraining source {name!r}{did_you_mean(name, valid)}: a registered "
                                   f"dataset{' or a spectral library' if extra_valid else ''}; valid: "
                                   f"{', '.join(valid)}")
    return [Source(name, lookup(DATASETS, name).open(data_root=data_root, **options))
            for name, options in per_source.items()]


def sources_fingerprint(sources: Sequence[Source]) -> str:
    """The zoo's source fingerprint: a single source's own, else SHA-256 of the fingerprints in order."""
    if len(sources) == 1:
        return sources[0].dataset.fingerprint
    h = hashlib.sha256()
    for source in sources:
        h.update(f"{source.dataset.fingerprint}\n".encode())
    return h.hexdigest()


def refuse_target_source(source: Any, target: str, *, strategy: str, transductive_option: bool) -> None:
    """Refuse a source that is the target dataset: pretraining on it would read its val and test pixels.

    Args:
        source: the ``source`` option.
        target: the target dataset's card name.
        strategy: the strategy's name, for the message.
        transductive_option: whether the strategy has ``transductive=true`` to offer (said in the message).

    Raises:
        ConfigError: ``target`` is one of the sources.
    """
    if target not in source_names(source):
        return
    remedy = ("set transductive=true (the run then reads whole target scenes and is marked †) or pretrain on "
              "another scene" if transductive_option else "pretrain on another scene")
    raise ConfigError(f"{strategy}: source {target!r} is the target dataset: pretraining would read its val and test "
                      f"pixels; {remedy}")
