"""Feature stage of ``cross_domain``: cold extraction vs. a cache hit, and extraction throughput per model size.

Targets (issue 4): a second run on the same dataset and checkpoint spends at least 10x less time in the feature
stage; report pixels / s of feature extraction on this CPU for ``tiny`` and ``small``.

The feature stage of a run is what it spends before the head can train: making sure the cache is complete (cold:
extracting every image) plus reading the features of every image once. Weights are a fresh initialisation (the
cost does not depend on their values); the cache lives in a temporary ``HSBENCH_HOME``.

    OMP_NUM_THREADS=1 python benchmarks/bench_feature_cache.py [--dataset synthetic_drive] [--num-images 20]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time

import numpy as np
import torch

from hsbench.data.dataset import Dataset
from hsbench.features import FeatureCache, FrozenFeatures, extract_cube
from hsbench.models.spectral_fm import SIZES, SpectralFM
from hsbench.registry import DATASETS, lookup


def checkpoint_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def feature_stage(model: SpectralFM, dataset: Dataset, key: str) -> tuple[float, bool]:
    """Seconds to make the cache complete and read every image's features once; and whether it was a hit."""
    start = time.perf_counter()
    cache = FeatureCache(checkpoint_hash=key, dataset_fingerprint=dataset.fingerprint,
                         wavelengths_nm=dataset.card.wavelengths_nm)
    features = FrozenFeatures(model, dataset.card.wavelengths_nm, cache=cache)
    stats = cache.build(dataset, features.extract)
    for sample in dataset:
        features.raw(sample.cube)
    assert features.computed == (0 if stats["feature_cache_hit"] else len(dataset))
    return time.perf_counter() - start, bool(stats["feature_cache_hit"])


def throughput(size: str, wavelengths_nm: np.ndarray, pixels: int, repeats: int = 2) -> float:
    """Best-of-``repeats`` pixels / s of :func:`extract_cube` on random spectra."""
    torch.manual_seed(0)
    model = SpectralFM(SIZES[size]).eval()
    side = int(np.sqrt(pixels))
    cube = np.random.default_rng(0).random((len(wavelengths_nm), side, side), dtype=np.float32)
    extract_cube(model, cube[:, :8, :8], wavelengths_nm)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        extract_cube(model, cube, wavelengths_nm)
        best = min(best, time.perf_counter() - start)
    return side * side / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic_drive")
    parser.add_argument("--num-images", type=int, default=20, help="images of the synthetic dataset (default 20)")
    parser.add_argument("--size", default="tiny", help="model size of the cache measurement (default tiny)")
    parser.add_argument("--throughput-pixels", type=int, default=16384, help="pixels per throughput measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["HSBENCH_HOME"] = tempfile.mkdtemp(prefix="hsbench-bench-")
    dataset = lookup(DATASETS, args.dataset).open(num_images=args.num_images)
    pixels = sum(s.cube.shape[1] * s.cube.shape[2] for s in dataset)
    torch.manual_seed(0)
    model = SpectralFM(SIZES[args.size]).eval()
    key = checkpoint_hash(model)
    cold, cold_hit = feature_stage(model, dataset, key)
    warm, warm_hit = feature_stage(model, dataset, key)
    assert not cold_hit and warm_hit
    print(f"feature stage, {args.dataset} ({len(dataset)} images, {pixels} pixels, {dataset.card.num_bands} bands), "
          f"{args.size}, {args.threads} thread(s):")
    print(f"  first run (extract + read): {cold:8.2f} s")
    print(f"  second run (cache hit):     {warm:8.3f} s  -> {cold / warm:.0f}x faster (target >= 10x)")
    wavelengths = np.asarray(dataset.card.wavelengths_nm)
    for size in SIZES:
        rate = throughput(size, wavelengths, args.throughput_pixels if size == "tiny" else args.throughput_pixels // 4)
        print(f"  extraction throughput {size:>5}: {rate:10.0f} pixels / s ({dataset.card.num_bands} bands)")


if __name__ == "__main__":
    main()
