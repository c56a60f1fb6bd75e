"""Refit: re-run a study's best parameters as ordinary runs (test evaluated, stored) for several seeds."""

from __future__ import annotations

import optuna

from hsbench.errors import ConfigError
from hsbench.runner import Runner, RunOutcome
from hsbench.sweep._objective import trial_overrides
from hsbench.sweep._study import load_definition

__all__ = ["refit_best"]


def refit_best(study: optuna.Study, runner: Runner, seeds: list[int]) -> list[RunOutcome]:
    """Run the best trial's options once per seed, and tag the runs with the study.

    The runs are ordinary runs: their ids hash their resolved configuration, so a seed already run with the same
    options (by an earlier refit or by ``hsbench run``) is skipped and only tagged. Tuning used the definition's
    seed; reporting the mean over several seeds keeps the split and initialisation the sweep happened to favour
    from flattering the result.
    """
    definition = load_definition(study)
    try:
        best = study.best_trial
    except ValueError:
        raise ConfigError(f"study {study.study_name!r} has no completed trial to refit yet") from None
    overrides = trial_overrides(best)
    outcomes = [runner.run(definition.run_spec(overrides, seed=seed)) for seed in seeds]
    runner.store.tag_study([outcome.run_id for outcome in outcomes], study.study_name)
    return outcomes
