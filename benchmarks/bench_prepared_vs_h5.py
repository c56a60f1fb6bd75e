"""Loading a prepared sample against reading it from an HS3-Bench HDF5 file. Target: prepared >= 3x faster.

The baseline is the published HS3-Bench loader's pattern: for every item, open the split's HDF5 file, read the
sample group's whole ``image`` (H, W, C) and ``labels``, transpose the image to (C, H, W) float32, close. The
prepared path is ``open_prepared``'s loader: memory-map ``cube.npy`` / ``labels.npy`` and convert labels to int64.

Fairness: both sides end with the same ``cube.sum()`` and labels in int64, so every byte is actually read (a
memory map that nobody touches costs nothing); the HDF5 file is written contiguous and uncompressed, the fastest
layout h5py can read (a chunked or compressed file only widens the gap); both sets of files were just written,
so both are read from the page cache (``--cold`` evicts the files before every item instead). The methods are
interleaved round by round and the median per-item time over all rounds is compared. ``Dataset.load`` (which
also validates every sample against its card: finite values, label range) is reported as a third line.

The prepared cache is written by ``prepare_dataset`` through a small source format reading the HDF5 file, so
the benchmark also exercises the conversion.

Usage::

    python benchmarks/bench_prepared_vs_h5.py [--samples 20] [--repeats 5] [--cold]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from hsbench.data import DatasetCard, Sample
from hsbench.data.prepared import open_prepared, prepare_dataset
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat

HEIGHT, WIDTH, BANDS, CLASSES = 216, 409, 25, 9  # HSI-Drive v2.0 image size and band count
IGNORE = CLASSES
TARGET_RATIO = 3.0

CARD = DatasetCard(
    name="bench_hsidrive", task="segmentation", wavelengths_nm=tuple(600.0 + 15.0 * i for i in range(BANDS)),
    class_names=tuple(f"class{k}" for k in range(CLASSES)), palette=tuple((k, k, k) for k in range(CLASSES)),
    ignore_index=IGNORE, pseudo_rgb_bands=(5, 2, 0),
)


class HS3BenchH5(SourceFormat):
    """One HS3-Bench HDF5 file: a top-level group per sample holding ``image`` (H, W, C) and ``labels`` (H, W)."""

    name = "hs3bench_h5"

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        path = raw_dir / "bench_test.h5"
        with h5py.File(path, "r") as f:
            return [RawSample(key, (path,), key=key) for key in f]

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        return Sample(item.sample_id, *read_h5_item(item.paths[0], item.key or item.sample_id))


class BenchProvider(RealDatasetProvider):
    card = CARD
    formats = {"hs3bench_h5": HS3BenchH5()}


def read_h5_item(path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """The published loader's per-item work: open, read the whole image and labels, transpose, close."""
    with h5py.File(path, "r") as f:
        image = f[key]["image"][()]
        labels = f[key]["labels"][()]
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32), labels.astype(np.int64)


def write_h5(path: Path, num_samples: int, rng: np.random.Generator) -> list[str]:
    """An HS3-Bench-layout file with ``num_samples`` HSI-Drive-sized random samples (contiguous, uncompressed)."""
    keys = [f"nf{3000 + i}_{100 + i}" for i in range(num_samples)]
    with h5py.File(path, "w") as f:
        for key in keys:
            group = f.create_group(key)
            group["image"] = rng.random((HEIGHT, WIDTH, BANDS), dtype=np.float32) * 4.5
            group["labels"] = rng.integers(0, CLASSES + 1, size=(HEIGHT, WIDTH)).astype(np.uint8)
    return keys


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (clean pages only; affects no other process's files)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def time_items(load: Callable[[str], tuple[np.ndarray, np.ndarray]], keys: list[str],
               before: Callable[[], None]) -> list[float]:
    """Per-item wall times of ``load`` followed by reading every byte of the cube and labels."""
    times = []
    for key in keys:
        before()
        start = time.perf_counter()
        cube, labels = load(key)
        float(cube.sum()), int(labels.sum())
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="evict the files from the page cache before each item")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_prepared_") as tmp:
        raw, root = Path(tmp) / "raw", Path(tmp) / "data"
        raw.mkdir()
        keys = write_h5(raw / "bench_test.h5", args.samples, np.random.default_rng(0))
        start = time.perf_counter()
        report = prepare_dataset(BenchProvider, raw, root, progress=False)
        prepare_s = time.perf_counter() - start
        assert report.complete and len(report.prepared) == args.samples
        dataset = open_prepared(BenchProvider, root)
        for key in keys[:2]:  # same arrays on both sides
            cube, labels = read_h5_item(raw / "bench_test.h5", key)
            sample = dataset.load(key)
            assert np.array_equal(cube, sample.cube) and np.array_equal(labels, sample.labels)

        files = [raw / "bench_test.h5", *(root / CARD.name / "samples").rglob("*.npy")]
        before = (lambda: evict(files)) if args.cold else (lambda: None)
        methods: dict[str, Callable[[str], tuple[np.ndarray, np.ndarray]]] = {
            "hdf5 (per-item open, whole read)": lambda k: read_h5_item(raw / "bench_test.h5", k),
            "prepared (loader: mmap)": lambda k: (lambda s: (s.cube, s.labels))(dataset._loader(k)),
            "prepared (Dataset.load, validated)": lambda k: (lambda s: (s.cube, s.labels))(dataset.load(k)),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(args.repeats):
            for name, load in methods.items():
                times[name] += time_items(load, keys, before)

    mb = HEIGHT * WIDTH * BANDS * 4 / 1e6
    print(f"{args.samples} samples of {BANDS} x {HEIGHT} x {WIDTH} float32 ({mb:.1f} MB each), {args.repeats} rounds, "
          f"{'cold' if args.cold else 'warm'} page cache; prepare took {prepare_s:.2f} s")
    base = statistics.median(times["hdf5 (per-item open, whole read)"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<36} median {median * 1e3:7.2f} ms/item   speed-up {base / median:5.2f}x")
    ratio = base / statistics.median(times["prepared (loader: mmap)"])
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"prepared loader vs HDF5: {ratio:.2f}x ({verdict} the {TARGET_RATIO:.0f}x target)")


if __name__ == "__main__":
    main()
