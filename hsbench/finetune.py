"""Fine-tuning a per-pixel foundation model together with a dense head, on raw cubes.

:class:`FeatureSegmenter` runs the foundation model on every pixel of a cube, standardises the embeddings with
statistics fitted on training pixels, and gives the feature map to a ``MODELS`` head. :class:`FinetuneLearner`
trains it with the shared engine; the foundation model's parameters carry an ``lr_scale`` that the
``adamw_lr_scaled`` optimizer turns into a parameter group with a lower learning rate (pretrained weights need
smaller steps than a freshly initialised head, or the first steps wash out what pretraining learnt).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from hsbench.data.transforms import PixelTransform
from hsbench.engine import OPTIMIZERS, EngineConfig, Trainer
from hsbench.evaluation import view_miou
from hsbench.learners import DenseNetworkLearner, TransformedView, engine_config, training_loss
from hsbench.registry import MODELS, lookup
from hsbench.strategy import SplitView

__all__ = ["FeatureSegmenter", "FinetuneLearner", "adamw_lr_scaled"]


def adamw_lr_scaled(params: Iterable[nn.Parameter], cfg: EngineConfig) -> torch.optim.Optimizer:
    """AdamW with one parameter group per distinct ``param.lr_scale`` (default 1), at ``lr * lr_scale``."""
    groups: dict[float, list[nn.Parameter]] = {}
    for param in params:
        groups.setdefault(float(getattr(param, "lr_scale", 1.0)), []).append(param)
    return torch.optim.AdamW(
        [{"params": group, "lr": cfg.lr * scale} for scale, group in groups.items()],
        lr=cfg.lr, weight_decay=cfg.weight_decay,
    )


OPTIMIZERS.setdefault("adamw_lr_scaled", adamw_lr_scaled)


class FeatureSegmenter(nn.Module):
    """Foundation model per pixel, standardisation, then a dense head: cubes ``(N, C, H, W)`` to logits.

    Args:
        fm: ``fm(pixels (P, C), wavelengths (C,)) -> (P, D)``, with ``fm.dim == D``.
        head: a ``MODELS`` network with ``D`` input channels.
        wavelengths_nm: band wavelengths in cube order.
        standardize: a fitted ``standardize`` transform of the features.
        eval_batch_pixels: pixels per forward pass without gradients (bounds memory on large images).
    """

    def __init__(
        self, fm: nn.Module, head: nn.Module, wavelengths_nm: tuple[float, ...], standardize: PixelTransform, *,
        eval_batch_pixels: int = 8192,
    ) -> None:
        super().__init__()
        self.fm, self.head, self.eval_batch_pixels = fm, head, eval_batch_pixels
        self.register_buffer("wavelengths_nm", torch.tensor(wavelengths_nm, dtype=torch.float32))
        assert standardize.mean is not None and standardize.matrix is not None, "fit the standardisation first"
        self.register_buffer("feature_mean", torch.tensor(standardize.mean, dtype=torch.float32))
        self.register_buffer("feature_scale", torch.tensor(np.diag(standardize.matrix), dtype=torch.float32))

    def train(self, mode: bool = True) -> FeatureSegmenter:
        """Train mode, except that the foundation model's BatchNorm keeps its pretrained statistics.

        Batch statistics of a few crops are noisy, and the pretrained weights were learnt with the stored ones.
        """
        super().train(mode)
        for module in self.fm.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def features(self, cube: torch.Tensor) -> torch.Tensor:
        """Standardised feature maps ``(N, D, H, W)``."""
        n, c, h, w = cube.shape
        pixels = cube.permute(0, 2, 3, 1).reshape(-1, c)
        if torch.is_grad_enabled():
            embedded = self.fm(pixels, self.wavelengths_nm)
        else:
            chunks = pixels.split(self.eval_batch_pixels)
            embedded = torch.cat([self.fm(chunk, self.wavelengths_nm) for chunk in chunks])
        embedded = (embedded - self.feature_mean) * self.feature_scale
        return embedded.view(n, h, w, -1).permute(0, 3, 1, 2)

    def forward(self, cube: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(cube))


def _float32(cube: np.ndarray) -> np.ndarray:
    return np.asarray(cube, dtype=np.float32)


class FinetuneLearner(DenseNetworkLearner):
    """Trains a :class:`FeatureSegmenter` end to end; prediction is the dense learner's (argmax of the logits)."""

    def fit(self, transform: Any, train: SplitView, val: SplitView) -> dict[str, Any]:
        raise TypeError("FinetuneLearner needs the foundation model: call fit_with(fm, standardize, train, val)")

    def fit_with(
        self, fm: nn.Module, standardize: PixelTransform, train: SplitView, val: SplitView
    ) -> dict[str, Any]:
        """Fine-tune ``fm`` with a fresh head; the FM learns at ``fm_lr_scale`` times the head's rate."""
        cfg = self.cfg
        head_cls = lookup(MODELS, cfg["model"])
        head = head_cls(fm.dim, self.card.num_classes, **dict(cfg["model_options"]))
        for param in fm.parameters():
            param.lr_scale = float(cfg["fm_lr_scale"])
        self.network = FeatureSegmenter(fm, head, self.card.wavelengths_nm, standardize,
                                        eval_batch_pixels=int(cfg["feature_batch_pixels"])).to(self.ctx.device)
        engine_cfg = dataclasses.replace(
            engine_config(cfg, hflip_default=getattr(head_cls, "recipe_hflip_p", 0.0), optimizer="adamw_lr_scaled"),
            eval_every=int(cfg["finetune_eval_every"]),
        )
        self.channels_last = engine_cfg.channels_last  # the layout the selected weights were evaluated in (model_state)
        trainer = Trainer(self.network, engine_cfg, self.ctx, ignore_index=self.card.ignore_index,
                          loss_fn=training_loss(cfg, train, self.card))
        result = trainer.fit(
            TransformedView(train, _float32, out_channels=self.card.num_bands,
                            min_items=int(cfg["min_steps_per_epoch"]) * engine_cfg.batch_size,
                            crop_size=int(cfg["finetune_crop_size"]), rng=self.ctx.seeds.rng("augment")),
            evaluate=lambda _model: view_miou(lambda s: self.predict(_float32(s.cube)), val),
        )
        return {
            "best_val_miou": result.best_score, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "stopped_reason": result.stopped_reason,
            "parameters": sum(p.numel() for p in self.network.parameters()),
        }
