"""Patch networks trained the way the HSI literature trains them: on the windows of labelled pixels only.

A :class:`~hsbench.models.patch_classifiers.PatchClassifier` labels one pixel from the window centred on it. Training
it as a dense network (random crops, every window of every crop classified) spends almost all of its time on
windows without a label; :class:`PatchNetworkLearner` instead gathers the ``patch_size x patch_size`` window of
each labelled train pixel once and trains :meth:`~PatchClassifier.classify` on batches of them, with the shared
engine (:class:`~hsbench.engine.Trainer`: same recipe options, loss options, early stopping, best-val selection and
seeds as the dense learners).

Pixel-reading rules (:mod:`hsbench.strategy`): windows are cut from the transformed train cube blanked outside the
view's readable pixels (:func:`~hsbench.strategy.blank_unreadable`, as :class:`~hsbench.learners.TransformedView`
does for crops), so a val, test or guard spectrum never enters a training window, not even at the border of a
train pixel's window. Inside a window, the blanked (unreadable) positions are then filled with the centre pixel's
own spectrum (``centre_fill``): on a densely labelled scene almost every neighbour of a few-shot train pixel is a val
or test pixel, and a network that only ever saw zero context falls apart on the real context of the test image
(cnn3d on Jasper Ridge, kshot=5: test mIoU 0.26 with zero context, 0.73 with centre fill); the centre spectrum is a
train pixel's, so no held-out value is read.
Model selection classifies the val view's labelled pixels only, from their windows in the val cube the view hands
out, with the positions it hides (test pixels, guard band) filled by the centre spectrum as in training (the view's
mean spectrum there would fill most of a 25 x 25 window and leave the selection blind); with nothing hidden the
score is the dense val mIoU the runner stores. ``predict`` is the dense forward: every pixel's window.

Per-network recipe: a network class may carry ``recipe_training`` (a mapping of :data:`~hsbench.learners.
TRAINING_DEFAULTS` options); each of its values replaces an option that is still at its shared default, so a value
the user sets always wins.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from hsbench.data.card import DatasetCard
from hsbench.data.transforms import PixelTransform
from hsbench.engine import Trainer
from hsbench.learners import TRAINING_DEFAULTS, DenseNetworkLearner, engine_config, training_loss
from hsbench.metrics import confusion_matrix, miou
from hsbench.models.patch_classifiers import PatchClassifier
from hsbench.models.patches import pad_for_patches
from hsbench.registry import MODELS, lookup
from hsbench.strategy import RunContext, SplitView, blank_unreadable, readable_mask

__all__ = ["LabelledWindows", "PatchNetworkLearner", "patch_size_of", "patch_training_options"]


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.require(array, dtype=np.float32, requirements=["C", "W"]))


def patch_size_of(cfg: Mapping[str, Any]) -> int:
    """The window side of the run's patch network: ``model_options.patch_size``, else the class's default."""
    options = cfg.get("model_options") or {}
    if "patch_size" in options:
        return int(options["patch_size"])
    model_cls = lookup(MODELS, cfg["model"])
    return int(inspect.signature(model_cls.__init__).parameters["patch_size"].default)


def patch_training_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` with the network class's ``recipe_training`` values in place of options left at their shared
    default (:data:`TRAINING_DEFAULTS`): the network's own recipe, under anything the user set."""
    recipe = getattr(lookup(MODELS, cfg["model"]), "recipe_training", {})
    out = dict(cfg)
    for name, value in recipe.items():
        if name not in TRAINING_DEFAULTS:
            raise KeyError(f"recipe_training of {cfg['model']} sets {name!r}, which is no training option")
        if out.get(name, TRAINING_DEFAULTS[name]) == TRAINING_DEFAULTS[name]:
            out[name] = value
    return out


