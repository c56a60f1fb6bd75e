"""Registering users' ENVI datasets from config files, without code.

:func:`register_dataset_config` turns one YAML file into a :class:`RealDatasetProvider` in ``DATASETS``;
:func:`register_user_datasets` does it for every config under ``<data root>/configs/`` and in
``$HSBENCH_DATASET_CONFIGS``, and is meant to run once at start-up. Only ENVI headers are read at registration
(the card needs the wavelengths), and only until the dataset is prepared: ``hsbench prepare`` stores those facts
beside the prepared cache, which is all a prepared dataset needs afterwards. The data is read by ``hsbench
prepare``, like any real dataset.

A broken config affects only its own dataset: start-up warns once naming the file, every other command works,
and using the dataset by the name it declares raises the config's real error.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
from pathlib import Path
from typing import Any, NoReturn

from hsbench.config_files import read_config_file
from hsbench.data.card import DatasetCard
from hsbench.data.paths import data_root_from
from hsbench.data.prepared._card_facts import read_card_facts
from hsbench.data.scenes.envi import EnviFormat, EnviHeader, read_envi_header
from hsbench.data.scenes.labels import default_palette
from hsbench.data.scenes.sensors import nearest_bands
from hsbench.data.scenes.user_config import UserDatasetConfig, load_dataset_config
from hsbench.data.source import RealDatasetProvider
from hsbench.errors import ConfigError, DataError, HsbenchError
from hsbench.names import check_name
from hsbench.registry import DATASETS

__all__ = [
    "CONFIGS_ENV", "build_card", "config_paths", "register_dataset_config", "register_user_datasets",
]

CONFIGS_ENV = "HSBENCH_DATASET_CONFIGS"
_CONFIG_SUFFIXES = (".yaml", ".yml")
_registered_from: dict[Path, str] = {}  # config file -> dataset name, so start-up registration can run twice
_broken: dict[Path, HsbenchError] = {}  # config file -> its error, so each broken file is warned about once
_DECLARED_NAME = re.compile(r"^name\s*:\s*[\"']?([^\"'\s#]+)", re.MULTILINE)  # for files YAML cannot parse

log = logging.getLogger(__name__)


def _headers(cfg: UserDatasetConfig) -> list[EnviHeader]:
    headers = []
    for i, sample in enumerate(cfg.samples):
        try:
            headers.append(read_envi_header(cfg.root / sample.cube))
        except DataError as exc:
            raise ConfigError(f"{cfg.path}: field 'samples[{i}].cube': {exc}") from exc
    return headers


def _header_wavelengths(cfg: UserDatasetConfig) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """Band centres (and widths) from the first header, which every other must match."""
    headers = _headers(cfg)
    first = headers[0]
    if first.wavelengths_nm is None:
        raise ConfigError(
            f"{cfg.path}: field 'samples[0].cube': {first.path} has no 'wavelength' field; add the band centres to "
            "the config as wavelengths_nm"
        )
    for i, header in enumerate(headers[1:], start=1):
        if header.wavelengths_nm != first.wavelengths_nm:
            raise ConfigError(
                f"{cfg.path}: field 'samples[{i}].cube': {header.path} has other band centres than {first.path} "
                f"({header.shape[0]} vs {first.shape[0]} bands); a dataset has one band set"
            )
    return first.wavelengths_nm, first.fwhm_nm


def _wavelengths(cfg: UserDatasetConfig, data_root: Path) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """From the config, else from the prepared cache's stored card facts, else from the raw ENVI headers."""
    if cfg.wavelengths_nm is not None:
        return cfg.wavelengths_nm, None
    facts = read_card_facts(data_root / cfg.name, cfg.name, cfg.version)
    if facts is not None:  # prepared: the raw folder may be gone
        return facts.wavelengths_nm, facts.fwhm_nm
    return _header_wavelengths(cfg)


def build_card(cfg: UserDatasetConfig, data_root: Path | None = None) -> DatasetCard:
    """The dataset card of a config.

    When the config gives no wavelengths they come from the card facts that ``hsbench prepare`` stored under
    ``data_root`` (default: :func:`data_root_from`), or, before the dataset is prepared, from the ENVI headers.

    Raises:
        ConfigError: a header is missing or unreadable, headers disagree, or a card value is out of range.
    """
    wavelengths, fwhm = _wavelengths(cfg, data_root_from(data_root))
    k = len(cfg.class_names)
    try:
        return DatasetCard(
            name=cfg.name,
            task=cfg.task,
            wavelengths_nm=wavelengths,
            fwhm_nm=fwhm,
            class_names=cfg.class_names,
            palette=cfg.palette if cfg.palette is not None else default_palette(k),
            ignore_index=cfg.ignore_index,
            pseudo_rgb_bands=cfg.pseudo_rgb_bands or nearest_bands(wavelengths),
            official_splits=cfg.splits,
            raw_label_map=cfg.label_map,
            sizes=f"{len(cfg.samples)} sample(s), {len(wavelengths)} bands, {k} classes",
            description=cfg.description,
            citation=cfg.citation,
            licence=cfg.licence,
            how_to_obtain=cfg.how_to_obtain,
            version=cfg.version,
        )
    except ValueError as exc:  # the card's own consistency checks (pseudo-RGB bands out of range, ...)
        raise ConfigError(f"{cfg.path}: {exc}") from exc


