"""The strategy contract: what a transfer strategy may do, and what the runner does for it.

The runner owns data loading, the split, timing, evaluation and storage. A strategy only learns and predicts.
Rules every strategy follows (the registry-driven tests check what they can):

* It never sees test labels: ``fit`` gets train and val views, ``predict`` gets a sample whose labels are all
  ``ignore_index``.
* All randomness comes from ``ctx.seeds`` (streams ``init``, ``order``, ``augment``), so a fixed seed gives the
  same numbers.
* Anything fitted on pixels (normalisation, PCA, adapters) is fitted on the train view only.
* ``pretrain``, any statistics fitted on unlabelled pixels and every training input read only the pixels
  :meth:`SplitView.readable` allows: the train region of a scene (unlabelled pixels included; val and test pixels
  and the guard band around the test pixels excluded), the train images of a segmentation dataset. Training crops
  and tiles of a scene are blanked outside it after the input transform (:func:`blank_unreadable`; the dense
  learners get it from :class:`~hsbench.learners.TransformedView`), so val and test spectra never enter a training
  forward pass. Predicting a test image reads the whole image (that is evaluation). Only a run whose strategy
  options say ``transductive=true`` (s2former) reads whole scenes (:meth:`SplitView.transductive`, for its train
  and val views); its label carries :data:`TRANSDUCTIVE_MARK` so that tables show it.
* Model selection uses the val view only, and a val view of a scene hands out no test value: its cubes carry the
  per-band mean of the visible pixels in place of the test pixels and the guard band around them
  (:func:`hide_invisible`, :meth:`Split.visible`), so predicting val (early stopping, best epoch, C or sweep
  objective, the run's stored val metrics) reads the train region and the val pixels only.
* Freezing, adapters and head re-initialisation live in the strategy, not in network constructors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Dataset, Sample
from hsbench.options import merge_options
from hsbench.recipes import recipe_options
from hsbench.registry import STRATEGIES, lookup, names
from hsbench.seeding import SeedStreams

if TYPE_CHECKING:
    from hsbench.saved_model import ModelState
    from hsbench.splits import Split

__all__ = [
    "Strategy", "RunContext", "EpochRecord", "SplitView", "StrategySpec", "TRANSDUCTIVE_MARK", "blank_unreadable",
    "default_guard", "hide_invisible", "readable_mask", "transductive_label",
]

TRANSDUCTIVE_MARK = "†"
"""Appended to the label of a run that read unlabelled val or test pixels (``transductive=true``)."""


@dataclass(frozen=True)
class StrategySpec:
    """What a strategy needs from the runner."""

    description: str
    needs_unlabeled: bool = False
    """Whether ``pretrain`` wants unlabelled images (the target's unlabelled train images)."""
    spatial_context: int = 0
    """Context radius in pixels that one prediction or training pixel draws on (0: a per-pixel classifier); the
    default of :meth:`Strategy.spatial_context`, for strategies whose context does not depend on their options."""


@dataclass(frozen=True)
class EpochRecord:
    """One completed training epoch, as training loops report it to ``RunContext.epoch_observer``.

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean training loss of the epoch.
        val_score: the loop's validation score (val mIoU, J_M), ``None`` when the epoch was not evaluated.
        lrs: learning rate of each optimizer parameter group at the epoch's first step.
    """

    epoch: int
    train_loss: float
    val_score: float | None
    lrs: tuple[float, ...]


@dataclass
class RunContext:
    """Everything a strategy may use besides its config and the data.

    Attributes:
        device: torch device to train on.
        seeds: the run's independent random streams.
        work_dir: a private folder for this run (checkpoints, caches); kept with the run.
        logger: the run's logger (goes to the run log file and, at INFO, to the console).
        time_budget_s: wall-clock budget for ``fit``; ``None`` means unlimited.
        progress: whether to show progress bars.
        epoch_callback: called by training loops as ``epoch_callback(epoch, val_score)``; raising from it (an
            Optuna prune) stops the run.
        epoch_observer: called by training loops after every completed epoch, evaluated or not, with an
            :class:`EpochRecord` (before ``epoch_callback``); for logging (``--tensorboard``), it must not change
            the training. Set on the process that writes results only.
        zoo: pretrained-artifact store, when the runner has one.
        data_root: where prepared real datasets live (a strategy opening a source dataset passes it on).
    """

    device: torch.device
    seeds: SeedStreams
    work_dir: Path
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("hsbench"))
    time_budget_s: float | None = None
    progress: bool = True
    epoch_callback: Callable[[int, float], None] | None = None
    epoch_observer: Callable[[EpochRecord], None] | None = None
    zoo: Any = None
    data_root: Path | None = None


