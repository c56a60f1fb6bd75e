"""The objective of a sweep trial: fit with suggested options, return val mIoU; prune on per-epoch val scores."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from hsbench.runner import Runner
from hsbench.strategy import resolve_strategy
from hsbench.sweep._space import PinnedTrial, pinned_parameters, trial_options
from hsbench.sweep._study import SweepDefinition

__all__ = ["make_objective", "trial_overrides", "OPTIONS_ATTR"]

OPTIONS_ATTR = "options"
"""Trial user attribute holding the run overrides the trial trained with (what ``--refit-best`` re-runs)."""


def _pruning_callback(trial: optuna.Trial) -> Callable[[int, float], None]:
    """Feeds every per-epoch val score to the pruner; raises :class:`optuna.TrialPruned` when it says stop."""

    def report(epoch: int, val_score: float) -> None:
        if math.isfinite(val_score):
            trial.report(val_score, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} (val mIoU {val_score:.4f})")

    return report


def make_objective(
    runner: Runner, definition: SweepDefinition, trials_dir: Path
) -> Callable[[optuna.Trial], float]:
    """``objective(trial) -> val mIoU`` for :meth:`optuna.Study.tell`.

    Each trial fits through :meth:`Runner.validate` (no test view, nothing stored among runs); its log goes to
    ``trials_dir/trial-NNNN/log.txt`` and its work files are deleted afterwards.
    """
    strategy_cls, options = resolve_strategy(definition.strategy, definition.overrides, definition.dataset)
    pinned = pinned_parameters(strategy_cls, options, definition.overrides)

    def objective(trial: optuna.Trial) -> float:
        overrides = trial_options(PinnedTrial(trial, pinned), strategy_cls, options, definition.overrides)
        trial.set_user_attr(OPTIONS_ATTR, overrides)
        run_dir = trials_dir / f"trial-{trial.number:04d}"
        try:
            outcome = runner.validate(
                definition.run_spec(overrides), run_dir=run_dir, epoch_callback=_pruning_callback(trial)
            )
        finally:
            shutil.rmtree(run_dir / "work", ignore_errors=True)
        trial.set_user_attr("run_id", outcome.run_id)
        trial.set_user_attr("val_metrics", {key: float(value) for key, value in outcome.val_metrics.items()})
        trial.set_user_attr("fit_s", float(outcome.timings.get("fit", 0.0)))
        return float(outcome.val_metrics["miou"])

    return objective


def trial_overrides(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The run overrides a finished trial trained with."""
    return dict(trial.user_attrs[OPTIONS_ATTR])
