"""Peak memory of a training loader over HCV2-size samples. Target: peak resident memory under 1.5 GB.

Twenty samples of the size HCV2 has after HS3-Bench's downscale (128 x 711 x 944 float32, 344 MB each, 6.9 GB
together) are written into the prepared cache by ``prepare_dataset`` (through a small source format generating
them), then a fresh Python process opens the cache with ``open_prepared`` and iterates a
``torch.utils.data.DataLoader`` over it for ``--epochs`` epochs (batch 4, shuffled, no workers). A fresh process
keeps the measurement clean: its peak resident set (``VmHWM`` from ``/proc/self/status``, which counts the
memory-mapped file pages a loader touches) covers only opening and iterating. ``ru_maxrss`` is printed too, but
Linux carries it over from the forking parent (here the process that just prepared the samples), so it can only
be larger; ``VmHWM`` starts afresh at ``exec``.

Loaders (``--loaders``):

``crops``
    per item: ``Dataset.load`` (memory-mapped cube, validated against the card), a random 256 x 256 crop copied
    out of the memory map, per-band standardisation of the crop, tensors. What a training loop over large images
    needs; the target applies to it.
``harness``
    ``hsbench.learners.TransformedView`` (``cache_bytes=0``, 256 x 256 crops) with a fitted ``standardize``
    :class:`hsbench.data.transforms.PixelTransform`, which transforms the *whole* cube before cropping. Reported
    for comparison: it shows what the harness's current view costs at this image size.

Usage::

    python benchmarks/bench_loader_memory.py [--samples 20] [--epochs 2] [--loaders crops,harness] [--keep DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample
from hsbench.data.hs3bench import HCV2_CARD
from hsbench.data.source import RawSample, RealDatasetProvider, SourceFormat

BANDS, HEIGHT, WIDTH = 128, 711, 944
CROP, BATCH = 256, 4
TARGET_BYTES = 1.5e9
CARD = dataclasses.replace(HCV2_CARD, name="bench_hcv2_memory", official_splits={})


class GeneratedHcv2(SourceFormat):
    """HCV2-size samples made on the fly: per-class spectra scaled by a smooth brightness field."""

    name = "generated"

    def __init__(self, count: int = 20) -> None:
        self.count = count

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        return [RawSample(f"bench_{i:03d}", ()) for i in range(self.count)]

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        rng = np.random.default_rng(int(item.sample_id.rsplit("_", 1)[1]))
        spectra = rng.uniform(0.05, 0.8, size=(card.num_classes, BANDS)).astype(np.float32)
        labels = (np.arange(HEIGHT)[:, None] // 40 + np.arange(WIDTH)[None, :] // 60) % card.num_classes
        brightness = rng.uniform(0.7, 1.3, size=(HEIGHT, WIDTH)).astype(np.float32)
        cube = spectra[labels].transpose(2, 0, 1) * brightness
        return Sample(item.sample_id, np.ascontiguousarray(cube), labels.astype(np.int64))


class BenchHcv2(RealDatasetProvider):
    card = CARD
    formats = {"generated": GeneratedHcv2()}


def peak_memory() -> dict[str, float]:
    """Peak resident set of this process: VmHWM (bytes) and ru_maxrss (bytes; Linux reports KiB)."""
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:")), float("nan"))
    return {"vm_hwm": hwm, "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def crops_loader(dataset, seed: int):
    """Random crops cut from the memory map before any arithmetic, standardised per band."""
    import torch

    mean = np.array([0.4] * BANDS, np.float32)[:, None, None]  # fixed statistics: fitting them is not the point
    std = np.array([0.2] * BANDS, np.float32)[:, None, None]

    class RandomCrops(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(dataset)

        def __getitem__(self, index: int):
            sample = dataset.load(dataset.sample_ids[index])
            rng = np.random.default_rng((seed, index))
            top, left = (int(rng.integers(0, n - CROP + 1)) for n in sample.shape)
            cube = np.array(sample.cube[:, top : top + CROP, left : left + CROP], dtype=np.float32)
            labels = np.array(sample.labels[top : top + CROP, left : left + CROP])
            return torch.from_numpy((cube - mean) / std), torch.from_numpy(labels)

    return RandomCrops()


def harness_loader(dataset, seed: int):
    """The harness's TransformedView with a standardize transform fitted on a few thousand pixels."""
    from hsbench.data.transforms import build_transform
    from hsbench.learners import TransformedView
    from hsbench.strategy import SplitView

    first = dataset.load(dataset.sample_ids[0])
    pixels = np.asarray(first.cube[:, ::16, ::16]).reshape(BANDS, -1).T
    transform = build_transform("standardize").fit(pixels)
    del first
    view = SplitView(dataset, dict.fromkeys(dataset.sample_ids), "train")
    return TransformedView(view, transform.apply, out_channels=transform.channels(BANDS), crop_size=CROP,
                           rng=np.random.default_rng(seed), cache_bytes=0)


