"""Plug-ins for the cluster-engine tests, importable by Slurm jobs and Ray workers (tests/ is put on PYTHONPATH).

``logged_fit`` appends ``<run id> <pid>`` to the file named by its ``log`` option each time it fits, then sleeps
``sleep_s``: the file shows which cells ran, how often and in which process, whatever process ran them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hsbench.registry import STRATEGIES
from hsbench.strategy import Strategy, StrategySpec

TESTS_DIR = Path(__file__).resolve().parent


class LoggedFitStrategy(Strategy):
    """Logs every fit to ``options['log']``; predicts class 0 everywhere."""

    name: ClassVar[str] = "logged_fit"
    spec: ClassVar[StrategySpec] = StrategySpec(description="test: logs every fit to a file")
    defaults: ClassVar[dict[str, Any]] = {"log": "", "sleep_s": 0.0}

    def fit(self, train, val):
        with open(self.cfg["log"], "a") as log:
            log.write(f"{self.ctx.work_dir.parent.name} {os.getpid()}\n")
        time.sleep(float(self.cfg["sleep_s"]))
        return {}

    def predict(self, sample):
        return np.zeros(sample.labels.shape, dtype=np.int64)


def register_engine_plugins() -> None:
    """The ``worker_init`` of every job: the tiny dataset and the logging strategy."""
    from conftest import register_tiny_provider

    STRATEGIES.register_module(name="logged_fit", module=LoggedFitStrategy, force=True)
    register_tiny_provider("tiny_segmentation")


def fits(log: Path) -> list[tuple[str, int]]:
    """``(run id, pid)`` of every fit logged so far."""
    if not log.exists():
        return []
    return [(run_id, int(pid)) for run_id, pid in (line.split() for line in log.read_text().splitlines())]
