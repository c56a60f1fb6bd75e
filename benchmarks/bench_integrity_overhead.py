"""What integrity checks cost: a warm ``cross_domain`` run with and without verification, and hash speeds.

Issue 12's target: verifying zoo weights and feature-cache files may add at most 2 % to the wall time of a
``cross_domain`` run whose zoo artifact and feature cache are already built. Both variants run in one process,
interleaved A B B A (A: verification on, B: ``verify`` replaced by a no-op) so that drift of a shared machine
falls on both equally; the per-process hash memo is cleared before every run, so each verified run pays what a
fresh process pays. Each run writes to its own results folder (a completed run would be skipped); the zoo and
the feature cache live in one temporary ``HSBENCH_HOME``, built by a warm-up run that is not timed.

The hash speeds (MB/s, 256 MiB in 1 MiB chunks, best of 3) are what chose SHA-256 (``hsbench/integrity.py``).

    OMP_NUM_THREADS=1 python benchmarks/bench_integrity_overhead.py [--pairs 2] [--epochs 40] [--smoke]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def hash_speeds(megabytes: int = 256) -> dict[str, float]:
    """MB/s of each candidate hash on this CPU (optional ones only when installed)."""
    candidates: dict[str, Callable[[], Any]] = {"sha256": hashlib.sha256, "blake2b": hashlib.blake2b}
    try:
        import xxhash

        candidates["xxh3_128"] = xxhash.xxh3_128
    except ImportError:
        pass
    try:
        import blake3

        candidates["blake3"] = blake3.blake3
    except ImportError:
        pass
    data = memoryview(os.urandom(megabytes << 20))
    speeds = {}
    for name, make in candidates.items():
        best = float("inf")
        for _ in range(3):
            start, digest = time.perf_counter(), make()
            for offset in range(0, len(data), 1 << 20):
                digest.update(data[offset : offset + (1 << 20)])
            digest.hexdigest()
            best = min(best, time.perf_counter() - start)
        speeds[name] = len(data) / best / 1e6
    return speeds


def _no_verify(path: Path, expected: str, **_: Any) -> str:
    return expected


VERIFY_SECONDS: list[float] = []
"""Time spent inside ``verify`` during verified runs (the part of the run that verification adds)."""


def _timed_verify(path: Path, expected: str, **kwargs: Any) -> str:
    from hsbench.integrity import verify

    start = time.perf_counter()
    try:
        return verify(path, expected, **kwargs)
    finally:
        VERIFY_SECONDS[-1] += time.perf_counter() - start


def timed_run(dataset: str, split: str, options: dict[str, Any], *, verified: bool, results: Path) -> float:
    """Wall seconds of one ``cross_domain`` run (its own results folder), verification on or off."""
    import hsbench.features
    import hsbench.zoo
    from hsbench.integrity import forget, verify
    from hsbench.runner import Runner, RunSpec

    forget()
    VERIFY_SECONDS.append(0.0)
    check = _timed_verify if verified else _no_verify
    hsbench.zoo.verify = hsbench.features.verify = check
    try:
        start = time.perf_counter()
        outcome = Runner(results, progress=False).run(RunSpec(dataset, "cross_domain", split, 0, options))
        seconds = time.perf_counter() - start
    finally:
        hsbench.zoo.verify = hsbench.features.verify = verify
    if outcome.status != "completed":
        raise SystemExit(f"run failed: {outcome.error}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic_drive")
    parser.add_argument("--split", default="fraction=0.05")
    parser.add_argument("--pairs", type=int, default=2, help="ABBA blocks (each: 2 verified, 2 unverified runs)")
    parser.add_argument("--epochs", type=int, help="head epochs (default: the strategy's)")
    parser.add_argument("--smoke", action="store_true", help="the strategy's smallest FM and pretraining")
    args = parser.parse_args()

    for name, speed in hash_speeds().items():
        print(f"hash {name:9s} {speed:8.0f} MB/s", flush=True)

    home = Path(tempfile.mkdtemp(prefix="hsbench-integrity-"))
    os.environ["HSBENCH_HOME"] = str(home)
    from strategies.cross_domain import _SMOKE_FM

    options: dict[str, Any] = dict(_SMOKE_FM) if args.smoke else {}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    start = time.perf_counter()
    timed_run(args.dataset, args.split, options, verified=True, results=home / "warmup")
    print(f"warm-up (pretraining + feature extraction): {time.perf_counter() - start:.1f} s", flush=True)
    checked = sorted((home / "zoo").rglob("*.safetensors")) + sorted((home / "features").rglob("*.npy"))
    size = sum(p.stat().st_size for p in checked)
    from hsbench.integrity import file_hash, forget

    forget()
    start = time.perf_counter()
    for path in checked:
        file_hash(path)
    hashing = time.perf_counter() - start
    print(f"verified per run: {len(checked)} files, {size / 1e6:.1f} MB, hashed in {1000 * hashing:.1f} ms "
          "(page cache warm, memo cleared)", flush=True)

    times: dict[bool, list[float]] = {True: [], False: []}
    for block in range(args.pairs):
        for verified in (True, False, False, True):
            seconds = timed_run(args.dataset, args.split, options, verified=verified,
                                results=home / f"r{block}-{len(times[verified])}-{verified}")
            times[verified].append(seconds)
            inside = f" ({1000 * VERIFY_SECONDS[-1]:.1f} ms in verify)" if verified else ""
            print(f"  {'verified  ' if verified else 'unverified'} {seconds:.2f} s{inside}", flush=True)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    verified_inside = [v for v in VERIFY_SECONDS[1:] if v > 0]
    print(f"median verified {on:.2f} s, unverified {off:.2f} s, wall ratio {on / off:.4f} (target <= 1.02)")
    print(f"time inside verify per verified run: median {1000 * statistics.median(verified_inside):.1f} ms = "
          f"{100 * statistics.median(verified_inside) / off:.3f} % of an unverified run "
          f"(cold hashing of the files: {1000 * hashing:.1f} ms)")


if __name__ == "__main__":
    main()
