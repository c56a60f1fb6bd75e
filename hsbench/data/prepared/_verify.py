"""``hsbench prepare NAME --verify``: the full content check of a prepared dataset.

Opening a sample checks only headers and sizes (a dataset of many GB must open instantly); this reads every byte
once and compares it with the hashes recorded at prepare time. A sample that fails is moved aside and dropped
from the manifest, so the next ``hsbench prepare NAME --raw DIR`` prepares it again from the raw files.
Manifests from before file hashes were recorded are checked by their content digest and then get file hashes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hsbench.data.dataset import array_digest
from hsbench.data.prepared import _layout as layout
from hsbench.data.prepared._prepare import _dataset_lock, official_ids
from hsbench.data.source import RealDatasetProvider
from hsbench.errors import DataError
from hsbench.integrity import file_hash, move_aside, verify

__all__ = ["VerifyReport", "verify_prepared"]


@dataclass
class VerifyReport:
    """What ``--verify`` found.

    Attributes:
        dataset: dataset name.
        dataset_dir: its prepared folder.
        checked: samples read in full.
        hashed_now: samples of an older manifest, checked by content digest, whose file hashes were recorded now.
        bad: one line per damaged sample (moved aside, to be prepared again).
    """

    dataset: str
    dataset_dir: Path
    checked: int = 0
    hashed_now: int = 0
    bad: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad


def _check(folder: Path, entry: layout.SampleEntry) -> layout.SampleEntry:
    """The entry after a full check (with file hashes added for an older entry); DataError when damaged."""
    cube, labels = layout.open_arrays(folder, entry)
    if entry.files:
        for name, expected in entry.files.items():
            verify(folder / name, expected)
        return entry
    digest = array_digest(np.asarray(cube), np.asarray(labels, dtype=np.int64))
    if digest != entry.sha256:
        raise DataError(f"{folder}: content digest sha256 {digest} differs from the manifest's {entry.sha256}")
    return dataclasses.replace(entry, files={n: file_hash(folder / n) for n in (layout.CUBE, layout.LABELS)})


def verify_prepared(
    provider_cls: type[RealDatasetProvider], data_root: Path, *, progress: bool = True
) -> VerifyReport:
    """Hash every file of a prepared dataset against its manifest; damaged samples are moved aside and unlisted.

    Raises:
        DataError: the dataset is not prepared under ``data_root``.
    """
    card = provider_cls.card
    dataset_dir = data_root / card.name
    manifest = layout.read_manifest(dataset_dir)
    if manifest is None:
        raise DataError(f"dataset {card.name!r} is not prepared under {dataset_dir}; nothing to verify")
    report = VerifyReport(card.name, dataset_dir)
    with _dataset_lock(dataset_dir):
        samples_dir = dataset_dir / layout.SAMPLES
        for sample_id in tqdm(sorted(manifest.samples), desc=f"verify {card.name}", unit="sample",
                              disable=not progress):
            entry = manifest.samples[sample_id]
            folder = samples_dir / entry.dir
            try:
                checked = _check(folder, entry)
            except DataError as exc:
                report.bad.append(f"{sample_id}: {exc}")
                move_aside(folder, "hsbench prepare --verify")
                del manifest.samples[sample_id]
                continue
            report.checked += 1
            if checked is not entry:
                manifest.samples[sample_id], report.hashed_now = checked, report.hashed_now + 1
        if report.bad:
            manifest.missing_official = [i for i in official_ids(card) if i not in manifest.samples]
            manifest.complete = False
        if report.bad or report.hashed_now:
            layout.write_manifest(dataset_dir, manifest)
    return report
