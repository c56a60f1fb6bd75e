"""A run's stored model evaluated on another dataset or split (``hsbench evaluate``).

The evaluated dataset is opened, split and viewed exactly as the runner does (the run's split spec and seed by
default, its guard band for a disjoint split, the test part), the model predicts through
:func:`hsbench.evaluation.evaluate_view` and the metrics come from one confusion matrix, so evaluating a run on
its own dataset and split reproduces its stored test metrics exactly. Another dataset's class names are matched
to the model's through a class map (:mod:`hsbench.class_map`); its bands must be the model's
(:func:`hsbench.saved_model.check_input_bands`).

The result is one row of the ``evaluations`` table, linked to the run; its id hashes run, dataset, split, part
and class map, so evaluating the same thing again replaces the row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hsbench
from hsbench.class_map import ClassMapping, resolve_class_map
from hsbench.config_files import did_you_mean
from hsbench.data.dataset import Sample
from hsbench.data.dataset_spec import open_dataset
from hsbench.errors import ConfigError, DataError
from hsbench.evaluation import evaluate_view
from hsbench.metrics import compute_metrics, per_class_metrics
from hsbench.options import config_hash
from hsbench.run_lookup import find_run, run_folder
from hsbench.splits import PARTS, Split, make_split
from hsbench.store import ResultsStore

__all__ = ["Evaluation", "evaluate_run", "evaluation_id", "score_view", "scored_classes"]


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: what was evaluated and its results (fractions at full precision)."""

    evaluation_id: str
    run_id: str
    label: str
    trained_on: str
    dataset: str
    fingerprint: str
    version: str
    split: Split
    part: str
    mapping: ClassMapping
    confusion: np.ndarray
    metrics: dict[str, float]
    per_class: dict[str, np.ndarray]
    device: str = "cpu"

    @property
    def excluded_names(self) -> list[str]:
        """Evaluated classes left out of the metrics: no model class maps to them, or the split excludes them."""
        names, scored = self.mapping.target_classes, scored_classes(self.mapping, self.split)
        return [names[k] for k in range(len(names)) if not scored[k]]

    def row(self) -> dict[str, Any]:
        """The ``evaluations`` row (less what the store adds: time and host)."""
        from hsbench.provenance import git_commit, hardware_and_builds

        return {
            "evaluation_id": self.evaluation_id, "run_id": self.run_id, "dataset": self.dataset,
            "dataset_fingerprint": self.fingerprint, "dataset_version": self.version, "split": self.split.spec,
            "split_hash": self.split.hash, "split_seed": self.split.seed, "part": self.part,
            "class_map": self.mapping.given,
            "metrics": {**self.metrics, "per_class": {k: v.tolist() for k, v in self.per_class.items()},
                        "classes": self.mapping.class_names, "excluded_classes": self.excluded_names,
                        "mapping": self.mapping.resolved(), "trained_on": self.trained_on, "label": self.label},
            "confusion": self.confusion.tolist(), "hsbench_version": hsbench.__version__,
            "git_commit": git_commit(), "device": self.device, "provenance": hardware_and_builds(),
        }


def scored_classes(mapping: ClassMapping, split: Split) -> np.ndarray:
    """Bool per confusion-matrix class: scored by the metrics (mapped to, not excluded by the split, not "no
    class"); the class mask of :func:`hsbench.metrics.compute_metrics`."""
    mask = mapping.evaluated.copy()
    mask[: len(mapping.target_classes)] &= split.evaluated_classes
    return mask


def evaluation_id(run_id: str, dataset: str, split: str, part: str, class_map: Mapping[str, Any] | None) -> str:
    """The id of an evaluation: a hash of what it evaluates (same inputs, same id, so a re-evaluation replaces)."""
    return config_hash({"run_id": run_id, "dataset": dataset, "split": split, "part": part,
                        "class_map": None if class_map is None else dict(class_map)})


class _ScoringCard:
    """What :func:`evaluate_view` reads of a card, for the confusion matrix of a class map (which may have one more
    class, "no class", than the evaluated dataset)."""

    def __init__(self, num_classes: int, ignore_index: int, task: str) -> None:
        self.num_classes, self.ignore_index, self.task = num_classes, ignore_index, task


