"""A sweep's definition and configuration, and opening (creating or resuming) its Optuna study.

The definition (strategy, dataset, split, seed, fixed options) is stored in the study when it is created. A
resumed sweep must match it and ``--refit-best`` reads it back, so one study name can never mix trials of
different problems.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from hsbench.errors import ConfigError
from hsbench.names import check_name
from hsbench.options import canonical_json
from hsbench.runner import RunSpec
from hsbench.sweep._storage import Heartbeat, open_storage

__all__ = ["SweepDefinition", "SweepConfig", "SweepSummary", "open_study", "load_definition", "summarize",
           "trial_sampler"]

_DEFINITION_ATTR = "hsbench:definition"
OBJECTIVE = "val miou"
"""What every study maximises: mIoU on the split's val part (test is never looked at while tuning)."""


@dataclass(frozen=True)
class SweepDefinition:
    """What a study optimises.

    Attributes:
        strategy: registered strategy name.
        dataset: registered dataset name.
        split: split spec (``fraction=0.1``, ``kshot=5``, ...).
        seed: seed of every trial's run (split, initialisation, data order).
        overrides: options the user fixed (never sampled; they pin the parameters that would set them).
    """

    strategy: str
    dataset: str
    split: str = "fraction=0.1"
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)

    def run_spec(self, options: dict[str, Any], seed: int | None = None) -> RunSpec:
        return RunSpec(self.dataset, self.strategy, self.split, self.seed if seed is None else seed, options)

    def to_attr(self) -> dict[str, Any]:
        return {**asdict(self), "objective": OBJECTIVE}

    @classmethod
    def from_attr(cls, attr: dict[str, Any]) -> SweepDefinition:
        return cls(**{key: value for key, value in attr.items() if key != "objective"})


@dataclass(frozen=True)
class SweepConfig:
    """How to run a sweep: which study, where, how many trials, and where runs read and write.

    Attributes:
        study: study name (one path component: see :func:`hsbench.names.check_name`).
        storage: journal file path or database URL (see :data:`hsbench.sweep.STORAGE_KINDS`).
        definition: what to optimise; ``None`` to take it from an existing study.
        trials: the study's budget of finished (complete or pruned) trials, counted over all workers and
            sessions; failed trials do not count.
        timeout_s: a worker claims no new trial after this many seconds.
        results_dir: the runner's results folder; trial logs go to ``<results_dir>/sweeps/<study>/``.
        db: results database (used by ``--refit-best`` only; trials are never stored there).
        data_root: where prepared real datasets live.
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        sampler_seed: seed of the TPE sampler (trial ``n`` draws from stream ``(sampler_seed, n)``).
        heartbeat: liveness settings of running trials.
        max_consecutive_failures: a worker stops after this many failed trials in a row (a broken configuration
            must not loop forever, since failed trials do not use up the budget).
        setup: called first in every spawned worker process (register plug-ins, configure logging), since a
            spawned process starts with nothing of this one; must be picklable.
    """

    study: str
    storage: str
    definition: SweepDefinition | None = None
    trials: int = 20
    timeout_s: float | None = None
    results_dir: Path = Path("results")
    db: str | None = None
    data_root: Path | None = None
    device: str = "auto"
    sampler_seed: int = 0
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    max_consecutive_failures: int = 3
    setup: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        check_name(self.study, "study name")  # it names <results>/sweeps/<study>/ and the report's plot folder

    @property
    def trials_dir(self) -> Path:
        return self.results_dir / "sweeps" / self.study


@dataclass(frozen=True)
class SweepSummary:
    """Trial counts by state, the best trial so far, and the worker processes that exited with an error."""

    study: str
    counts: dict[str, int]
    best_value: float | None
    best_params: dict[str, Any]
    best_number: int | None
    failed_workers: tuple[str, ...] = ()

    @property
    def finished(self) -> int:
        return self.counts.get("COMPLETE", 0) + self.counts.get("PRUNED", 0)


def trial_sampler(seed: int, trial_number: int) -> optuna.samplers.BaseSampler:
    """The TPE sampler that samples trial ``trial_number``: its random stream is ``(seed, trial_number)``.

    Trial numbers are unique within a study, so no two trials share a stream, whichever worker or machine runs
    them (per-worker streams would repeat the random start-up draws of another machine's worker, or of an
    earlier session of a resumed study); a one-worker sweep is reproducible. The constant liar makes TPE treat
    running trials as bad, so parallel workers spread out.
    """
    stream = int(np.random.SeedSequence([seed, trial_number]).generate_state(1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=stream, constant_liar=True)


def _pruner() -> optuna.pruners.BasePruner:
    # Median pruning on the per-epoch val score; the first epoch (step 1: epochs count from 1) is too noisy to
    # judge on, and the first five trials set the median.
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)


def open_study(config: SweepConfig) -> optuna.Study:
    """Create the study or resume it; checks (or records) its definition.

    The study's sampler must be replaced by :func:`trial_sampler` for each trial it samples (the workers do).

    Raises:
        ConfigError: the study exists with another definition, or does not exist and no definition is given.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # RDB heartbeat
        storage = open_storage(config.storage, config.heartbeat)
    sampler = trial_sampler(config.sampler_seed, 0)
    if config.definition is None:
        try:
            return optuna.load_study(study_name=config.study, storage=storage, sampler=sampler, pruner=_pruner())
        except KeyError:
            raise ConfigError(f"no study {config.study!r} in {config.storage}: run a sweep first") from None
    study = optuna.create_study(study_name=config.study, storage=storage, sampler=sampler, pruner=_pruner(),
                                direction="maximize", load_if_exists=True)
    _check_definition(study, config.definition, config.storage)
    return study


def _check_definition(study: optuna.Study, definition: SweepDefinition, storage: str) -> None:
    stored = study.user_attrs.get(_DEFINITION_ATTR)
    wanted = definition.to_attr()
    if stored is None:
        study.set_user_attr(_DEFINITION_ATTR, wanted)
    elif canonical_json(stored) != canonical_json(wanted):
        raise ConfigError(
            f"study {study.study_name!r} in {storage} was created for {canonical_json(stored)}, not "
            f"{canonical_json(wanted)}: pick another --study name to tune a different problem"
        )


def load_definition(study: optuna.Study) -> SweepDefinition:
    stored = study.user_attrs.get(_DEFINITION_ATTR)
    if stored is None:
        raise ConfigError(f"study {study.study_name!r} was not created by hsbench sweep (no definition)")
    return SweepDefinition.from_attr(stored)


def summarize(study: optuna.Study) -> SweepSummary:
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    return SweepSummary(
        study.study_name,
        counts,
        None if best is None else float(best.value),
        {} if best is None else dict(best.params),
        None if best is None else best.number,
    )
