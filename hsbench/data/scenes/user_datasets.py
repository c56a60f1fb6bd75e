"""Registering users' ENVI datasets from config files, without code.

:func:`register_dataset_config` turns one YAML file into a :class:`RealDatasetProvider` in ``DATASETS``;
:func:`register_user_datasets` does it for every config under ``<data root>/configs/`` and in
``$HSBENCH_DATASET_CONFIGS``, and is meant to run once at start-up. Only ENVI headers are read at registration
(the card needs the wavelengths); the data is read by ``hsbench prepare``, like any real dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

from hsbench.data.card import DatasetCard
from hsbench.data.paths import data_root_from
from hsbench.data.scenes.envi import EnviFormat, EnviHeader, read_envi_header
from hsbench.data.scenes.labels import default_palette
from hsbench.data.scenes.sensors import nearest_bands
from hsbench.data.scenes.user_config import UserDatasetConfig, load_dataset_config
from hsbench.data.source import RealDatasetProvider
from hsbench.errors import ConfigError, DataError
from hsbench.registry import DATASETS

__all__ = [
    "CONFIGS_ENV", "build_card", "config_paths", "register_dataset_config", "register_user_datasets",
]

CONFIGS_ENV = "HSBENCH_DATASET_CONFIGS"
_CONFIG_SUFFIXES = (".yaml", ".yml")
_registered_from: dict[Path, str] = {}  # config file -> dataset name, so start-up registration can run twice


def _headers(cfg: UserDatasetConfig) -> list[EnviHeader]:
    headers = []
    for i, sample in enumerate(cfg.samples):
        try:
            headers.append(read_envi_header(cfg.root / sample.cube))
        except DataError as exc:
            raise ConfigError(f"{cfg.path}: field 'samples[{i}].cube': {exc}") from exc
    return headers


def _wavelengths(cfg: UserDatasetConfig) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """Band centres (and widths) from the config, else from the first header, which every other must match."""
    if cfg.wavelengths_nm is not None:
        return cfg.wavelengths_nm, None
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


def build_card(cfg: UserDatasetConfig) -> DatasetCard:
    """The dataset card of a config (reads the ENVI headers when the config gives no wavelengths).

    Raises:
        ConfigError: a header is missing or unreadable, headers disagree, or a card value is out of range.
    """
    wavelengths, fwhm = _wavelengths(cfg)
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


def register_dataset_config(path: Path) -> type[RealDatasetProvider]:
    """Register the dataset a config file describes and return its provider.

    The provider reads from the raw folder given to ``hsbench prepare --raw``; its ``default_raw_dir`` is the
    config's ``root`` (default: the config file's folder), where the headers were read at registration.

    Raises:
        ConfigError: malformed config, unreadable headers, or a name that is already registered.
    """
    import hsbench.data.catalog  # noqa: F401  (built-in names must be known before checking for a clash)

    cfg = load_dataset_config(path)
    if cfg.name in DATASETS.module_dict:
        earlier = next((str(p) for p, n in _registered_from.items() if n == cfg.name), None)
        origin = f"by {earlier}" if earlier else "as a built-in dataset"
        raise ConfigError(f"{cfg.path}: field 'name': a dataset {cfg.name!r} is already registered {origin}")
    provider = _provider_class(cfg, build_card(cfg))
    DATASETS.register_module(name=cfg.name, module=provider)
    _registered_from[cfg.path] = cfg.name
    return provider


def _configs_in(entry: Path) -> list[Path]:
    if entry.is_dir():
        return sorted(p for p in entry.iterdir() if p.suffix.lower() in _CONFIG_SUFFIXES and p.is_file())
    return [entry]


def config_paths(data_root: Path | None = None) -> list[Path]:
    """Config files to register: ``<data root>/configs/*.yaml``, then each entry of ``$HSBENCH_DATASET_CONFIGS``.

    An environment entry may be a file or a folder (its ``*.yaml`` files); one that does not exist is an error,
    since it was named on purpose.
    """
    configs_dir = data_root_from(data_root) / "configs"
    found = _configs_in(configs_dir) if configs_dir.is_dir() else []
    for raw in filter(None, os.environ.get(CONFIGS_ENV, "").split(os.pathsep)):
        entry = Path(raw).expanduser()
        if not entry.exists():
            raise ConfigError(f"${CONFIGS_ENV} names {entry}, which does not exist")
        found += _configs_in(entry)
    unique: dict[Path, None] = {}
    for p in found:
        unique.setdefault(p.resolve(), None)
    return list(unique)


def register_user_datasets(data_root: Path | None = None) -> list[str]:
    """Register every user dataset config (see :func:`config_paths`); return their dataset names.

    Safe to call more than once: a config already registered from the same file is not registered again.

    Raises:
        ConfigError: the first malformed config (naming the file and the field), or two configs sharing a name.
    """
    from hsbench.registry import names as registered_names

    registered_names(DATASETS)  # built-ins first, so a clashing user name is reported rather than shadowing one
    names = []
    for path in config_paths(data_root):
        if path in _registered_from:
            names.append(_registered_from[path])
            continue
        names.append(register_dataset_config(path).card.name)
    return names
