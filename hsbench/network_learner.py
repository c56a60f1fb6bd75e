"""Training a network built elsewhere (pretrained, behind an adapter, partly frozen) with the shared engine.

:class:`hsbench.learners.DenseNetworkLearner` builds its network from ``MODELS``; transfer strategies build theirs
from pretrained weights and decide what is frozen before training. This learner takes the finished network and
keeps everything else identical: the same recipe options, the same engine, the same model selection on val mIoU
and the same dense prediction, so the comparison with ``in_domain`` is fair.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from hsbench.engine import EngineConfig, Trainer
from hsbench.evaluation import view_miou
from hsbench.learners import DenseNetworkLearner, TransformedView, resolve_crop_size
from hsbench.strategy import SplitView

__all__ = ["NetworkLearner", "engine_config"]


def engine_config(cfg: dict[str, Any], *, optimizer: str = "adamw") -> EngineConfig:
    """The engine recipe of the shared training options (``hflip_p`` None means no flips)."""
    return EngineConfig(
        epochs=int(cfg["epochs"]),
        batch_size=int(cfg["batch_size"]),
        lr=float(cfg["lr"]),
        weight_decay=float(cfg["weight_decay"]),
        schedule=str(cfg["schedule"]),
        grad_clip_norm=cfg["grad_clip_norm"],
        early_stopping_patience=cfg["early_stopping_patience"],
        hflip_p=float(cfg["hflip_p"] or 0.0),
        optimizer=optimizer,
    )


class NetworkLearner(DenseNetworkLearner):
    """Trains a given network on ``transform(cube)`` of the train view; selects on val mIoU; predicts densely."""

    def fit(self, transform: Any, train: SplitView, val: SplitView) -> dict[str, Any]:
        raise TypeError("NetworkLearner trains a network built by the caller: use fit_network(network, ...)")

    def fit_network(
        self, network: nn.Module, transform: Any, train: SplitView, val: SplitView, *, optimizer: str = "adamw"
    ) -> dict[str, Any]:
        """Train ``network`` (its frozen parameters stay as they are); returns facts to store."""
        self.network = network.to(self.ctx.device)
        cfg = engine_config(self.cfg, optimizer=optimizer)
        trainer = Trainer(self.network, cfg, self.ctx, ignore_index=self.card.ignore_index)
        result = trainer.fit(
            TransformedView(
                train,
                transform.apply,
                min_items=int(self.cfg["min_steps_per_epoch"]) * cfg.batch_size,
                crop_size=resolve_crop_size(self.cfg["crop_size"], self.card),
                rng=self.ctx.seeds.rng("augment"),
            ),
            evaluate=lambda _model: view_miou(lambda s: self.predict(transform.apply(s.cube)), val),
        )
        return {
            "best_val_miou": result.best_score,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_reason": result.stopped_reason,
            "parameters": sum(p.numel() for p in self.network.parameters()),
            "trainable_parameters": sum(p.numel() for p in self.network.parameters() if p.requires_grad),
            "val_history": [entry["val_score"] for entry in result.history],
        }
