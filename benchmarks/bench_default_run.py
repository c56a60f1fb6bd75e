"""Wall time of ``hsbench run --strategy in_domain`` with its defaults (synthetic_drive, fraction=0.1, seed 0).

Target (issue 2): under 2 minutes on the 2-core development machine. Runs the real console command in a fresh
results folder, so dataset generation, the split, training, evaluation and storage are all included.

    python benchmarks/bench_default_run.py [--model runet]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="in_domain model (default: the strategy's default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as results:
        command = [sys.executable, "-m", "hsbench", "run", "--strategy", "in_domain", "--results", results,
                   "--no-progress"] + (["--model", args.model] if args.model else [])
        start = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    print(completed.stdout)
    if completed.returncode != 0:
        print(completed.stderr, file=sys.stderr)
        raise SystemExit(completed.returncode)
    print(f"default in_domain run: {seconds:.1f} s wall (target < 120 s)")


if __name__ == "__main__":
    main()
