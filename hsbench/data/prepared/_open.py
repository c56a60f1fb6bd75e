"""``open_prepared``: a :class:`Dataset` over the prepared cache, and the message when there is none."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from hsbench.data.dataset import Dataset, Sample
from hsbench.data.paths import data_root_from
from hsbench.data.prepared import _layout as layout
from hsbench.data.source import RealDatasetProvider
from hsbench.errors import ConfigError, DataError

__all__ = ["open_prepared", "PreparedLoader", "prepare_command"]

log = logging.getLogger(__name__)

_SHOWN_MISSING = 5


class PreparedLoader:
    """``loader(sample_id) -> Sample`` over prepared folders.

    A class rather than a closure so that datasets pickle into DataLoader worker processes. Nothing is held
    open: each call memory-maps the two files, so the cube's bytes are read only where a consumer touches them.
    Each call checks headers against the manifest entry and file sizes against headers (no hashing: see
    ``hsbench prepare --verify``).
    """

    def __init__(self, dataset_dir: Path, entries: dict[str, layout.SampleEntry], *, dataset: str) -> None:
        self.samples_dir = dataset_dir / layout.SAMPLES
        self.entries = entries
        self.dataset = dataset

    def __call__(self, sample_id: str) -> Sample:
        entry = self.entries[sample_id]
        try:
            cube, labels = layout.open_arrays(self.samples_dir / entry.dir, entry)
        except DataError as exc:
            raise DataError(f"{self.dataset}: prepared sample {sample_id!r} is damaged: {exc}; run `hsbench "
                            f"prepare {self.dataset} --raw ...` again to restore it") from None
        # Labels are stored compactly (uint8); the harness convention is int64, a small copy next to the cube.
        return Sample(sample_id, cube, np.asarray(labels, dtype=np.int64))


def prepare_command(provider_cls: type[RealDatasetProvider], data_root: Path, *, extra: str = "") -> str:
    """The exact ``hsbench prepare`` line for this dataset (``--data-root`` only when not the default)."""
    name = provider_cls.card.name
    root = "" if data_root == data_root_from(None) else f" --data-root {data_root}"
    return f"hsbench prepare {name} --raw /path/to/{name}_raw{root}{extra}"


def _not_prepared(provider_cls: type[RealDatasetProvider], data_root: Path) -> DataError:
    card = provider_cls.card
    formats = "; ".join(f"{n}: {f.description}" if f.description else n for n, f in provider_cls.formats.items())
    obtain = card.how_to_obtain.strip().rstrip(".") or f"see `hsbench show dataset {card.name}`"
    return DataError(
        f"dataset {card.name!r} is not prepared under {data_root / card.name}. "
        f"Download the raw data ({obtain}) into any folder; the layouts read are: {formats or '(none)'}. "
        f"Then convert it once with:\n  {prepare_command(provider_cls, data_root)}"
    )


def _warn_incomplete(manifest: layout.Manifest, provider_cls: type[RealDatasetProvider], data_root: Path) -> None:
    missing = manifest.missing_official
    shown = ", ".join(missing[:_SHOWN_MISSING]) + (f" and {len(missing) - _SHOWN_MISSING} more"
                                                   if len(missing) > _SHOWN_MISSING else "")
    log.warning("%s is prepared only in part: %d sample(s) of the official splits are missing (%s), so official "
                "splits will fail; finish it with `%s`", manifest.dataset, len(missing), shown,
                prepare_command(provider_cls, data_root))


def open_prepared(provider_cls: type[RealDatasetProvider], data_root: Path, **options: Any) -> Dataset:
    """Open a prepared dataset without reading its data (the fingerprint comes from the manifest).

    An incomplete dataset opens with a warning: its prepared samples serve fraction and k-shot splits, while an
    official split names the missing samples in its error.

    Raises:
        DataError: not prepared (the message says what to download and which command to run), or prepared by
            another card version.
        ConfigError: options were given (prepared datasets take none).
    """
    card = provider_cls.card
    if options:
        raise ConfigError(f"dataset {card.name!r} takes no options, got {', '.join(sorted(options))}")
    dataset_dir = data_root / card.name
    manifest = layout.read_manifest(dataset_dir)
    if manifest is None or not manifest.samples:
        raise _not_prepared(provider_cls, data_root)
    if manifest.dataset != card.name:
        raise DataError(f"{dataset_dir} holds dataset {manifest.dataset!r}, not {card.name!r}")
    if manifest.card_version != card.version or manifest.layout_version != layout.LAYOUT_VERSION:
        raise DataError(
            f"dataset {card.name!r} under {dataset_dir} was prepared with card version {manifest.card_version}, "
            f"but this hsbench reads version {card.version} (its reader output changed). Rebuild it with:\n  "
            + prepare_command(provider_cls, data_root, extra=" --force")
        )
    if manifest.missing_official:
        _warn_incomplete(manifest, provider_cls, data_root)
    loader = PreparedLoader(dataset_dir, dict(manifest.samples), dataset=card.name)
    return Dataset(
        card, sorted(manifest.samples), loader, fingerprint=layout.fingerprint_of(manifest), prevalidated=True
    )
