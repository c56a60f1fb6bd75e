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
      - {strategy: cross_modality, label: DL3+ (PT), datasets: [hcv2], options: {mode: pt, weights: "@cityscapes"}}
    weights:   # files a published row needs; `hsbench benchmark --weights-dir DIR` checks them before any cell
      cityscapes: {file: deeplabv3plus_mobilenet_cityscapes_os16.pth, source: "VainF/DeepLabV3Plus-Pytorch ..."}
    resources: {cpus: 4, gpus: 1, mem: 16G, time: "2:00:00"}   # per cell, for --executor slurm|ray only

A variant's ``datasets`` and a dataset's ``strategies`` (variant labels) restrict which pairs make cells, for rows
a published table has on some datasets only. An option value ``"@name"`` names an entry of ``weights``: it becomes
``<weights-dir>/<file>`` when the suite runs (and the entry's ``sha256``, when given, the ``weights_sha256``
option), while cell ids hash the reference, so where the files live does not change which cells are finished.
``resources`` (suite-wide, or on a dataset entry, which wins key by key) is what each cell's job asks of a cluster
(:mod:`hsbench.executors.resources`); the local executor ignores it and cell ids never include it, so moving a
suite to a cluster, or giving a cell more memory, does not make finished cells unfinished.

Everything is validated when the suite is loaded (unknown strategy or dataset, unknown option, malformed split,
missing official split, duplicate label, undeclared weights), so a typo fails before the first cell runs, never
silently skips.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hsbench.config_files import did_you_mean, parse_config_text, reject_unknown_keys
from hsbench.data.dataset_spec import dataset_provider
from hsbench.errors import ConfigError, UnknownNameError
from hsbench.executors.resources import Resources, parse_resources
from hsbench.names import check_name
from hsbench.options import config_hash
from hsbench.runner import RunSpec
from hsbench.splits import parse_split_spec
from hsbench.strategy import TRANSDUCTIVE_MARK, resolve_strategy, transductive_label

__all__ = ["Cell", "DatasetEntry", "Suite", "Variant", "WeightsFile", "load_suite", "shipped_suites"]

_SUITE_KEYS = {"name", "description", "seeds", "splits", "datasets", "strategies", "weights", "resources"}
_DATASET_KEYS = {"name", "splits", "options", "strategies", "resources"}
_VARIANT_KEYS = {"strategy", "label", "options", "datasets"}
_WEIGHTS_KEYS = {"file", "source", "sha256"}
WEIGHTS_REFERENCE = "@"
"""Prefix of an option value that names an entry of the suite's ``weights``."""


