"""Sweeps: val-only objective, pinned options, pruning, resuming, exact trial budgets over parallel workers,
a killed worker, refit on test, and the ``hsbench sweep`` command.

The toy strategy below trains nothing: its val score is a function of one parameter, so these tests measure the
sweep machinery, not training. Spawned worker processes import this module to register it (``register_plugins``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pytest
from conftest import register_tiny_provider
from optuna.trial import TrialState

from hsbench.errors import ConfigError
from hsbench.registry import DATASETS, STRATEGIES
from hsbench.store import ResultsStore
from hsbench.strategy import Strategy, StrategySpec
from hsbench.sweep import (
    Heartbeat,
    SweepConfig,
    SweepDefinition,
    open_study,
    run_sweep,
    run_worker,
    storage_kind,
    write_sweep_plots,
)
from hsbench.sweep._space import PinnedTrial, pinned_parameters, trial_options

HANG_ENV = "HSBENCH_TEST_SWEEP_HANG_FILE"
"""If set, the first trial to see this file missing creates it and hangs (the worker to kill)."""


class ToySweepStrategy(Strategy):
    """Predicts one class chosen by ``quality``; reports ``quality * epoch / epochs`` after each epoch."""

    name: ClassVar[str] = "toy_sweep"
    spec: ClassVar[StrategySpec] = StrategySpec(description="sweep test double")
    defaults: ClassVar[dict[str, Any]] = {"quality": 0.5, "epochs": 3, "nap_s": 0.0}
    predicted_ids: ClassVar[list[str]] = []

    def fit(self, train, val):
        hang_file = os.environ.get(HANG_ENV)
        if hang_file and not Path(hang_file).exists():
            Path(hang_file).write_text(str(os.getpid()))
            time.sleep(600)
        for epoch in range(1, self.cfg["epochs"] + 1):
            time.sleep(self.cfg["nap_s"])
            if self.ctx.epoch_callback is not None:
                self.ctx.epoch_callback(epoch, self.cfg["quality"] * epoch / self.cfg["epochs"])
        return {}

    def predict(self, sample):
        type(self).predicted_ids.append(sample.id)
        label = min(int(self.cfg["quality"] * self.card.num_classes), self.card.num_classes - 1)
        return np.full(sample.labels.shape, label, dtype=np.int64)

    @classmethod
    def search_space(cls, trial, options=None):
        return {"quality": trial.suggest_float("quality", 0.0, 1.0)}


def register_plugins() -> None:
    """Registers the toy strategy and the tiny dataset (also run in spawned workers)."""
    register_tiny_provider("tiny_segmentation")
    STRATEGIES.register_module(name="toy_sweep", module=ToySweepStrategy, force=True)


@pytest.fixture
def toy(tiny_registered):
    register_plugins()
    ToySweepStrategy.predicted_ids.clear()
    yield
    STRATEGIES.module_dict.pop("toy_sweep", None)


def _config(tmp_path: Path, *, trials: int, study: str = "toy", storage: str | None = None, **options) -> SweepConfig:
    return SweepConfig(
        study=study,
        storage=storage or str(tmp_path / "optuna.journal"),
        definition=SweepDefinition("toy_sweep", "tiny_segmentation", "official", 0, options),
        trials=trials,
        results_dir=tmp_path,
        device="cpu",
        heartbeat=Heartbeat(interval_s=1, grace_s=3),
        setup=register_plugins,
    )


def _states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_objective_is_val_miou_never_sees_test_and_stores_no_run(tmp_path, toy) -> None:
    summary = run_sweep(_config(tmp_path, trials=6, epochs=4))
    study = open_study(_config(tmp_path, trials=6, epochs=4))
    official = DATASETS.module_dict["tiny_segmentation"].open().card.official()
    assert set(ToySweepStrategy.predicted_ids) <= set(official.val)
    assert summary.finished == 6 and set(_states(study)) <= {"COMPLETE", "PRUNED"}
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert trial.value == trial.user_attrs["val_metrics"]["miou"]
        assert len(trial.intermediate_values) == 4  # one report per epoch
    assert ResultsStore(tmp_path / "hsbench.db").count_rows()["runs"] == 0


def test_median_pruner_stops_a_bad_trial_on_its_per_epoch_reports(tmp_path, toy) -> None:
    run_sweep(_config(tmp_path, trials=6, epochs=4))
    open_study(_config(tmp_path, trials=6, epochs=4)).enqueue_trial({"quality": 0.0})  # worse than all
    run_sweep(_config(tmp_path, trials=7, epochs=4))
    last = open_study(_config(tmp_path, trials=7, epochs=4)).trials[-1]
    assert last.state == TrialState.PRUNED and last.intermediate_values == {1: 0.0, 2: 0.0}  # warm-up: 1 epoch


def test_user_fixed_options_pin_their_parameters() -> None:
    from hsbench.options import merge_options
    from strategies.in_domain import InDomain

    overrides = {"model": "unet", "model_options": {"base_channels": 8}, "lr": 0.01}
    options = merge_options(InDomain.defaults, overrides, owner="in_domain")
    pinned = pinned_parameters(InDomain, options, overrides)
    assert pinned == {"base_channels": 8, "lr": 0.01}
    trial = optuna.create_study().ask()
    run_options = trial_options(PinnedTrial(trial, pinned), InDomain, options, overrides)
    assert run_options["model_options.base_channels"] == 8 and run_options["lr"] == 0.01
    assert "model_options.depth" in run_options  # still searched
    assert "base_channels" not in trial.params and "lr" not in trial.params


def test_existing_study_resumes_and_must_keep_its_definition(tmp_path, toy) -> None:
    run_sweep(_config(tmp_path, trials=2))
    summary = run_sweep(_config(tmp_path, trials=4))
    assert summary.finished == 4
    resumed = open_study(_config(tmp_path, trials=4)).trials
    assert [t.number for t in resumed] == [0, 1, 2, 3]
    run_sweep(_config(tmp_path / "again", trials=4))  # seeded: stopping and resuming changes nothing
    assert [t.params for t in open_study(_config(tmp_path / "again", trials=4)).trials] == [t.params for t in resumed]
    assert len({t.params["quality"] for t in resumed}) == 4
    with pytest.raises(ConfigError, match="pick another --study name"):
        run_sweep(_config(tmp_path, trials=5, epochs=9))


def check_three_workers_share_twelve_trials_exactly(tmp_path: Path, storage: str | None = None) -> None:
    """3 worker processes, a budget of 12: exactly 12 finished trials, none beyond, no parameters twice."""
    config = _config(tmp_path, trials=12, storage=storage, nap_s=0.1)
    summary = run_sweep(config, workers=3)
    trials = open_study(config).get_trials(deepcopy=False)
    assert not summary.failed_workers
    assert sorted(t.number for t in trials) == list(range(12))  # no trial beyond the budget
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert len({t.params["quality"] for t in trials}) == 12  # no parameter set drawn twice


def check_killed_worker_leaves_its_trial_failed(tmp_path: Path, monkeypatch, storage: str | None = None) -> None:
    """SIGKILL a worker mid-trial: its trial ends FAIL (heartbeat went stale) and another worker completes."""
    hang_file = tmp_path / "hanging_worker"
    monkeypatch.setenv(HANG_ENV, str(hang_file))
    config = _config(tmp_path, trials=3, storage=storage)
    open_study(config)
    victim = multiprocessing.get_context("spawn").Process(target=_spawned_worker, args=(config,))
    victim.start()
    deadline = time.monotonic() + 60
    while not hang_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hang_file.exists(), "the victim worker never started its trial"
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    report = run_worker(config, worker=1)  # sees the trial RUNNING, then stale after the grace period
    trials = open_study(config).get_trials(deepcopy=False)
    assert [t.state for t in trials].count(TrialState.FAIL) == 1 and trials[0].state == TrialState.FAIL
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3
    assert sum(report.counts.values()) == 3


def test_three_workers_share_twelve_trials_exactly(tmp_path, toy) -> None:
    check_three_workers_share_twelve_trials_exactly(tmp_path)


def test_killed_worker_leaves_its_trial_failed_and_the_study_completes(tmp_path, toy, monkeypatch) -> None:
    check_killed_worker_leaves_its_trial_failed(tmp_path, monkeypatch)


def _spawned_worker(config: SweepConfig) -> None:
    config.setup()
    run_worker(config)


def _sweep_cli(argv: list[str]) -> int:
    """``hsbench sweep ARGS`` through the parser and command this module adds to the CLI."""
    from hsbench.cli import sweep

    parser = argparse.ArgumentParser(prog="hsbench")
    sweep.add_parser(parser.add_subparsers(dest="command"))
    return sweep.run(parser.parse_args(["sweep", *argv]))


def test_cli_sweep_plots_and_refit_best_as_tagged_runs(tmp_path, toy, capsys) -> None:
    common = ["--study", "cli", "--results", str(tmp_path), "--no-progress", "--reports", str(tmp_path / "reports")]
    assert _sweep_cli(["--strategy", "toy_sweep", "--dataset", "tiny_segmentation", "--split", "official",
                       "--trials", "3", "--cfg-options", "epochs=2", *common]) == 0
    assert "3 finished trials" in capsys.readouterr().out
    assert (tmp_path / "reports" / "sweeps" / "cli" / "optimization_history.png").is_file()
    assert _sweep_cli(["--refit-best", "--seeds", "0,1", *common]) == 0
    runs = ResultsStore(tmp_path / "hsbench.db").runs()
    assert len(runs) == 2 and set(runs["study"]) == {"cli"} and sorted(runs["seed"]) == [0, 1]
    best = open_study(_config(tmp_path, trials=3, study="cli", epochs=2)).best_trial
    assert all(config["options"]["quality"] == best.params["quality"] for config in runs["config"])
    assert "Test metrics of study cli" in capsys.readouterr().out


def test_write_sweep_plots_skips_what_too_few_trials_cannot_show(tmp_path) -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(params={"x": 0.5}, distributions={
        "x": optuna.distributions.FloatDistribution(0, 1)}, value=0.3))
    written = write_sweep_plots(study, tmp_path)
    assert [p.name for p in written] == ["optimization_history.png"]


def test_storage_kinds_and_sqlite_is_refused_for_parallel_workers(tmp_path, toy) -> None:
    assert storage_kind(str(tmp_path / "x.journal")).parallel
    assert storage_kind("postgresql+psycopg://u@localhost/db").parallel
    with pytest.raises(ConfigError, match="unsupported sweep storage"):
        storage_kind("mysql://u@localhost/db")
    with pytest.raises(ConfigError, match="cannot be shared"):
        run_sweep(_config(tmp_path, trials=2, storage=f"sqlite:///{tmp_path / 'optuna.db'}"), workers=2)


def test_store_adds_new_columns_to_an_older_database(tmp_path) -> None:
    path = tmp_path / "old.db"
    ResultsStore(path)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN study")
    ResultsStore(path).tag_study(["none"], "s")
    with sqlite3.connect(path) as conn:
        assert "study" in {row[1] for row in conn.execute("PRAGMA table_info(runs)")}


def test_a_sweep_config_asking_for_tensorboard_is_one_line(tmp_path) -> None:
    """Trials log no curves, so a run config with ``tensorboard: true`` is refused, not silently ignored."""
    from hsbench.errors import ConfigError

    config = tmp_path / "sweep.yaml"
    config.write_text("strategy: in_domain\ntensorboard: true\n")
    with pytest.raises(ConfigError, match="sweep trials write no TensorBoard curves"):
        _sweep_cli(["--config", str(config), "--study", "tb", "--results", str(tmp_path), "--trials", "1"])
