"""A strategy that can be made to hang in ``fit`` (via an environment variable that is not part of its options,
so the run id is the same whether it hangs or not). Used by the SIGKILL test, also as a subprocess script."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hsbench.registry import STRATEGIES
from hsbench.strategy import Strategy, StrategySpec

SPEC_ARGS = ("tiny_segmentation", "slow", "fraction=0.5", 0)


class SlowStrategy(Strategy):
    name: ClassVar[str] = "slow"
    spec: ClassVar[StrategySpec] = StrategySpec(description="hangs in fit when HSBENCH_TEST_HANG is set")
    defaults: ClassVar[dict[str, Any]] = {}

    def fit(self, train, val):
        if os.environ.get("HSBENCH_TEST_HANG"):
            time.sleep(120)
        return {}

    def predict(self, sample):
        return np.zeros(sample.labels.shape, dtype=np.int64)


def register() -> None:
    STRATEGIES.register_module(name="slow", module=SlowStrategy, force=True)


if __name__ == "__main__":  # python tests/slow_strategy.py RESULTS_DIR
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import register_tiny_provider

    from hsbench.runner import Runner, RunSpec

    register()
    register_tiny_provider("tiny_segmentation")
    Runner(Path(sys.argv[1]), progress=False).run(RunSpec(*SPEC_ARGS))