@dataclass(frozen=True)
class Variant:
    """One strategy with fixed options, shown in tables under ``label``; ``datasets`` (when set) limits it."""

    strategy: str
    label: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    datasets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset of the suite; ``splits`` (when set) replace the suite's, ``options`` go to every variant,
    ``strategies`` (variant labels, when set) limit which variants run on it, ``resources`` (the keys it sets)
    replace the suite's for its cells on a cluster."""

    name: str
    splits: tuple[str, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    strategies: tuple[str, ...] | None = None
    resources: Resources = Resources()


@dataclass(frozen=True)
class WeightsFile:
    """A weights file some rows need: where it lies below ``--weights-dir`` and where to get it."""

    name: str
    file: str
    source: str
    sha256: str | None = None

    def path(self, weights_dir: Path) -> Path:
        """The file below ``weights_dir`` (``file`` is relative and has no ``..``: checked on load; a symlink
        placed there by the user is followed, since the file is only read)."""
        return Path(weights_dir).expanduser() / self.file


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
    weights: tuple[WeightsFile, ...] = ()
    resources: Resources = Resources()

    @property
    def labels(self) -> list[str]:
        return [v.label for v in self.variants]

    def splits_of(self, entry: DatasetEntry) -> tuple[str, ...]:
        return entry.splits if entry.splits is not None else self.splits

    def variants_of(self, entry: DatasetEntry) -> tuple[Variant, ...]:
        """The variants that run on ``entry`` (both the variant's ``datasets`` and the entry's ``strategies``)."""
        return tuple(
            v for v in self.variants
            if (v.datasets is None or entry.name in v.datasets)
            and (entry.strategies is None or v.label in entry.strategies)
        )

    def resources_of(self, cell: Cell) -> Resources:
        """What ``cell``'s cluster job asks for: the suite's resources, with its dataset entry's keys winning.

        Raises:
            ValueError: ``cell`` is not a cell of this suite (its dataset is not one of the suite's).
        """
        for entry in self.datasets:
            if entry.name == cell.dataset:
                return self.resources.merged(entry.resources)
        raise ValueError(f"cell {cell.cell_id} (dataset {cell.dataset!r}) is not a cell of suite {self.name}")

    def only_datasets(self, names: Sequence[str]) -> Suite:
        """The suite restricted to the dataset entries ``names`` (``hsbench benchmark --datasets``), e.g. the scenes a
        user has prepared; cell ids are unchanged, so cells finished by the whole suite count as finished here.

        Raises:
            ConfigError: a name is not one of the suite's datasets.
        """
        known = [entry.name for entry in self.datasets]
        for name in names:
            if name not in known:
                raise ConfigError(f"suite {self.name} has no dataset {name!r}{did_you_mean(name, known)}; its "
                                  f"datasets are {', '.join(known)}")
        return replace(self, datasets=tuple(entry for entry in self.datasets if entry.name in names))

    def rows(self) -> list[tuple[DatasetEntry, Variant]]:
        """The (dataset, variant) pairs of the matrix: the rows of the published tables, in suite order."""
        return [(entry, variant) for entry in self.datasets for variant in self.variants_of(entry)]

    def weights_used(self) -> list[tuple[WeightsFile, list[str]]]:
        """Each declared weights file some row references, with the labels of the variants that use it."""
        users: dict[str, list[str]] = {}
        for entry, variant in self.rows():
            for name in _references({**entry.options, **variant.options}).values():
                if variant.label not in users.setdefault(name, []):
                    users[name].append(variant.label)
        return [(w, users[w.name]) for w in self.weights if w.name in users]

    def missing_weights(self, weights_dir: Path) -> list[str]:
        """One line per needed file that ``weights_dir`` lacks: the path, who needs it, where to get it."""
        return [
            f"{w.path(weights_dir)} (for {', '.join(labels)}): {w.source}"
            for w, labels in self.weights_used() if not w.path(weights_dir).is_file()
        ]

    def check_weights(self, weights_dir: Path | None) -> None:
        """Fail, listing every missing file with where to get it, unless every needed weights file is present.

        Raises:
            ConfigError: files are needed and ``weights_dir`` is not given, or lacks some of them.
        """
        used = self.weights_used()
        if not used:
            return
        if weights_dir is None:
            listing = "\n  ".join(f"{w.file} (for {', '.join(labels)}): {w.source}" for w, labels in used)
            raise ConfigError(f"suite {self.name} needs {len(used)} weights file(s); pass --weights-dir DIR with:"
                              f"\n  {listing}")
        missing = self.missing_weights(weights_dir)
        if missing:
            raise ConfigError(f"suite {self.name}: {len(missing)} of {len(used)} weights file(s) missing from "
                              f"{weights_dir}:\n  " + "\n  ".join(missing))

    def cells(self, weights_dir: Path | None = None) -> list[Cell]:
        """The whole matrix, seed-major: every seed-0 cell comes before any seed-1 cell.

        With ``weights_dir``, ``"@name"`` option values become file paths (what the runs need); without it they
        stay references (enough to list, count and report cells: the ids are the same either way).
        """
        return list(self._iter_cells(weights_dir))

    def _iter_cells(self, weights_dir: Path | None) -> Iterator[Cell]:
        position = 0
        for seed in self.seeds:
            for entry in self.datasets:
                for split in self.splits_of(entry):
                    for variant in self.variants_of(entry):
                        options = {**entry.options, **variant.options}
                        resolved = resolve_strategy(variant.strategy, options, entry.name)[1]
                        key = {"dataset": entry.name, "strategy": variant.strategy, "options": resolved,
                               "split": split, "seed": seed}
                        if weights_dir is not None:
                            options = self._with_weight_paths(options, weights_dir)
                        yield Cell(self.name, position, entry.name, variant.strategy, variant.label, split, seed,
                                   options, config_hash(key))
                        position += 1

    def _with_weight_paths(self, options: dict[str, Any], weights_dir: Path) -> dict[str, Any]:
        declared = {w.name: w for w in self.weights}
        out = dict(options)
        for key, name in _references(options).items():
            out[key] = str(declared[name].path(weights_dir).absolute())
            if key == "weights" and declared[name].sha256:
                out["weights_sha256"] = declared[name].sha256
        return out


def _references(options: Mapping[str, Any]) -> dict[str, str]:
    """Option key -> weights entry name, for the option values ``"@name"``."""
    return {
        key: value[len(WEIGHTS_REFERENCE):] for key, value in options.items()
        if isinstance(value, str) and value.startswith(WEIGHTS_REFERENCE)
    }


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
        weights=_parse_weights(raw.get("weights") or {}, source),
        resources=parse_resources(raw.get("resources"), f"suite {source} resources"),
    )
    _check_restrictions(suite)
    _check_references(suite)
    _check_combinations(suite)
    return suite


