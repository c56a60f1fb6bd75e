"""Seconds to generate every image of the three embedded synthetic datasets at their default sizes.

Target: under 10 s in all on one core (the whole suite must run on a 2-core machine, and every run that opens a
synthetic dataset pays this once). Timing includes the content fingerprint, which hashes every array.

    python benchmarks/bench_synthetic_generation.py [--repeat 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

from threadpoolctl import threadpool_limits

from hsbench.registry import DATASETS, lookup

NAMES = ("synthetic_drive", "synthetic_hyko", "synthetic_aerial")


def time_open(name: str, seed: int) -> tuple[float, int, tuple[int, ...]]:
    """Seconds to open (generate and fingerprint) one dataset, its number of images and its cube shape."""
    provider = lookup(DATASETS, name)
    start = time.perf_counter()
    dataset = provider.open(seed=seed)
    seconds = time.perf_counter() - start
    return seconds, len(dataset), dataset.load(dataset.sample_ids[0]).cube.shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of this many timings per dataset")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    total = 0.0
    with threadpool_limits(1):
        for name in NAMES:
            seconds, images, shape = min(time_open(name, args.seed) for _ in range(args.repeat))
            total += seconds
            what = f"{images} images, cube {shape}"
            print(f"{name:17s} {what:32s} {seconds:6.2f} s  ({1000 * seconds / images:.0f} ms per image)")
    print(f"{'total':17s} {'':32s} {total:6.2f} s  (target: under 10 s on one core)")


if __name__ == "__main__":
    main()
