"""Sweep figures for the report: optimisation history, parameter importances, per-epoch val curves."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

__all__ = ["SWEEP_PLOTS", "write_sweep_plots"]

log = logging.getLogger("hsbench")


def _history(study: optuna.Study) -> Any:
    from optuna.visualization.matplotlib import plot_optimization_history

    return plot_optimization_history(study, target_name="val mIoU")


def _importances(study: optuna.Study) -> Any:
    from optuna.visualization.matplotlib import plot_param_importances

    # fANOVA with a fixed seed, so the same study always gives the same figure.
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return plot_param_importances(study, evaluator=evaluator, target_name="val mIoU")


def _intermediate(study: optuna.Study) -> Any:
    from optuna.visualization.matplotlib import plot_intermediate_values

    return plot_intermediate_values(study)


Trials = list[optuna.trial.FrozenTrial]

SWEEP_PLOTS: dict[str, tuple[Callable[[optuna.Study], Any], Callable[[Trials], bool]]] = {
    "optimization_history": (_history, lambda finished: len(finished) >= 1),
    "param_importances": (_importances, lambda finished: len(finished) >= 2),
    "intermediate_values": (_intermediate, lambda finished: any(t.intermediate_values for t in finished)),
}
"""Figure name -> (``plot(study) -> matplotlib Axes``, whether the finished trials can fill it)."""


def write_sweep_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Write every sweep figure the study has enough trials for as ``out_dir/<name>.png``.

    A figure that cannot be drawn (too few trials, no per-epoch reports, parameters that never vary) is skipped
    with a log line rather than failing the report.

    Returns:
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, (plot, can_show) in SWEEP_PLOTS.items():
        if not can_show(finished):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the matplotlib backend of optuna.visualization is experimental
                axes = plot(study)
        except (ValueError, RuntimeError) as exc:
            log.info("sweep plot %s of study %s skipped: %s", name, study.study_name, exc)
            continue
        figure = getattr(axes, "figure", None) or axes.flat[0].figure  # some plots return an array of axes
        figure.tight_layout()
        figure.savefig(out_dir / f"{name}.png", dpi=120)
        plt.close(figure)
        written.append(out_dir / f"{name}.png")
    return written