def _provider_class(cfg: UserDatasetConfig, card: DatasetCard) -> type[RealDatasetProvider]:
    fmt = EnviFormat(cfg.samples, check_wavelengths=cfg.wavelengths_nm is None)
    attributes = {
        "__doc__": f"User dataset {cfg.name!r} ({cfg.task}, ENVI) defined by {cfg.path}.",
        "__module__": __name__,
        "card": card,
        "formats": {"envi": fmt},
        "config_path": cfg.path,
        "default_raw_dir": cfg.root,
    }
    return type(f"UserDataset[{cfg.name}]", (RealDatasetProvider,), attributes)


def register_dataset_config(path: Path, data_root: Path | None = None) -> type[RealDatasetProvider]:
    """Register the dataset a config file describes and return its provider.

    The provider reads from the raw folder given to ``hsbench prepare --raw``; its ``default_raw_dir`` is the
    config's ``root`` (default: the config file's folder), where the headers are read until the dataset is
    prepared under ``data_root``.

    Raises:
        ConfigError: malformed config, unreadable headers, or a name that is already registered.
    """
    import hsbench.data.catalog  # noqa: F401  (built-in names must be known before checking for a clash)

    cfg = load_dataset_config(path)
    if cfg.name in DATASETS.module_dict:
        earlier = next((str(p) for p, n in _registered_from.items() if n == cfg.name), None)
        origin = f"by {earlier}" if earlier else "as a built-in dataset"
        raise ConfigError(f"{cfg.path}: field 'name': a dataset {cfg.name!r} is already registered {origin}")
    provider = _provider_class(cfg, build_card(cfg, data_root))
    DATASETS.register_module(name=cfg.name, module=provider)
    _registered_from[cfg.path] = cfg.name
    return provider


def _configs_in(entry: Path) -> list[Path]:
    if entry.is_dir():
        return sorted(p for p in entry.iterdir() if p.suffix.lower() in _CONFIG_SUFFIXES and p.is_file())
    return [entry]


def config_paths(data_root: Path | None = None) -> list[Path]:
    """Config files to register: ``<data root>/configs/*.yaml``, then each entry of ``$HSBENCH_DATASET_CONFIGS``.

    An environment entry may be a file or a folder (its ``*.yaml`` files); one that does not exist is warned
    about (once), since it was named on purpose, and skipped, so that it breaks no other dataset.
    """
    configs_dir = data_root_from(data_root) / "configs"
    found = _configs_in(configs_dir) if configs_dir.is_dir() else []
    for raw in filter(None, os.environ.get(CONFIGS_ENV, "").split(os.pathsep)):
        entry = Path(raw).expanduser()
        if not entry.exists():
            _warn_broken(entry, ConfigError(f"${CONFIGS_ENV} names {entry}, which does not exist"))
            continue
        found += _configs_in(entry)
    unique: dict[Path, None] = {}
    for p in found:
        unique.setdefault(p.resolve(), None)
    return list(unique)


class _UnusableMeta(type):
    """Metaclass of the stand-in for a broken config's dataset: reading its card raises the config's error."""

    error: HsbenchError

    @property
    def card(cls) -> NoReturn:
        raise cls.error


def _declared_name(path: Path) -> str | None:
    """The dataset name a broken config declares, if one can be found (even in a file YAML cannot parse)."""
    try:
        name: Any = read_config_file(path, what="dataset config").get("name")
    except HsbenchError:
        try:
            match = _DECLARED_NAME.search(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return None
        name = match.group(1) if match else None
    try:
        return check_name(name, "dataset name")
    except ConfigError:
        return None


def _register_unusable(path: Path, error: HsbenchError) -> None:
    """Register a stand-in under the broken config's declared name, so that using it gives the real error."""
    name = _declared_name(path)
    if name is None or name in DATASETS.module_dict:
        return

    def open(cls: type, **_: Any) -> NoReturn:
        raise error

    stand_in = _UnusableMeta(f"UnusableUserDataset[{name}]", (RealDatasetProvider,), {
        "__doc__": f"User dataset {name!r}: its config {path} is broken.", "__module__": __name__,
        "error": error, "config_path": path, "open": classmethod(open),
    })
    DATASETS.register_module(name=name, module=stand_in)
    _registered_from[path] = name


def _warn_broken(path: Path, error: HsbenchError) -> None:
    """Warn once per file and process (spawned worker processes stay quiet: their parent has warned)."""
    if path in _broken:
        return
    _broken[path] = error
    level = logging.WARNING if multiprocessing.parent_process() is None else logging.DEBUG
    message = str(error) if str(path) in str(error) else f"{path}: {error}"
    log.log(level, "skipped a broken dataset config, other datasets are unaffected: %s", message)


def register_user_datasets(data_root: Path | None = None) -> list[str]:
    """Register every user dataset config (see :func:`config_paths`); return the names of those that work.

    Safe to call more than once: a config already registered from the same file is not registered again. A
    broken config (malformed, unreadable headers, a name already taken) does not stop the others: it is warned
    about once, naming the file, and using the name it declares raises its error.
    """
    from hsbench.registry import names as registered_names

    registered_names(DATASETS)  # built-ins first, so a clashing user name is reported rather than shadowing one
    names = []
    for path in config_paths(data_root):
        if path in _broken:
            continue
        if path in _registered_from:
            names.append(_registered_from[path])
            continue
        try:
            names.append(register_dataset_config(path, data_root).card.name)
        except HsbenchError as exc:
            _warn_broken(path, exc)
            _register_unusable(path, exc)
    return names
