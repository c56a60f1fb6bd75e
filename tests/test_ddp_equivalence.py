"""DDP: ``torchrun --nproc-per-node 2 ... hsbench run`` on CPU (gloo) matches one process with the same global
batch, and only rank 0 writes results.

Why the match can be (nearly) exact, and what breaks it:

* Every epoch is a single global batch (8 items, ``min_steps_per_epoch=1``), so the two ranks' halves together
  are exactly the one process's batch whatever the sampler's order (``DistributedSampler`` and the single
  process's ``RandomSampler`` draw different orders).
* Every image is fully labelled and all have the same size, so each rank's loss averages over the same number of
  pixels and DDP's mean of the two ranks' gradients equals the one process's gradient.
* The U-Net has no BatchNorm (per-rank batch statistics would differ; SyncBatchNorm would be needed), no dropout
  and no flips (both draw per-rank random numbers).

What remains is floating-point summation order (gloo's all-reduce adds two partial gradients). Test metrics must
agree within ``TOLERANCE`` absolute; in practice they are identical.

This module is also the torchrun entry point: run as a script it registers the tiny dataset (which exists only
in tests), then runs the real ``hsbench`` command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATASET = "tiny_ddp"
OPTIONS = {
    "model": "unet",
    "model_options": {"base_channels": 4, "depth": 2},
    "epochs": 25,
    "batch_size": 8,
    "min_steps_per_epoch": 1,
    "lr": 0.05,
    "hflip_p": 0.0,
}
CFG_OPTIONS = ["model=unet", "model_options.base_channels=4", "model_options.depth=2", "epochs=25", "batch_size=8",
               "min_steps_per_epoch=1", "lr=0.05", "hflip_p=0.0"]
TOLERANCE = 1e-3
"""Absolute tolerance on every test metric (summation order only; see the module docstring)."""


def _register_dataset() -> None:
    from conftest import register_tiny_provider

    register_tiny_provider(DATASET, unlabelled_fraction=0.0)


@pytest.fixture
def tiny_ddp():
    from hsbench.registry import DATASETS

    _register_dataset()
    yield DATASET
    DATASETS.module_dict.pop(DATASET, None)


def _torchrun(results: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", __file__,
               "run", "--strategy", "in_domain", "--dataset", DATASET, "--split", "official", "--device", "cpu",
               "--results", str(results), "--no-progress", "--cfg-options", *CFG_OPTIONS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=results.parent)


def test_two_process_ddp_matches_one_process_and_only_rank_0_writes(tmp_path, tiny_ddp) -> None:
    from hsbench.runner import Runner, RunSpec
    from hsbench.store import ResultsStore

    single = Runner(tmp_path / "single", progress=False).run(
        RunSpec(DATASET, "in_domain", "official", 0, OPTIONS)
    )
    assert single.status == "completed"

    result = _torchrun(tmp_path / "ddp")
    assert result.returncode == 0, result.stderr[-3000:]
    store = ResultsStore(tmp_path / "ddp" / "hsbench.db")
    runs = store.runs(status=None)
    assert list(runs["run_id"]) == [single.run_id]  # one row (rank 0's), same resolved configuration
    assert [p.name for p in (tmp_path / "ddp" / "runs").iterdir()] == [single.run_id]
    ddp_metrics = store.scalar_metrics([single.run_id]).loc[single.run_id]
    assert single.test_metrics["miou"] > 0.3  # it learned something, so agreement is not trivial
    for name, value in single.test_metrics.items():
        assert ddp_metrics[name] == pytest.approx(value, abs=TOLERANCE), name


if __name__ == "__main__":  # torchrun entry point: python tests/test_ddp_equivalence.py run ...
    sys.path.insert(0, str(Path(__file__).parent))
    _register_dataset()
    from hsbench.cli import main

    sys.exit(main(sys.argv[1:]))
