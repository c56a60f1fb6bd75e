"""``.hsd`` decoding speed: ``hsbench.data.hs3bench.read_hsd`` against a reader that unpacks one float per call.

Target: >= 50x faster on a full-size HCV2 file (1422 x 1889 px, 128 bands), with identical output.

The reference is the pattern of the publicly circulated HCV2 reader: ``struct.unpack`` on 4 bytes at a time for
every float of the averages, coefficients and scores (stored into numpy arrays), then the reconstruction
``scores @ coeffs + averages`` with numpy and a reshape to (height, width, bands). Its time has two parts:

* parsing, one float per call: over a full-size file (67 million floats at D = 25) that is many seconds of
  single-core Python, so it is run on the first ``--reference-rows`` image rows only and extrapolated
  *linearly* to the full height (every row holds the same number of floats; the fixed part, header, averages
  and coefficients, is timed on its own and added once);
* the numpy reconstruction: measured at full size (median of ``--repeats``) on the same float values, since
  it does not depend on how the floats were parsed; extrapolating it from a few rows would scale one-off
  allocation costs.

The reference's output for its rows is compared bit for bit with the same rows of the hsbench reader's
full-size output. For scale, the benchmark also times the floor any reader pays: allocating and writing a fresh
float32 array of the cube's size (1.4 GB); the reference's time over that floor bounds every possible speed-up.

The file is generated: PCA scores with decaying variance per component (like real PCA scores), random
components and band means; ``--components`` D = 25 by default (a realistic PCA size for 128 bands). hsbench's
reader is timed ``--repeats`` times after one untimed warm-up (page cache and first allocation of the 1.4 GB
output), and the median is used. BLAS threads follow the environment (``OPENBLAS_NUM_THREADS``); on a machine
shared with other jobs, ``OPENBLAS_NUM_THREADS=1`` gives steadier numbers.

Usage::

    python benchmarks/bench_hsd_reader.py [--height 1422] [--width 1889] [--components 25] [--reference-rows 32]
"""

from __future__ import annotations

import argparse
import statistics
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from hsbench.data.hs3bench.hsd import read_hsd, write_hsd

BANDS = 128
TARGET_RATIO = 50.0


def make_file(path: Path, height: int, width: int, components: int, seed: int) -> None:
    """A full-size .hsd file with PCA-like scores (variance falling with the component index)."""
    rng = np.random.default_rng(seed)
    scales = (1.0 / np.arange(1, components + 1)).astype(np.float32)
    scores = rng.standard_normal((height, width, components), dtype=np.float32) * scales
    coeffs = rng.standard_normal((components, BANDS), dtype=np.float32) / np.sqrt(BANDS, dtype=np.float32)
    averages = rng.uniform(0.05, 0.6, BANDS).astype(np.float32)
    write_hsd(path, scores, coeffs, averages)


def _unpack_floats(f, count: int) -> np.ndarray:
    """The reference's inner loop: one ``struct.unpack`` call per float."""
    values = np.zeros(count, dtype=np.float32)
    for i in range(count):
        values[i] = struct.unpack("<f", f.read(4))[0]
    return values


def reference_read(path: Path, rows: int) -> tuple[np.ndarray, dict[str, float]]:
    """The first ``rows`` image rows by the one-float-per-call reader, with the time of its parsing phases."""
    times = {}
    start = time.perf_counter()
    with path.open("rb") as f:
        height, width, bands, components, _start_nm = struct.unpack("<5i", f.read(20))
        struct.unpack("<f", f.read(4)), struct.unpack("<i", f.read(4))
        averages = _unpack_floats(f, bands)
        coeffs = _unpack_floats(f, components * bands).reshape(components, bands)
        times["fixed"] = time.perf_counter() - start
        start = time.perf_counter()
        scores = _unpack_floats(f, rows * width * components).reshape(rows * width, components)
        times["scores"] = time.perf_counter() - start
    cube = (scores @ coeffs + averages).reshape(rows, width, bands)
    return cube.transpose(2, 0, 1), times


def reference_reconstruction_s(path: Path, repeats: int) -> float:
    """Median time of the reference's numpy reconstruction at full size (floats parsed in bulk, same values)."""
    height, width, bands, components = (int(v) for v in np.fromfile(path, "<i4", count=4))
    floats = np.fromfile(path, "<f4", offset=28)
    averages, coeffs = floats[:bands], floats[bands : bands * (1 + components)].reshape(components, bands)
    scores = floats[bands * (1 + components) :].reshape(height * width, components)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        cube = (scores @ coeffs + averages).reshape(height, width, bands)
        times.append(time.perf_counter() - start)
        del cube
    return statistics.median(times)


def fresh_cube_floor_s(height: int, width: int, repeats: int) -> float:
    """Median time to allocate and write a fresh float32 array of the cube's size: no reader can beat it."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        cube = np.full((BANDS, height, width), 1.0, dtype=np.float32)
        times.append(time.perf_counter() - start)
        del cube
    return statistics.median(times)


def time_hsbench(path: Path, repeats: int) -> tuple[float, list[float], np.ndarray]:
    read_hsd(path, bands=BANDS)  # warm-up: page cache, first touch of a 1.4 GB allocation
    times, cube = [], None
    for _ in range(repeats):
        del cube
        start = time.perf_counter()
        cube = read_hsd(path, bands=BANDS)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, cube


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=1422)
    parser.add_argument("--width", type=int, default=1889)
    parser.add_argument("--components", type=int, default=25)
    parser.add_argument("--reference-rows", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = min(args.reference_rows, args.height)
    with tempfile.TemporaryDirectory(prefix="bench_hsd_") as tmp:
        path = Path(tmp) / "full_size.hsd"
        make_file(path, args.height, args.width, args.components, args.seed)
        print(f".hsd {args.height} x {args.width} px, {BANDS} bands, D = {args.components}: "
              f"{path.stat().st_size / 1e6:.0f} MB file, {args.height * args.width * BANDS * 4 / 1e9:.2f} GB cube")
        ours, ours_all, cube = time_hsbench(path, args.repeats)
        reference, phases = reference_read(path, rows)
        reconstruct = reference_reconstruction_s(path, args.repeats)
    floor = fresh_cube_floor_s(args.height, args.width, args.repeats)
    identical = bool(np.array_equal(reference, cube[:, :rows, :]))
    parse = phases["fixed"] + phases["scores"] * args.height / rows
    ratio = (parse + reconstruct) / ours
    runs = ", ".join(f"{t:.3f}" for t in ours_all)
    print(f"hsbench read_hsd, full file         : median {ours:.3f} s (runs {runs})")
    print(f"reference parse, {rows} rows measured  : {phases['fixed'] + phases['scores']:.3f} s "
          f"({phases['scores'] / (rows * args.width * args.components) * 1e6:.3f} us per float)")
    print(f"reference parse, extrapolated x{args.height / rows:.1f}: {parse:.2f} s")
    print(f"reference reconstruction, full size : {reconstruct:.3f} s (measured)")
    print(f"reference total                     : {parse + reconstruct:.2f} s")
    print(f"identical output on the {rows} reference rows: {identical}")
    print(f"floor: writing a fresh cube-sized array takes {floor:.3f} s, so no reader can exceed "
          f"{(parse + reconstruct) / floor:.0f}x here")
    print(f"speed-up {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")
    return ratio


if __name__ == "__main__":
    main()
