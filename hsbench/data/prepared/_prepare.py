"""``prepare_dataset``: convert raw files once into the prepared cache, resumably, reporting every bad file."""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from hsbench import __version__
from hsbench.config_files import did_you_mean
from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample, array_digest, validate_sample
from hsbench.data.prepared import _layout as layout
from hsbench.data.prepared._card_facts import write_card_facts
from hsbench.data.prepared._layout import Manifest, SampleEntry
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat
from hsbench.errors import ConfigError, DataError

__all__ = ["BadSample", "PrepareReport", "prepare_dataset", "official_ids"]

log = logging.getLogger(__name__)

try:  # POSIX; elsewhere two concurrent prepares of one dataset are simply not guarded against
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


class BadSample(NamedTuple):
    """A raw sample that could not be prepared; ``message`` names its file and the problem."""

    sample_id: str
    paths: tuple[Path, ...]
    message: str


@dataclass
class PrepareReport:
    """What one ``prepare_dataset`` call did.

    Attributes:
        dataset: dataset name.
        dataset_dir: the prepared dataset's folder (``<data root>/<dataset>``).
        source_format: the raw layout that was read.
        prepared: ids written by this call.
        skipped: ids found in the raw folder that were already prepared.
        bad: raw samples that could not be read or failed validation (nothing was written for them).
        missing: official split ids neither found in the raw folder nor prepared before, in split-list order.
        total: samples in the prepared dataset after this call.
    """

    dataset: str
    dataset_dir: Path
    source_format: str
    prepared: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bad: list[BadSample] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    total: int = 0

    @property
    def complete(self) -> bool:
        return not self.bad and not self.missing


def official_ids(card: DatasetCard) -> dict[str, dict[str, str]]:
    """Sample id -> {official split name: part}, in split-list order (scene datasets: empty)."""
    parts: dict[str, dict[str, str]] = {}
    for split_name, official in card.official_splits.items():
        for part in ("train", "val", "test"):
            for sample_id in official.part(part):
                parts.setdefault(sample_id, {})[split_name] = part
    return parts


def pick_format(provider_cls: type[RealDatasetProvider], name: str | None) -> tuple[str, SourceFormat]:
    """The named source format of a provider, or its first (default) one."""
    formats = provider_cls.formats
    if not formats:
        raise ConfigError(f"dataset {provider_cls.card.name!r} has no raw source format to prepare from")
    if name is None:
        return next(iter(formats.items()))
    if name not in formats:
        raise ConfigError(f"dataset {provider_cls.card.name!r} has no source format {name!r}"
                          f"{did_you_mean(name, formats)}; it reads {', '.join(formats)}")
    return name, formats[name]