class SplitView:
    """One part (train / val) of a split over a dataset.

    ``load(id)`` returns the sample with every pixel outside the part's mask set to ``ignore_index``, so a
    strategy cannot learn from pixels it was not given. The cube stays whole (networks need spatial context), so
    anything that reads pixels *without* labels (pretraining, fitted statistics) asks :meth:`readable` which of
    them it may use; only pixels outside ``visible`` are replaced in the cube (:func:`hide_invisible`).

    Args:
        dataset: the dataset.
        masks: sample id -> the part's pixel mask (``None``: every labelled pixel of the image).
        part: ``train``, ``val`` or ``test``.
        readable: sample id -> the pixels readable without labels (``None``: all); by default the part's own
            labelled pixels only (the safe reading of a view built without its split, see :meth:`of`).
        visible: sample id -> the pixels whose values ``load`` hands out (missing or ``None``: all); a val view
            of a scene gets :meth:`Split.visible` from :meth:`of`.
    """

    def __init__(
        self,
        dataset: Dataset,
        masks: dict[str, np.ndarray | None],
        part: str,
        readable: Mapping[str, np.ndarray | None] | None = None,
        visible: Mapping[str, np.ndarray | None] | None = None,
    ) -> None:
        self.dataset = dataset
        self.part = part
        self._masks = masks
        self._readable = dict(masks) if readable is None else readable
        self._visible = visible or {}

    @classmethod
    def of(cls, dataset: Dataset, split: Split, part: str) -> SplitView:
        """The view of ``part`` with the split's readable pixels (:meth:`Split.readable`): the way runs get one.

        A val view also hides the test pixels and their guard band (:meth:`Split.visible`): model selection
        predicts val images, and on a scene the val and test pixels share one image. Train views need no hiding
        (training inputs are blanked outside the readable region), and a test view shows the test image whole.
        """
        visible = {i: split.visible(i, part) for i in split.parts[part]} if part == "val" else None
        return cls(dataset, split.parts[part], part, _OnDemand(split.parts[part], split.readable), visible)

    def readable(self, sample_id: str) -> np.ndarray | None:
        """Pixels of the sample's cube that may be read without labels (``None``: every pixel).

        For a scene, the train region: val and test pixels and the guard band around test pixels are excluded.
        Pretraining and statistics on unlabelled pixels use these and nothing else, unless the run is
        transductive (:meth:`transductive`).
        """
        return self._readable[sample_id]

    def transductive(self) -> SplitView:
        """The same view with every pixel of its images readable and visible (whole scenes); only for
        ``transductive=true``."""
        return SplitView(self.dataset, self._masks, self.part, dict.fromkeys(self._masks))

    @property
    def card(self) -> DatasetCard:
        return self.dataset.card

    @property
    def sample_ids(self) -> tuple[str, ...]:
        return tuple(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __iter__(self) -> Iterator[Sample]:
        return (self.load(i) for i in self._masks)

    def mask(self, sample_id: str) -> np.ndarray | None:
        """The part's pixel mask for one sample (``None``: every labelled pixel)."""
        return self._masks[sample_id]

    def visible(self, sample_id: str) -> np.ndarray | None:
        """Pixels whose values :meth:`load` hands out (``None``: all); the others carry the visible mean."""
        return self._visible.get(sample_id)

    def load(self, sample_id: str) -> Sample:
        sample = self.dataset.load(sample_id)
        mask, visible = self._masks[sample_id], self._visible.get(sample_id)
        if mask is None and visible is None:
            return sample
        labels = sample.labels if mask is None else np.where(mask, sample.labels, self.card.ignore_index)
        return Sample(sample.id, hide_invisible(sample.cube, visible), labels)

    def labelled_pixel_count(self) -> int:
        return sum(int((s.labels != self.card.ignore_index).sum()) for s in self)


class _OnDemand(Mapping[str, "np.ndarray | None"]):
    """Per-image masks computed when first asked for (then kept): a segmentation val image is held out whole and
    has no readable mask to build, so a val view must not build them all up front."""

    def __init__(self, ids: Iterable[str], compute: Callable[[str], np.ndarray | None]) -> None:
        self._ids = tuple(ids)
        self._compute = compute
        self._done: dict[str, np.ndarray | None] = {}

    def __getitem__(self, sample_id: str) -> np.ndarray | None:
        if sample_id not in self._done:
            if sample_id not in self._ids:
                raise KeyError(sample_id)
            self._done[sample_id] = self._compute(sample_id)
        return self._done[sample_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def readable_mask(images: Any, sample_id: str) -> np.ndarray | None:
    """Pixels of ``images``' sample readable without labels: a view's :meth:`SplitView.readable`, or ``None``
    (every pixel) for a plain dataset, e.g. a source domain that is never evaluated."""
    readable = getattr(images, "readable", None)
    return None if readable is None else readable(sample_id)


def blank_unreadable(cube: np.ndarray, readable: np.ndarray | None) -> np.ndarray:
    """``cube`` ``(C, H, W)`` with every pixel outside ``readable`` ``(H, W)`` set to 0 (``None``: unchanged).

    Applied to training inputs after the input transform, where 0 is the train mean (standardisation, PCA,
    standardised features) or, for raw inputs, a zero spectrum: either way a constant, so no value of a val, test
    or guard pixel reaches a forward pass, a BatchNorm statistic or a neighbour's features.
    """
    if readable is None:
        return cube
    return np.where(readable, cube, np.zeros((), dtype=cube.dtype))


def hide_invisible(cube: np.ndarray, visible: np.ndarray | None) -> np.ndarray:
    """``cube`` ``(C, H, W)`` with every pixel outside ``visible`` ``(H, W)`` set to the per-band mean of the visible
    pixels (``None``: unchanged).

    The mean of raw values, not 0 as in :func:`blank_unreadable`: a val cube is hidden before the strategy's input
    transform, where a zero spectrum would be an outlier next to the val pixels, while the mean is an ordinary
    spectrum of the image. It depends on the visible pixels only, so no test or guard value reaches a val score.
    """
    if visible is None:
        return cube
    fill = cube[:, visible].mean(axis=1, dtype=np.float64) if visible.any() else np.zeros(len(cube))
    return np.where(visible, cube, fill.astype(cube.dtype)[:, None, None])


def transductive_label(label: str, options: Mapping[str, Any]) -> str:
    """``label`` with :data:`TRANSDUCTIVE_MARK` when the options opt into whole-scene unlabelled pixels."""
    return label + TRANSDUCTIVE_MARK if options.get("transductive") else label


class Strategy:
    """Base class of every transfer strategy (registered in ``STRATEGIES`` under its name).

    Args:
        cfg: the strategy's resolved options (plain, JSON-serialisable values; part of the run id).
        ctx: the run context.
        card: the target dataset's card (band count, wavelengths and class count come from here).
    """

    name: ClassVar[str] = ""
    spec: ClassVar[StrategySpec] = StrategySpec(description="")
    defaults: ClassVar[dict[str, Any]] = {}
    """Default options; the runner merges user options over these and rejects unknown keys."""
    smoke_options: ClassVar[list[dict[str, Any]]] = [{}]
    """Option sets for the smallest meaningful runs; the registry-driven tests run each one end to end."""

    def __init__(self, cfg: dict[str, Any], ctx: RunContext, card: DatasetCard) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.card = card

    def pretrain(self, unlabeled: list[SplitView]) -> None:  # noqa: B027 - optional hook
        """Optional: learn from unlabelled images (labels in the views must not be used)."""

    def fit(self, train: SplitView, val: SplitView) -> dict[str, Any]:
        """Learn from the train view; select on the val view. Returns facts to store (epochs, best val score)."""
        raise NotImplementedError

    def predict(self, sample: Sample) -> np.ndarray:
        """Dense ``(H, W)`` int64 prediction in harness class ids for one sample."""
        raise NotImplementedError

    def model_state(self) -> ModelState:
        """The fitted model (after ``fit``) as tensors and JSON facts, for :func:`hsbench.saved_model.save_model`.

        Everything ``predict`` reads must be in it (weights, fitted transforms, adapters, selected C...), and
        nothing pickled. A strategy that does not override this cannot keep its model: the runner says so.
        """
        raise NotImplementedError(f"strategy {self.name!r} cannot save its model (no model_state)")

    def restore(self, state: ModelState) -> None:
        """Rebuild the fitted model from :meth:`model_state`'s output, on a fresh instance with the run's options,
        card and seeds; afterwards ``predict`` gives exactly the run's predictions."""
        raise NotImplementedError(f"strategy {self.name!r} cannot restore a saved model (no restore)")

    @classmethod
    def saves_model(cls) -> bool:
        """Whether this strategy implements :meth:`model_state` and :meth:`restore`."""
        return cls.model_state is not Strategy.model_state and cls.restore is not Strategy.restore

    @classmethod
    def label(cls, options: dict[str, Any]) -> str:
        """Name shown in tables and logs, e.g. ``in_domain/runet``."""
        return cls.name

    @classmethod
    def spatial_context(cls, options: Mapping[str, Any]) -> int:
        """Pixels of context (Chebyshev radius) the strategy's model uses around a pixel on a scene, with ``options``.

        A receptive field, or half the training crop or tile a dense network sees (the crop bounds what one
        forward pass mixes). The guard band of ``kshot=k,disjoint`` defaults to the largest of these over the
        registered strategies (:func:`default_guard`), so no strategy learns from pixels that touch the test region.
        """
        return cls.spec.spatial_context

    @classmethod
    def search_space(cls, trial: Any, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Optuna search space: options suggested through ``trial``.

        ``options`` are the fixed options of the sweep (e.g. which model), so that the space can depend on them.
        """
        return {}


def resolve_strategy(
    name: str, options: Mapping[str, Any], dataset: str | None = None
) -> tuple[type[Strategy], dict[str, Any]]:
    """The registered strategy class and its defaults with ``options`` applied.

    A ``recipe`` option's preset (:mod:`hsbench.recipes`) is merged between the defaults and ``options``, so the
    user's options win and the resolved options show the expanded values; ``dataset`` picks its per-dataset ones.

    Raises:
        UnknownNameError: no strategy of that name; ConfigError: an option key the strategy does not have, or an
        unknown recipe.
    """
    strategy_cls = lookup(STRATEGIES, name)
    owner = f"strategy {name!r}"
    preset = recipe_options(name, strategy_cls.defaults, options, dataset)
    return strategy_cls, merge_options(merge_options(strategy_cls.defaults, preset, owner=owner), options, owner=owner)


def default_guard() -> int:
    """The guard band of a disjoint split: the largest :meth:`Strategy.spatial_context` of the registered
    strategies at their default options.

    One guard for all, rather than each strategy's own, so that every strategy compared on a scene gets the same
    split (paired comparisons need identical splits).
    """
    return max((lookup(STRATEGIES, n).spatial_context(lookup(STRATEGIES, n).defaults) for n in names(STRATEGIES)),
               default=0)
