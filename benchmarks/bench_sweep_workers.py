"""Sweep throughput: finished trials per minute with 1 and with K worker processes sharing one journal study.

The quick search space: ``in_domain`` with the RBF SVM on ``synthetic_drive``, ``fraction=0.1``, C searched
on a log scale (``SvmLearner.search_space``), 2000 training pixels. A trial is seconds long, so the number
includes what parallel workers cost on top of the trials themselves: spawning processes (importing torch),
the claim lock, and journal reads and writes. Each worker count gets a fresh study with the same trial budget;
torch threads are split evenly between workers (``run_sweep``).

Two rates are printed: over the whole wall time (spawning workers and loading the dataset in each included)
and from the first trial's start to the last trial's end (steady state).

Usage: ``python benchmarks/bench_sweep_workers.py [--trials 12] [--workers 3]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from optuna.trial import TrialState

from hsbench.sweep import SweepConfig, SweepDefinition, open_study, run_sweep

QUICK = SweepDefinition("in_domain", "synthetic_drive", "fraction=0.1", 0, {"model": "svm", "svm_max_pixels": 2000})


def _rates(config: SweepConfig, seconds: float) -> tuple[float, float, int]:
    """(trials/min over the wall time, trials/min from the first trial's start to the last one's end, trials)."""
    trials = open_study(replace(config, definition=None)).get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    span_s = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return 60.0 * len(trials) / seconds, 60.0 * len(trials) / span_s, len(trials)


def measure(workers: int, trials: int, root: Path) -> tuple[float, float, int]:
    """Rates of one fresh sweep (see :func:`_rates`)."""
    config = SweepConfig(study=f"bench_{workers}", storage=str(root / "optuna.journal"), definition=QUICK,
                         trials=trials, results_dir=root, device="cpu")
    start = time.perf_counter()
    run_sweep(config, workers=workers)
    return _rates(config, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        for workers in (1, args.workers):
            wall, steady, finished = measure(workers, args.trials, Path(tmp) / f"w{workers}")
            rates[workers] = (wall, steady)
            print(f"{workers} worker(s), {finished} trials: {wall:.2f} trials/min over the wall time (start-up "
                  f"included), {steady:.2f} trials/min from first trial start to last trial end")
    print(f"ratio {args.workers} workers / 1 worker: {rates[args.workers][0] / rates[1][0]:.2f} wall, "
          f"{rates[args.workers][1] / rates[1][1]:.2f} steady ({os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