class LabelledWindows(torch.utils.data.Dataset):
    """``(window (C, s, s) float32, label (1, 1) int64)`` of every labelled pixel of a train view.

    Each image with labelled pixels is transformed once, blanked outside the view's readable pixels and padded for
    windows (reflect, as :func:`~hsbench.models.patches.patches_around`), and kept; an item is a slice of it, so
    memory is the transformed images, not ``s * s`` copies of them. With ``centre_fill`` the unreadable positions
    of a window (zero after blanking) take the centre pixel's spectrum (see the module docstring). With few
    labelled pixels the set is repeated whole to at least ``min_items`` items, so that every pixel is seen equally
    often in an epoch. ``known_pixels(sample_id)`` replaces the view's readable pixels as the known ones (the val
    score passes the val view's visible pixels).
    """

    def __init__(
        self,
        view: SplitView,
        transform: Callable[[np.ndarray], np.ndarray],
        patch_size: int,
        ignore_index: int,
        *,
        min_items: int = 0,
        centre_fill: bool = True,
        known_pixels: Callable[[str], np.ndarray | None] | None = None,
    ) -> None:
        self.patch_size, self.centre_fill = patch_size, centre_fill
        self.cubes: list[torch.Tensor] = []
        self.readable: list[torch.Tensor] = []
        where: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for sample_id in view.sample_ids:
            sample = view.load(sample_id)
            rows, cols = np.nonzero(sample.labels != ignore_index)
            if not len(rows):
                continue
            readable = readable_mask(view, sample_id) if known_pixels is None else known_pixels(sample_id)
            cube = blank_unreadable(transform(sample.cube), readable)
            self.cubes.append(pad_for_patches(_tensor(cube)[None], patch_size)[0])
            known = np.ones(sample.labels.shape, dtype=np.float32) if readable is None else readable.astype(np.float32)
            self.readable.append(pad_for_patches(torch.from_numpy(known)[None, None], patch_size)[0, 0] > 0.5)
            where.append(np.stack([np.full_like(rows, len(self.cubes) - 1), rows, cols], axis=1))
            labels.append(sample.labels[rows, cols])
        self.where = np.concatenate(where) if where else np.zeros((0, 3), dtype=np.int64)
        self.labels = torch.from_numpy(np.concatenate(labels).astype(np.int64)) if labels else torch.zeros(0).long()
        n = len(self.where)
        self.length = n * max(1, math.ceil(min_items / n)) if n else 0

    @property
    def num_windows(self) -> int:
        """Labelled pixels (distinct windows), before any repetition."""
        return len(self.where)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        index %= len(self.where)
        image, row, col = (int(v) for v in self.where[index])
        window = self.cubes[image][:, row : row + self.patch_size, col : col + self.patch_size]
        if self.centre_fill:
            readable = self.readable[image][row : row + self.patch_size, col : col + self.patch_size]
            centre = window[:, self.patch_size // 2, self.patch_size // 2]
            window = torch.where(readable, window, centre[:, None, None])
        return window, self.labels[index].reshape(1, 1)


class _WindowClassifier(nn.Module):
    """The network as the engine trains it: windows ``(B, C, s, s)`` -> logits ``(B, K, 1, 1)``, the dense shape
    of a one-pixel image, so the engine's loss and flips apply unchanged (a left-right flip keeps the centre)."""

    def __init__(self, network: PatchClassifier) -> None:
        super().__init__()
        self.network = network

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.network.classify(windows)[..., None, None]


class PatchNetworkLearner(DenseNetworkLearner):
    """A patch network from ``MODELS`` trained on labelled windows, selected on val mIoU, predicting densely."""

    @classmethod
    def spatial_context(cls, cfg: Mapping[str, Any]) -> int:
        """Half the window: ``patch_size // 2`` (0 for ``cnn1d``)."""
        return patch_size_of(cfg) // 2

    def __init__(self, cfg: dict[str, Any], ctx: RunContext, card: DatasetCard) -> None:
        super().__init__(cfg, ctx, card)
        if not issubclass(lookup(MODELS, cfg["model"]), PatchClassifier):
            raise TypeError(f"{cfg['model']} is not a patch classifier")
        self.options = patch_training_options(cfg)

    def fit(self, transform: PixelTransform, train: SplitView, val: SplitView) -> dict[str, Any]:
        network = self._build(transform).to(self.ctx.device)
        self.network, self.channels_last = network, False  # windows are tiny; the layers are mostly 3D
        model_cls = lookup(MODELS, self.cfg["model"])
        cfg = engine_config(self.options, hflip_default=getattr(model_cls, "recipe_hflip_p", 0.0))
        cfg = dataclasses.replace(cfg, channels_last=False)
        windows = LabelledWindows(
            train, transform.apply, network.patch_size, self.card.ignore_index,
            min_items=int(self.options["min_steps_per_epoch"]) * cfg.batch_size,
        )
        trainer = Trainer(_WindowClassifier(network), cfg, self.ctx, ignore_index=self.card.ignore_index,
                          loss_fn=training_loss(self.options, train, self.card))
        val_windows = self.val_windows(transform, val)  # the val cubes are read and transformed once per fit
        result = trainer.fit(windows, evaluate=lambda _model: self.windows_miou(val_windows))
        self.network.eval()
        return {
            "best_val_miou": result.best_score,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_reason": result.stopped_reason,
            "parameters": sum(p.numel() for p in network.parameters()),
            "trainable_parameters": sum(p.numel() for p in network.parameters() if p.requires_grad),
            "train_windows": windows.num_windows,
            "patch_size": network.patch_size,
            **result.curve(),
        }

    @torch.no_grad()
    def val_miou(self, transform: PixelTransform, val: SplitView) -> float:
        """The selection score: mIoU over the val view's labelled pixels, each classified from its window with
        the positions the view hides (a scene's test pixels and guard band) filled as in training, by the centre
        pixel's spectrum (:class:`LabelledWindows` with the view's visible pixels as the known ones).

        With nothing hidden (segmentation val images, a transductive run) this equals the dense
        ``view_miou(lambda s: self.predict(transform.apply(s.cube)), val)`` that the runner stores as the val
        metrics. On a scene it is the score a window with unknown neighbours gets, as the network was trained:
        the mean spectrum the view puts in place of hidden pixels fills most of a large window (25 x 25 HybridSN)
        and would leave the selection blind (a constant val score, epoch 1 kept).
        """
        return self.windows_miou(self.val_windows(transform, val))

    def val_windows(self, transform: PixelTransform, val: SplitView) -> LabelledWindows:
        """The windows :meth:`val_miou` classifies: the val view's labelled pixels, its visible pixels known."""
        return LabelledWindows(val, transform.apply, self.network.patch_size, self.card.ignore_index,
                               known_pixels=val.visible)

    @torch.no_grad()
    def windows_miou(self, windows: LabelledWindows) -> float:
        """mIoU of the network's classes for ``windows`` (each window once), in eval mode."""
        if not windows.num_windows:
            return 0.0
        network: PatchClassifier = self.network
        was_training = network.training
        network.eval()
        batch = network.chunk_pixels
        predicted = torch.cat([
            network.classify(torch.stack([windows[i][0] for i in range(start, min(start + batch, windows.num_windows))])
                             .to(self.ctx.device)).argmax(1).cpu()
            for start in range(0, windows.num_windows, batch)
        ])
        network.train(was_training)
        k = self.card.num_classes
        total = confusion_matrix(windows.labels.numpy(), predicted.numpy(), k, self.card.ignore_index)
        return miou(total)