def child(data_root: Path, loader_name: str, epochs: int, seed: int) -> None:
    """Open the prepared cache and iterate the loader; print one JSON line with the peaks."""
    import torch

    from hsbench.data.prepared import open_prepared

    torch.set_num_threads(1)
    dataset = open_prepared(BenchHcv2, data_root)
    baseline = peak_memory()
    items = {"crops": crops_loader, "harness": harness_loader}[loader_name](dataset, seed)
    loader = torch.utils.data.DataLoader(items, batch_size=BATCH, shuffle=True, num_workers=0,
                                         generator=torch.Generator().manual_seed(seed))
    start, batches = time.perf_counter(), 0
    for _ in range(epochs):
        for cube, labels in loader:
            batches += 1
            assert cube.shape[1:] == (BANDS, CROP, CROP) and labels.shape[1:] == (CROP, CROP)
    print(json.dumps({"loader": loader_name, "baseline": baseline, "peak": peak_memory(), "batches": batches,
                      "seconds": time.perf_counter() - start}))


def measure(data_root: Path, loader_name: str, epochs: int, seed: int) -> dict:
    command = [sys.executable, __file__, "--child", loader_name, "--keep", str(data_root), "--epochs", str(epochs),
               "--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{loader_name} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare(data_root: Path, samples: int) -> None:
    from hsbench.data.prepared import prepare_dataset

    BenchHcv2.formats["generated"].count = samples
    start = time.perf_counter()
    report = prepare_dataset(BenchHcv2, data_root, data_root, progress=False)
    print(f"prepared {len(report.prepared)} new + {len(report.skipped)} existing samples of {BANDS} x {HEIGHT} x "
          f"{WIDTH} float32 ({BANDS * HEIGHT * WIDTH * 4 / 1e6:.0f} MB each) in {time.perf_counter() - start:.0f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--loaders", default="crops,harness")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="prepared data root to reuse (default: a temporary folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.keep, args.child, args.epochs, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench_loader_memory_") as tmp:
        data_root = args.keep or Path(tmp)
        prepare(data_root, args.samples)
        for name in args.loaders.split(","):
            result = measure(data_root, name, args.epochs, args.seed)
            peak, base = result["peak"], result["baseline"]
            verdict = "met" if peak["vm_hwm"] < TARGET_BYTES else "NOT met"
            print(f"{name:8s}: peak RSS {peak['vm_hwm'] / 1e9:.2f} GB (VmHWM; ru_maxrss, parent included, "
                  f"{peak['ru_maxrss'] / 1e9:.2f} GB), {base['vm_hwm'] / 1e9:.2f} GB after imports and open; "
                  f"{result['batches']} batches of "
                  f"{BATCH} in {result['seconds']:.1f} s; target < {TARGET_BYTES / 1e9:.1f} GB: {verdict}")


if __name__ == "__main__":
    main()
