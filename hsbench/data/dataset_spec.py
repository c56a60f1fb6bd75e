"""The dataset spec: a registry name with optional dataset options, ``NAME[:key=value,...]``.

Dataset options (``hsi_drive:wavelengths=cross_domain_2026``) change what a dataset hands out, independently of
the strategy, so they live in the dataset's name: the name is what runs, suites and reports carry, and it enters
the run id. Options a provider does not take fail when it opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hsbench.data.dataset import Dataset
from hsbench.data.provider import DatasetProvider
from hsbench.errors import ConfigError
from hsbench.options import parse_key_values
from hsbench.registry import DATASETS, lookup

__all__ = ["parse_dataset_spec", "dataset_name", "dataset_provider", "open_dataset"]


def parse_dataset_spec(text: str) -> tuple[str, dict[str, Any]]:
    """``"hsi_drive:wavelengths=cross_domain_2026"`` -> ``("hsi_drive", {"wavelengths": "cross_domain_2026"})``.

    Values are read as YAML scalars, like ``--cfg-options`` (``synthetic_drive:num_images=4`` gives an int).

    Raises:
        ConfigError: an option is not ``key=value``, or a key is given twice.
    """
    name, sep, rest = text.partition(":")
    items = [part.strip() for part in rest.split(",")] if sep else []
    keys = [item.partition("=")[0].strip() for item in items]
    for item in items:
        if not item.partition("=")[2].strip():
            raise ConfigError(f"dataset option {item!r} in {text!r} is not key=value; write e.g. "
                              "hsi_drive:wavelengths=cross_domain_2026")
    if len(set(keys)) != len(keys):
        raise ConfigError(f"a dataset option is given twice in {text!r}")
    return name.strip(), parse_key_values(items)


def dataset_name(text: str) -> str:
    """The registry name of a dataset spec (what its card and per-dataset defaults are looked up by)."""
    return parse_dataset_spec(text)[0]


def dataset_provider(text: str) -> type[DatasetProvider]:
    """The registered provider of a dataset spec (unknown names fail with the closest valid names)."""
    return lookup(DATASETS, dataset_name(text))


def open_dataset(text: str, data_root: Path | None = None) -> Dataset:
    """Open a dataset spec: the provider's ``open`` with the spec's options."""
    name, options = parse_dataset_spec(text)
    return lookup(DATASETS, name).open(data_root=data_root, **options)
