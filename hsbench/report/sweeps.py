"""Sweep plots in the report: every Optuna study of the sweep storage, drawn by :mod:`hsbench.sweep`'s plots.

The storage is what ``hsbench sweep`` writes: a journal file (default ``results/optuna.journal``) or a database
URL. No storage, or no study with finished trials, means no sweep section; a sweep never blocks a report.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from hsbench.report.figures import FigureFile, save_figure, slug
from hsbench.report.results import ReportData

__all__ = ["sweep_figures"]

log = logging.getLogger("hsbench")


def sweep_figures(data: ReportData, out_dir: Path) -> list[FigureFile]:
    location = data.sweep_storage
    if not location or ("://" not in location and not Path(location).is_file()):
        return []
    import optuna

    from hsbench.sweep import open_storage

    storage = open_storage(location)
    figures = []
    for name in optuna.get_all_study_names(storage):
        figures += _study_figures(optuna.load_study(study_name=name, storage=storage), out_dir)
    return figures


def _study_figures(study, out_dir: Path) -> list[FigureFile]:
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    from hsbench.sweep import SWEEP_PLOTS

    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    figures = []
    for kind, (plot, can_show) in SWEEP_PLOTS.items():
        if not can_show(finished):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna's matplotlib plots are marked experimental
                axes = plot(study)
        except (ValueError, RuntimeError) as exc:
            log.info("sweep plot %s of study %s skipped: %s", kind, study.study_name, exc)
            continue
        figure = getattr(axes, "figure", None) or axes.flat[0].figure  # some plots return an array of axes
        figures.append(save_figure(figure, out_dir, f"sweep_{slug(study.study_name)}_{kind}", section="Sweeps",
                                   title=f"study {study.study_name}: {kind.replace('_', ' ')}"))
        plt.close(figure)
    return figures
