"""Registry-driven: every registered strategy runs each of its smoke option sets end to end."""

from __future__ import annotations

import pytest

from hsbench.registry import STRATEGIES, names
from hsbench.runner import Runner, RunSpec

CASES = [
    (name, index)
    for name in names(STRATEGIES)
    for index in range(len(STRATEGIES.module_dict[name].smoke_options))
]


@pytest.mark.parametrize(("strategy", "index"), CASES)
@pytest.mark.parametrize("task", ["segmentation", "scene"])
def test_every_strategy_runs_end_to_end(tmp_path, tiny_registered, strategy: str, index: int, task: str) -> None:
    options = STRATEGIES.module_dict[strategy].smoke_options[index]
    split = "fraction=0.5" if task == "segmentation" else "kshot=10"
    outcome = Runner(tmp_path, progress=False).run(RunSpec(tiny_registered[task], strategy, split, 0, options))
    assert outcome.status == "completed", outcome.error
    # The tiny data are learnable from spectra alone: every strategy must beat chance (0.25 OA for 4 classes).
    assert outcome.test_metrics["oa"] > 0.3