def _parse_weights(value: Any, source: str) -> tuple[WeightsFile, ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"suite {source}: 'weights' must map names to {{file: ..., source: ...}}")
    entries = []
    for name, item in value.items():
        owner = f"suite {source} weights {name!r}"
        if not isinstance(item, dict) or not item.get("file") or not item.get("source"):
            raise ConfigError(f"{owner}: give 'file' (a path below --weights-dir) and 'source' (where to get it)")
        reject_unknown_keys(item, _WEIGHTS_KEYS, owner)
        file = str(item["file"])
        if Path(file).is_absolute() or ".." in Path(file).parts:
            raise ConfigError(f"{owner}: file {file!r} must be a relative path below --weights-dir, without '..'")
        sha256 = item.get("sha256")
        if sha256 is not None and (len(str(sha256)) != 64 or any(c not in "0123456789abcdef" for c in str(sha256))):
            raise ConfigError(f"{owner}: sha256 must be 64 lower-case hex digits, got {sha256!r}")
        entries.append(WeightsFile(check_name(str(name), owner), file, str(item["source"]).strip(),
                                   None if sha256 is None else str(sha256)))
    return tuple(entries)


def _check_restrictions(suite: Suite) -> None:
    """Restrictions name existing datasets and labels, and every variant and dataset keeps at least one row."""
    names, labels = {d.name for d in suite.datasets}, set(suite.labels)
    for variant in suite.variants:
        for name in variant.datasets or ():
            if name not in names:
                raise ConfigError(f"suite {suite.source}: variant {variant.label!r} lists dataset {name!r}, which "
                                  f"is not in the suite{did_you_mean(name, names)}")
    for entry in suite.datasets:
        for label in entry.strategies or ():
            if label not in labels:
                raise ConfigError(f"suite {suite.source}: dataset {entry.name!r} lists strategy label {label!r}, "
                                  f"which no variant has{did_you_mean(label, labels)}")
        if not suite.variants_of(entry):
            raise ConfigError(f"suite {suite.source}: no variant runs on dataset {entry.name!r}")
    used = {variant.label for _, variant in suite.rows()}
    for variant in suite.variants:
        if variant.label not in used:
            raise ConfigError(f"suite {suite.source}: variant {variant.label!r} runs on no dataset")


def _check_references(suite: Suite) -> None:
    """Every ``"@name"`` option value names a declared weights file."""
    declared = {w.name for w in suite.weights}
    for entry, variant in suite.rows():
        for key, name in _references({**entry.options, **variant.options}).items():
            if name not in declared:
                raise ConfigError(f"suite {suite.source}: {variant.label!r} option {key}={WEIGHTS_REFERENCE}{name} "
                                  f"names no entry of 'weights'{did_you_mean(name, declared)}")


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
    strategies = _name_list(item["strategies"], f"suite {source} dataset {name!r} strategies") \
        if "strategies" in item else None
    resources = parse_resources(item.get("resources"), f"suite {source} dataset {name!r} resources")
    return DatasetEntry(name, splits, dict(item.get("options") or {}), strategies, resources)


def _name_list(value: Any, owner: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{owner}: a non-empty list of names, got {value!r}")
    return tuple(value)


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
    datasets = _name_list(item["datasets"], f"suite {source} strategy {label!r} datasets") \
        if "datasets" in item else None
    return Variant(strategy, label, options, datasets)


def _check_combinations(suite: Suite) -> None:
    """Every dataset's options fit its strategies, and every official split exists on its dataset's card (a
    folder split, known only once the data is opened, is checked when the cell runs)."""
    for entry in suite.datasets:
        card = dataset_provider(entry.name).card
        for split in suite.splits_of(entry):
            spec = parse_split_spec(split)
            if spec.kind == "official" and not (card.folder_split and spec.name in (None, "official")):
                card.official(spec.name)
        for variant in suite.variants_of(entry):
            resolve_strategy(variant.strategy, {**entry.options, **variant.options}, entry.name)
