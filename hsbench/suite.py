"""Benchmark suites: datasets x strategy variants x splits x seeds, read from a YAML file.

A suite is the unit a user publishes: one file says which cells make up the comparison, so a report can be
regenerated (or a crashed matrix resumed) from the file alone. Shipped suites live in ``hsbench/suites/`` and are
named by their file stem (``quick``); any other YAML file is named by its path. A suite file is flat::

    name: quick
    description: what the comparison is for
    seeds: [0, 1, 2]
    splits: [fraction=0.05, fraction=1.0]
    datasets:
      - synthetic_drive
      - {name: hcv2, splits: [official:hcv2_2024], options: {batch_size: 4}}   # per-dataset overrides
    strategies:
      - {strategy: in_domain, label: in_domain/runet, options: {model: runet, epochs: 10}}

Everything is validated when the suite is loaded (unknown strategy or dataset, unknown option, malformed split,
missing official split, duplicate label), so a typo fails before the first cell runs, never silently skips.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsbench.config_files import did_you_mean, parse_config_text, reject_unknown_keys
from hsbench.data.dataset_spec import dataset_provider
from hsbench.errors import ConfigError, UnknownNameError
from hsbench.names import check_name
from hsbench.options import config_hash
from hsbench.runner import RunSpec
from hsbench.splits import parse_split_spec
from hsbench.strategy import TRANSDUCTIVE_MARK, resolve_strategy, transductive_label

__all__ = ["Cell", "DatasetEntry", "Suite", "Variant", "load_suite", "shipped_suites"]

_SUITE_KEYS = {"name", "description", "seeds", "splits", "datasets", "strategies"}
_DATASET_KEYS = {"name", "splits", "options"}
_VARIANT_KEYS = {"strategy", "label", "options"}


@dataclass(frozen=True)
class Variant:
    """One strategy with fixed options, shown in tables under ``label``."""

    strategy: str
    label: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset of the suite; ``splits`` (when set) replace the suite's, ``options`` go to every variant."""

    name: str
    splits: tuple[str, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Cell:
    """One (dataset, variant, split, seed) of a suite: becomes exactly one run.

    Attributes:
        suite: the suite's name.
        position: order in the matrix (seed-major, so a partial matrix holds whole seeds).
        dataset, strategy, label, split, seed: what the run is; ``split`` is the canonical spec string.
        options: the options given to the strategy (dataset options overridden by variant options).
        cell_id: hash of the dataset, strategy, *resolved* options, split and seed: a changed default makes a new
            cell rather than reusing a stale result.
    """

    suite: str
    position: int
    dataset: str
    strategy: str
    label: str
    split: str
    seed: int
    options: dict[str, Any] = field(hash=False)
    cell_id: str

    def run_spec(self) -> RunSpec:
        return RunSpec(self.dataset, self.strategy, self.split, self.seed, dict(self.options))


@dataclass(frozen=True)
class Suite:
    """A parsed, validated suite."""

    name: str
    description: str
    datasets: tuple[DatasetEntry, ...]
    variants: tuple[Variant, ...]
    splits: tuple[str, ...]
    seeds: tuple[int, ...]
    source: str = ""

    @property
    def labels(self) -> list[str]:
        return [v.label for v in self.variants]

    def splits_of(self, entry: DatasetEntry) -> tuple[str, ...]:
        return entry.splits if entry.splits is not None else self.splits

    def cells(self) -> list[Cell]:
        """The whole matrix, seed-major: every seed-0 cell comes before any seed-1 cell."""
        return list(self._iter_cells())

    def _iter_cells(self) -> Iterator[Cell]:
        position = 0
        for seed in self.seeds:
            for entry in self.datasets:
                for split in self.splits_of(entry):
                    for variant in self.variants:
                        options = {**entry.options, **variant.options}
                        resolved = resolve_strategy(variant.strategy, options, entry.name)[1]
                        key = {"dataset": entry.name, "strategy": variant.strategy, "options": resolved,
                               "split": split, "seed": seed}
                        yield Cell(self.name, position, entry.name, variant.strategy, variant.label, split, seed,
                                   options, config_hash(key))
                        position += 1


def shipped_suites() -> list[str]:
    """Names of the suites shipped with hsbench."""
    folder = importlib.resources.files("hsbench") / "suites"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_suite(name_or_path: str | Path) -> Suite:
    """A shipped suite by name, or a user's suite file by path.

    Raises:
        UnknownNameError: neither a shipped suite nor an existing file.
        ConfigError: the file is malformed or names something that does not exist.
    """
    text, source = _read_suite_text(str(name_or_path))
    raw = parse_config_text(text, f"suite {source}")
    if not isinstance(raw, dict):
        raise ConfigError(f"suite {source} must be a mapping with keys {', '.join(sorted(_SUITE_KEYS))}")
    return parse_suite(raw, source=source)


def _read_suite_text(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.read_text(), str(path)
    shipped = shipped_suites()
    if name_or_path in shipped:
        resource = importlib.resources.files("hsbench") / "suites" / f"{name_or_path}.yaml"
        return resource.read_text(), f"hsbench/suites/{name_or_path}.yaml"
    raise UnknownNameError(
        f"unknown suite {name_or_path!r}{did_you_mean(name_or_path, shipped, cutoff=0.4)}: shipped suites are "
        f"{', '.join(shipped)}, or give a path to a YAML file"
    )


def parse_suite(raw: Mapping[str, Any], *, source: str = "<dict>") -> Suite:
    """Validate a suite mapping (as read from YAML) and build the :class:`Suite`."""
    reject_unknown_keys(raw, _SUITE_KEYS, f"suite {source}")
    for key in ("name", "datasets", "strategies", "seeds"):
        if not raw.get(key):
            raise ConfigError(f"suite {source} needs a non-empty {key!r}")
    splits = _parse_splits(raw.get("splits") or [], f"suite {source}")
    datasets = tuple(_parse_dataset(item, source) for item in _as_list(raw["datasets"], "datasets", source))
    for entry in datasets:
        if not (entry.splits if entry.splits is not None else splits):
            raise ConfigError(f"suite {source}: no splits for dataset {entry.name!r}; set 'splits'")
    variants = tuple(_parse_variant(item, source) for item in _as_list(raw["strategies"], "strategies", source))
    _check_unique([v.label for v in variants], "strategy label", source)
    _check_unique([d.name for d in datasets], "dataset", source)
    suite = Suite(
        name=check_name(raw["name"], f"suite {source}: suite name"),
        description=str(raw.get("description", "")).strip(),
        datasets=datasets,
        variants=variants,
        splits=splits,
        seeds=_parse_seeds(raw["seeds"], source),
        source=source,
    )
    _check_combinations(suite)
    return suite


def _as_list(value: Any, key: str, source: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"suite {source}: {key!r} must be a list")
    return value


def _check_unique(names: list[str], what: str, source: str) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"suite {source}: {what} {duplicates[0]!r} appears twice; give each variant its own label")


def _parse_seeds(value: Any, source: str) -> tuple[int, ...]:
    seeds = value if isinstance(value, list) else [value]
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"suite {source}: seeds must be integers, got {value!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"suite {source}: seeds {seeds} repeat a seed")
    return tuple(seeds)


def _parse_splits(value: Any, owner: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{owner}: splits must be a list of split specs such as fraction=0.1")
    canonical = [str(parse_split_spec(str(s))) for s in value]
    if len(set(canonical)) != len(canonical):
        raise ConfigError(f"{owner}: splits {value} name one split twice")
    return tuple(canonical)


def _parse_dataset(item: Any, source: str) -> DatasetEntry:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict) or "name" not in item:
        raise ConfigError(f"suite {source}: a dataset entry is a name or a mapping with 'name', got {item!r}")
    reject_unknown_keys(item, _DATASET_KEYS, f"suite {source} dataset {item.get('name')!r}")
    name = str(item["name"])
    dataset_provider(name)  # unknown names fail here, with the closest valid names (NAME[:key=value,...])
    splits = _parse_splits(item["splits"], f"suite {source} dataset {name!r}") if "splits" in item else None
    return DatasetEntry(name, splits, dict(item.get("options") or {}))


def _parse_variant(item: Any, source: str) -> Variant:
    if not isinstance(item, dict) or "strategy" not in item:
        raise ConfigError(f"suite {source}: a strategy entry is a mapping with 'strategy', got {item!r}")
    reject_unknown_keys(item, _VARIANT_KEYS, f"suite {source} strategy {item.get('strategy')!r}")
    strategy = str(item["strategy"])
    options = dict(item.get("options") or {})
    strategy_cls, resolved = resolve_strategy(strategy, options)
    label = str(item.get("label") or strategy_cls.label(resolved))
    if TRANSDUCTIVE_MARK not in label:  # a user's label must not hide that the run read val and test pixels
        label = transductive_label(label, resolved)
    return Variant(strategy, label, options)


def _check_combinations(suite: Suite) -> None:
    """Every dataset's options fit every strategy, and every official split exists on its dataset's card."""
    for entry in suite.datasets:
        card = dataset_provider(entry.name).card
        for split in suite.splits_of(entry):
            spec = parse_split_spec(split)
            if spec.kind == "official":
                card.official(spec.name)
        for variant in suite.variants:
            resolve_strategy(variant.strategy, {**entry.options, **variant.options}, entry.name)