class _MappedView:
    """A view whose labels leave out the excluded classes, scored in the class map's classes."""

    def __init__(self, view, mapping: ClassMapping) -> None:
        self._view, self._mapping = view, mapping
        card = view.card
        self.card = _ScoringCard(mapping.num_classes, card.ignore_index, card.task)

    def __iter__(self) -> Iterator[Sample]:
        ignore = self._view.card.ignore_index
        for sample in self._view:
            yield Sample(sample.id, sample.cube, self._mapping.labels(sample.labels, ignore))


def score_view(predict: Callable[[Sample], np.ndarray], view, mapping: ClassMapping) -> np.ndarray:
    """The confusion matrix of a model's ``predict`` on a view, in the class map's classes (``mapping``).

    With the identity mapping this is exactly the runner's test matrix; otherwise predictions go through
    :meth:`ClassMapping.predictions` and the excluded classes' pixels are not scored.
    """
    if mapping.identity:
        return evaluate_view(predict, view).total()
    return evaluate_view(lambda sample: mapping.predictions(predict(sample)), _MappedView(view, mapping)).total()


def evaluate_run(
    store: ResultsStore,
    run: str,
    dataset: str,
    *,
    split: str | None = None,
    part: str = "test",
    class_map: Mapping[str, str | None] | None = None,
    data_root: Path | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> Evaluation:
    """Evaluate run ``run``'s stored model on ``dataset`` and store the evaluation row (replacing an earlier one).

    Args:
        store: the results database holding the run.
        run: the run id (or a unique prefix).
        dataset: the evaluated dataset spec (``NAME[:key=value,...]``).
        split: split spec on ``dataset``; default the run's split spec. The run's seed draws it.
        part: ``test`` (default), ``val`` or ``train``.
        class_map: model class -> evaluated class (see :mod:`hsbench.class_map`); ``None``: same class names.
        data_root: where real datasets are prepared.
        device: where the model predicts.
        progress: progress bars while the model is rebuilt.

    Raises:
        HsbenchError: an unknown run, dataset or class, a run without a model, other bands, a bad split; one line.
    """
    from hsbench.saved_model import check_input_bands, load_run_model
    from hsbench.strategy import SplitView, default_guard

    if part not in PARTS:
        raise ConfigError(f"unknown part {part!r}{did_you_mean(part, PARTS)}; valid: {', '.join(PARTS)}")
    row = find_run(store, run)
    opened = open_dataset(dataset, data_root)
    try:
        strategy, stored = load_run_model(run_folder(row), device=device, data_root=data_root, progress=progress)
    except NotImplementedError as exc:
        raise DataError(f"run {row['run_id']} ({row['strategy_label']}): {exc}") from None
    card = opened.card
    check_input_bands(stored.card, card.num_bands, card.wavelengths_nm, what=f"dataset {dataset}")
    mapping = resolve_class_map(stored.card.class_names, card.class_names, class_map, model_name=row["dataset"],
                                target_name=dataset)
    split_spec = split or row["split"]
    guard = ((row.get("config") or {}).get("split_params") or {}).get("guard") if split is None else None
    drawn = make_split(opened, split_spec, int(row["seed"]), guard=guard if guard is not None else default_guard())
    view = SplitView.of(opened, drawn, part)
    if part == "val" and stored.options.get("transductive"):
        view = view.transductive()  # as the run's own val view
    confusion = score_view(strategy.predict, view, mapping)
    classes = scored_classes(mapping, drawn)
    result = Evaluation(
        evaluation_id(row["run_id"], dataset, drawn.spec, part, mapping.given), row["run_id"],
        row["strategy_label"], f"{row['dataset']} ({row['split']})", dataset, opened.fingerprint, str(card.version),
        drawn, part, mapping, confusion, compute_metrics(confusion, classes), per_class_metrics(confusion, classes),
        device=str(device),
    )
    store.put_evaluation(result.row())
    return result
