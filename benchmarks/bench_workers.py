"""``hsbench benchmark --workers 2`` against ``--workers 1`` on the same small suite: wall-time ratio.

Each setting runs the whole suite from an empty results folder (same cells, same seeds), through the same code
path as the command line. One worker uses all cores for torch's intra-op threads; two workers take half each, so
the ratio measures what process-level parallelism buys over thread-level parallelism for small models. The
settings run in ABBA order (1, 2, 2, 1 workers) so that a load change on a shared machine biases neither side.

    python benchmarks/bench_workers.py [--suite FILE] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from hsbench.benchmark import BenchmarkConfig, run_benchmark
from hsbench.suite import load_suite

# 8 cells of a few seconds each: an RU-Net small enough that one cell does not saturate two cores by itself.
SMALL_SUITE = {
    "name": "bench_workers",
    "description": "in-domain RU-Net (width 8, 6 epochs) and an SVM on synthetic_drive, two fractions, two seeds",
    "seeds": [0, 1],
    "splits": ["fraction=0.05", "fraction=0.25"],
    "datasets": ["synthetic_drive"],
    "strategies": [
        {"strategy": "in_domain", "label": "runet-w8",
         "options": {"model": "runet", "model_options": {"base_channels": 8}, "epochs": 6}},
        {"strategy": "in_domain", "label": "svm", "options": {"model": "svm", "svm_max_pixels": 1000}},
    ],
}


def _time_suite(suite_file: Path, workers: int, home: Path) -> float:
    suite = load_suite(suite_file)
    with tempfile.TemporaryDirectory(dir=home) as results:
        config = BenchmarkConfig(results_dir=Path(results), device="cpu", workers=workers, progress=False)
        start = time.perf_counter()
        summary = run_benchmark(suite, config)
        wall = time.perf_counter() - start
    if not summary.complete:
        raise SystemExit(f"workers={workers}: {summary.states} {summary.errors}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, help="suite file (default: the small built-in one)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        suite_file = args.suite or home / "suite.yaml"
        if args.suite is None:
            suite_file.write_text(yaml.safe_dump(SMALL_SUITE))
        os.environ.setdefault("HSBENCH_HOME", str(home / "hsbench_home"))
        cells = len(load_suite(suite_file).cells())
        times = {1: [], 2: []}
        for workers in (1, 2, 2, 1):
            times[workers].append(_time_suite(suite_file, workers, home))
    one, two = sum(times[1]) / 2, sum(times[2]) / 2
    result = {"cells": cells, "cpus": len(os.sched_getaffinity(0)), "workers_1_s": [round(t, 1) for t in times[1]],
              "workers_2_s": [round(t, 1) for t in times[2]], "ratio_2_over_1": round(two / one, 3)}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