@contextlib.contextmanager
def _dataset_lock(dataset_dir: Path) -> Iterator[None]:
    """Hold the dataset's lock so that two prepares never interleave their manifest updates."""
    dataset_dir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(dataset_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"another `hsbench prepare` is writing {dataset_dir}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_manifest(dataset_dir: Path, card: DatasetCard, source_name: str, force: bool) -> Manifest:
    """The manifest to continue from: the existing one if it matches the card and format, else a fresh one."""
    if force:
        shutil.rmtree(dataset_dir / layout.SAMPLES, ignore_errors=True)
        (dataset_dir / layout.MANIFEST).unlink(missing_ok=True)
    existing = layout.read_manifest(dataset_dir)
    fresh = Manifest(card.name, card.version, source_name, __version__)
    if existing is None:
        return fresh
    if existing.card_version != card.version or existing.layout_version != layout.LAYOUT_VERSION:
        raise DataError(f"{dataset_dir} was prepared with card version {existing.card_version} (layout "
                        f"{existing.layout_version}); this hsbench writes card version {card.version} (layout "
                        f"{layout.LAYOUT_VERSION}). Add --force to rebuild it")
    if existing.source_format != source_name:
        raise DataError(f"{dataset_dir} was prepared from source format {existing.source_format!r}, not "
                        f"{source_name!r}; mixing formats in one dataset is refused. Add --force to rebuild it")
    existing.hsbench_version = __version__
    return existing


def _reconcile(dataset_dir: Path, manifest: Manifest) -> None:
    """Drop manifest entries whose files are gone; adopt finished folders the manifest does not list yet."""
    removed = layout.remove_leftovers(dataset_dir)
    if removed:
        log.info("%s: removed %d leftover temporary file(s) of an interrupted prepare", manifest.dataset, removed)
    samples_dir = dataset_dir / layout.SAMPLES
    for sample_id, entry in list(manifest.samples.items()):
        if not layout.entry_intact(samples_dir / entry.dir, entry):
            log.warning("%s: prepared sample %r is damaged or gone; it will be prepared again",
                        manifest.dataset, sample_id)
            del manifest.samples[sample_id]
    listed = {e.dir for e in manifest.samples.values()}
    for folder in sorted(samples_dir.iterdir()) if samples_dir.is_dir() else []:
        if folder.name in listed:
            continue
        meta = layout.read_meta(folder)
        try:
            entry = SampleEntry.from_json(meta)  # type: ignore[arg-type]
        except (TypeError, KeyError, ValueError):
            entry = None
        if (entry is not None and entry.dir == folder.name and meta.get("card_version") == manifest.card_version
                and meta.get("source_format") == manifest.source_format and entry.id not in manifest.samples
                and layout.entry_intact(folder, entry)):
            manifest.samples[entry.id] = entry
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _paths_text(item: RawSample) -> str:
    return ", ".join(str(p) for p in item.paths) or "(no file)"


def _read_checked(source: SourceFormat, item: RawSample, card: DatasetCard) -> Sample:
    """Read and validate one raw sample; any failure becomes a DataError that names its files."""
    where = _paths_text(item)
    try:
        sample = source.read(item, card)
        return validate_sample(Sample(item.sample_id, sample.cube, sample.labels), card, source=where)
    except DataError as exc:
        message = str(exc)
        if not any(str(p) in message for p in item.paths):
            message = f"{where}: {message}"
        raise DataError(message) from exc
    except Exception as exc:  # a corrupt file can make any parser fail in its own way
        raise DataError(f"{card.name}/{item.sample_id} ({where}): cannot be read: {type(exc).__name__}: {exc}") \
            from exc


def _reject(report: PrepareReport, bad: BadSample, strict: bool) -> None:
    """Record a bad sample, or stop at it in strict mode."""
    if strict:
        raise DataError(f"{bad.message} (stopped at the first bad file: --strict)")
    report.bad.append(bad)


def _write(dataset_dir: Path, manifest: Manifest, sample: Sample, parts: dict[str, str]) -> None:
    entry = SampleEntry(sample.id, layout.sample_dir_name(sample.id), tuple(sample.cube.shape),
                        str(layout.compact_labels(sample.labels).dtype), array_digest(sample.cube, sample.labels),
                        parts)
    meta = {"card_version": manifest.card_version, "source_format": manifest.source_format}
    entry = layout.write_sample(dataset_dir / layout.SAMPLES, entry, meta, sample.cube, sample.labels)
    manifest.samples[entry.id] = entry
    layout.write_manifest(dataset_dir, manifest)


def _finish(report: PrepareReport, manifest: Manifest, official: dict[str, dict[str, str]],
            found: set[str]) -> None:
    """Fill the report's missing list and mark the manifest complete (or not)."""
    report.missing = [i for i in official if i not in found and i not in manifest.samples]
    manifest.missing_official = [i for i in official if i not in manifest.samples]
    manifest.complete = not manifest.missing_official and not report.bad
    report.total = len(manifest.samples)


def prepare_dataset(
    provider_cls: type[RealDatasetProvider],
    raw_dir: Path,
    data_root: Path,
    *,
    format: str | None = None,
    strict: bool = False,
    progress: bool = True,
    force: bool = False,
) -> PrepareReport:
    """Convert a dataset's raw files into the prepared cache under ``data_root/<name>``.

    Resumable: samples already prepared are skipped, so an interrupted call is finished by calling again.

    Args:
        provider_cls: the dataset's provider (its card and source formats).
        raw_dir: the folder holding the downloaded raw data.
        data_root: root of all prepared datasets.
        format: source format name (default: the provider's first).
        strict: raise at the first bad file instead of collecting them all.
        progress: show a progress bar.
        force: delete what was prepared before and rebuild (needed after a card version change).

    Raises:
        DataError: raw folder missing or empty, a prepared dataset that does not match, or (strict) a bad file.
        ConfigError: unknown format.
    """
    card = provider_cls.card
    source_name, source = pick_format(provider_cls, format)
    if not raw_dir.is_dir():
        raise DataError(f"the raw folder {raw_dir} does not exist or is not a folder")
    dataset_dir = data_root / card.name
    with _dataset_lock(dataset_dir):
        manifest = _start_manifest(dataset_dir, card, source_name, force)
        write_card_facts(dataset_dir, card)  # the card can be rebuilt without the raw folder
        _reconcile(dataset_dir, manifest)
        items = source.discover(raw_dir, card)
        if not items and not manifest.samples:
            raise DataError(f"found no {card.name} samples under {raw_dir} in the {source_name!r} layout"
                            + (f" ({source.description})" if source.description else ""))
        report = PrepareReport(card.name, dataset_dir, source_name)
        official = official_ids(card)
        found: set[str] = set()
        for item in tqdm(items, desc=f"prepare {card.name}", unit="sample", disable=not progress):
            if item.sample_id in found:
                _reject(report, BadSample(item.sample_id, item.paths, f"{_paths_text(item)}: sample "
                                          f"{item.sample_id!r} appears twice in the raw data; kept the first"), strict)
                continue
            found.add(item.sample_id)
            if item.sample_id in manifest.samples:
                report.skipped.append(item.sample_id)
                continue
            try:
                sample = _read_checked(source, item, card)
            except DataError as exc:
                _reject(report, BadSample(item.sample_id, item.paths, str(exc)), strict)
                continue
            _write(dataset_dir, manifest, sample, official.get(item.sample_id, {}))
            report.prepared.append(item.sample_id)
        _finish(report, manifest, official, found)
        layout.write_manifest(dataset_dir, manifest)
    return report
