"""The supervised training loop every strategy shares: seeded data order, augmentation, model selection on val.

One loop for all strategies keeps comparisons fair (same schedule, same selection rule, same budget handling).
The recipe defaults follow HS3-Bench (AdamW, lr 1e-3, no weight decay, cross-entropy ignoring the undefined
class, selection on best val mIoU). Per-iteration work is kept to what a hand-written loop does: the loss is
summed on the device and read once per epoch, weights are copied only when validation improves.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from hsbench import distributed as dist_utils
from hsbench.errors import ConfigError, DataError
from hsbench.losses import LossFn, cross_entropy
from hsbench.precision import autocast_dtype, check_precision
from hsbench.strategy import EpochRecord, RunContext

__all__ = ["EngineConfig", "TrainResult", "Trainer", "OPTIMIZERS", "SCHEDULES", "masked_cross_entropy", "hflip_batch"]

OptimizerBuilder = Callable[[Iterable[nn.Parameter], "EngineConfig"], torch.optim.Optimizer]

OPTIMIZERS: dict[str, OptimizerBuilder] = {
    # Fused Adam(W): one kernel per step instead of a loop over tensors (4 % of a small RU-Net's CPU step).
    "adamw": lambda params, cfg: torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True),
    "adam": lambda params, cfg: torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True),
    "sgd": lambda params, cfg: torch.optim.SGD(
        params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay
    ),
}
"""Optimizer builders by name: ``builder(parameters, cfg) -> Optimizer``."""

SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": lambda progress: 1.0,
    "cosine": lambda progress: 0.5 * (1.0 + math.cos(math.pi * progress)),
    "poly": lambda progress: (1.0 - progress) ** 0.9,  # DeepLab's "poly" policy, power 0.9
}
"""Learning-rate factor by name, as a function of training progress in ``[0, 1]`` after warm-up."""

STOP_COMPLETED, STOP_EARLY, STOP_BUDGET = "completed", "early_stopping", "time_budget"


@dataclass(frozen=True)
class EngineConfig:
    """Training recipe (HS3-Bench defaults except a shorter schedule; the runner stores it with the run).

    Attributes:
        epochs: maximum number of passes over the training set.
        batch_size: global batch size; under DDP each rank takes ``batch_size // world_size``.
        lr: peak learning rate.
        weight_decay: decoupled (AdamW) or L2 (others) weight decay.
        optimizer: a key of :data:`OPTIMIZERS`.
        schedule: a key of :data:`SCHEDULES`.
        schedule_interval: ``"step"`` updates the learning rate every iteration, ``"epoch"`` once per epoch.
        warmup_epochs: linear warm-up length, before the schedule starts.
        grad_clip_norm: clip the global gradient norm to this value; ``None`` disables clipping (HS3-Bench has
            none).
        early_stopping_patience: stop after this many evaluations without improvement; ``None`` disables.
        eval_every: evaluate every this many epochs (the last epoch is always evaluated).
        hflip_p: per-sample probability of a horizontal flip (HS3-Bench's RU-Net recipe: 0.1).
        precision: a key of :data:`hsbench.precision.PRECISIONS`: ``bf16`` (the default) or ``fp16`` autocast
            on CUDA, ``fp16`` with a gradient scaler; ``fp32`` no autocast. CPU always trains in float32.
        num_workers: DataLoader worker processes.
        channels_last: train in the NHWC memory layout, which oneDNN's convolutions run about 20 % faster on a
            CPU than NCHW (tensors of other ranks keep their layout; the numbers are not bit-identical to NCHW).
    """

    epochs: int = 60
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    schedule: str = "cosine"
    schedule_interval: str = "step"
    warmup_epochs: int = 0
    grad_clip_norm: float | None = 1.0
    early_stopping_patience: int | None = 15
    eval_every: int = 1
    hflip_p: float = 0.0
    precision: str = "bf16"
    num_workers: int = 0
    channels_last: bool = True

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("schedule_interval", self.schedule_interval, ("step", "epoch"))
        check_precision(self.precision)
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise ConfigError(f"grad_clip_norm must be > 0 or None (no clipping), got {self.grad_clip_norm}")
        for name in ("epochs", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_epochs < 0 or self.num_workers < 0:
            raise ConfigError("lr must be > 0; weight_decay, warmup_epochs and num_workers must be >= 0")
        if not 0.0 <= self.hflip_p <= 1.0:
            raise ConfigError(f"hflip_p must be in [0, 1], got {self.hflip_p}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ConfigError(f"early_stopping_patience must be >= 1 or None, got {self.early_stopping_patience}")


def _check_choice(name: str, value: str, valid: Iterable[str]) -> None:
    if value not in valid:
        raise ConfigError(f"unknown {name} {value!r}: valid values are {', '.join(sorted(valid))}")


@dataclass
class TrainResult:
    """What a fit did; the model itself ends with the best weights loaded.

    Attributes:
        best_score: best validation score seen (``-inf`` if every evaluation returned NaN).
        best_epoch: 1-based epoch of the best score (0: the weights before any complete epoch).
        epochs_run: completed epochs.
        stopped_reason: ``"completed"``, ``"early_stopping"`` or ``"time_budget"``.
        history: one dict per completed epoch: ``epoch``, ``train_loss``, ``val_score`` (``None`` when not
            evaluated), ``lr``, ``seconds``.
        seconds: wall-clock time of the whole fit.
    """

    best_score: float
    best_epoch: int
    epochs_run: int
    stopped_reason: str
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def curve(self) -> dict[str, list[Any]]:
        """Val score (``None`` where not evaluated) and wall seconds of each epoch, stored with the run's facts
        so that time-to-accuracy plots need no rerun."""
        return {"val_history": [entry["val_score"] for entry in self.history],
                "epoch_seconds": [round(entry["seconds"], 4) for entry in self.history]}


def masked_cross_entropy(ignore_index: int) -> LossFn:
    """Cross-entropy averaged over labelled pixels only (:func:`hsbench.losses.cross_entropy`'s default).

    ``F.cross_entropy(reduction="mean")`` divides by the number of labelled pixels, which is 0/0 = NaN for a
    batch without labels (common with sparse few-shot labels); summing and dividing by at least one makes such
    a batch contribute zero loss and zero gradient instead.
    """
    return cross_entropy(ignore_index)


def hflip_batch(
    cube: torch.Tensor, target: torch.Tensor, p: float, generator: torch.Generator, *more: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Flip each sample of a batch left-right with probability ``p``: cube, target and ``more`` (e.g. a readable
    mask) together.

    The draws come from ``generator`` (a CPU generator on the run's ``augment`` stream), one per sample, so the
    augmentation is reproducible and independent of the data order stream. The inputs are not modified.
    """
    flip = torch.rand(cube.shape[0], generator=generator) < p
    if not bool(flip.any()):
        return (cube, target, *more)
    index = flip.nonzero().squeeze(1).to(cube.device)
    return tuple(t.index_copy(0, index, t.index_select(0, index).flip(-1)) for t in (cube, target, *more))


class _Selection:
    """Model selection on the validation score: best weights (CPU copy) and the early-stopping count."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.evaluations_without_improvement = 0

    def update(self, score: float, epoch: int, model: nn.Module, *, keep_weights: bool) -> None:
        if score > self.best_score:  # NaN never improves
            self.best_score, self.best_epoch = score, epoch
            self.evaluations_without_improvement = 0
            if keep_weights:
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.evaluations_without_improvement += 1

    @property
    def exhausted(self) -> bool:
        return self.patience is not None and self.evaluations_without_improvement >= self.patience


class Trainer:
    """Supervised training of a dense-prediction network with validation-based model selection.

    Args:
        model: the network, already initialised (the caller seeds its initialisation from ``ctx.seeds``).
        cfg: the training recipe.
        ctx: device, seed streams, logger, time budget, progress flag and epoch callback of the run.
        ignore_index: label value of pixels without a label.
        loss_fn: ``loss_fn(logits, target) -> scalar``; defaults to :func:`masked_cross_entropy`.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: EngineConfig,
        ctx: RunContext,
        *,
        ignore_index: int,
        loss_fn: LossFn | None = None,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.ctx = ctx
        self.ignore_index = ignore_index
        self.loss_fn = loss_fn or masked_cross_entropy(ignore_index)

    # ----------------------------------------------------------------------------------------------- set-up
    def _make_loader(self, train_set: Dataset) -> tuple[DataLoader, DistributedSampler | None]:
        order = torch.Generator().manual_seed(self.ctx.seeds.int_seed("order"))
        world = dist_utils.world_size()
        per_rank_batch = self.cfg.batch_size // world
        if per_rank_batch < 1:
            raise ConfigError(f"batch_size {self.cfg.batch_size} is smaller than the world size {world}")
        sampler = None
        if dist_utils.is_distributed():
            sampler = DistributedSampler(
                train_set, num_replicas=world, rank=dist_utils.rank(), shuffle=True,
                seed=self.ctx.seeds.int_seed("order"),
            )
        loader = DataLoader(
            train_set,
            batch_size=per_rank_batch,
            shuffle=sampler is None,
            sampler=sampler,
            generator=order,
            num_workers=self.cfg.num_workers,
            pin_memory=self.ctx.device.type == "cuda",
            persistent_workers=self.cfg.num_workers > 0,
        )
        return loader, sampler

    def _make_scheduler(
        self, optimizer: torch.optim.Optimizer, steps_per_epoch: int
    ) -> torch.optim.lr_scheduler.LambdaLR:
        """Linear warm-up, then the named decay; stepped every iteration, constant within an epoch if asked."""
        cfg = self.cfg
        unit = steps_per_epoch if cfg.schedule_interval == "epoch" else 1
        warmup = cfg.warmup_epochs * steps_per_epoch // unit
        total = cfg.epochs * steps_per_epoch // unit
        decay = SCHEDULES[cfg.schedule]

        def factor(step: int) -> float:
            index = step // unit
            if index < warmup:
                return (index + 1) / warmup
            return decay(min(1.0, (index - warmup) / max(1, total - warmup)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        dtype = autocast_dtype(self.cfg.precision, self.ctx.device.type)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.ctx.device.type, dtype=dtype)

    def _grad_scaler(self) -> torch.amp.GradScaler:
        """Scales fp16 losses so small gradients do not underflow; a pass-through for every other precision."""
        enabled = autocast_dtype(self.cfg.precision, self.ctx.device.type) == torch.float16
        return torch.amp.GradScaler(self.ctx.device.type, enabled=enabled)

    # ---------------------------------------------------------------------------------------------- the loop
    def fit(self, train_set: Dataset, evaluate: Callable[[nn.Module], float]) -> TrainResult:
        """Train on ``train_set``, select on ``evaluate(model)`` (higher is better), load the best weights.

        Args:
            train_set: ``train_set[i] -> (cube (C, H, W) float32, target (H, W) int64)``; samples that end up
                in one batch must share ``H, W``. An item may add a third tensor, the ``(H, W)`` bool mask of
                the pixels readable without labels; it is flipped with the batch and given to the network as its
                second argument, for unlabelled losses computed in the forward pass (DAFT's alignment).
            evaluate: returns the validation score of the model it is given (in eval mode, without DDP
                wrapper). Called on rank 0 only; the score is broadcast so every rank decides alike.

        Returns:
            The training summary. ``ctx.epoch_observer`` gets every completed epoch (an :class:`EpochRecord`:
            loss, val score or ``None``, the learning rates the epoch started with); ``ctx.epoch_callback``
            exceptions (e.g. an Optuna prune) propagate.
        """
        start = time.perf_counter()
        # Seeds dropout and anything else drawing from the global generator; ranks differ so DDP replicas do
        # not drop the same units (initial weights still agree: DDP broadcasts rank 0's).
        torch.manual_seed((self.ctx.seeds.int_seed("init") + dist_utils.rank()) % 2**63)
        self.model.to(self.ctx.device).train()
        if self.cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        loader, sampler = self._make_loader(train_set)
        if len(loader) == 0:
            raise DataError("the training set is empty")
        network = self._wrap(self.model)
        optimizer = OPTIMIZERS[self.cfg.optimizer](self.model.parameters(), self.cfg)
        scheduler = self._make_scheduler(optimizer, len(loader))
        scaler = self._grad_scaler()
        flips = torch.Generator().manual_seed((self.ctx.seeds.int_seed("augment") + dist_utils.rank()) % 2**63)
        deadline = None if self.ctx.time_budget_s is None else start + self.ctx.time_budget_s

        selection = _Selection(self.cfg.early_stopping_patience)
        history: list[dict[str, Any]] = []
        stopped = STOP_COMPLETED
        bar = tqdm(
            total=self.cfg.epochs, desc="train", unit="epoch", leave=False,
            disable=not (self.ctx.progress and dist_utils.is_main_process()),
        )
        try:
            for epoch in range(1, self.cfg.epochs + 1):
                epoch_start = time.perf_counter()
                if sampler is not None:
                    sampler.set_epoch(epoch)
                lrs = tuple(float(group["lr"]) for group in optimizer.param_groups)  # the epoch's first step
                loss, out_of_time = self._train_epoch(network, loader, optimizer, scheduler, scaler, flips, deadline)
                if out_of_time:
                    stopped = STOP_BUDGET
                    break
                score = None
                if epoch % self.cfg.eval_every == 0 or epoch == self.cfg.epochs:
                    score = self._evaluate(evaluate)
                    selection.update(score, epoch, self.model, keep_weights=dist_utils.is_main_process())
                history.append(
                    {"epoch": epoch, "train_loss": loss, "val_score": score,
                     "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - epoch_start}
                )
                self._report(bar, history[-1])
                if self.ctx.epoch_observer is not None:
                    self.ctx.epoch_observer(EpochRecord(epoch, loss, score, lrs))
                if score is not None and self.ctx.epoch_callback is not None:
                    self.ctx.epoch_callback(epoch, score)
                if selection.exhausted:
                    stopped = STOP_EARLY
                    break
        finally:
            bar.close()
        if not any(entry["val_score"] is not None for entry in history):
            # Stopped before the first evaluation: score what there is, so the result is never empty.
            selection.update(self._evaluate(evaluate), 0, self.model, keep_weights=dist_utils.is_main_process())
        self._restore_best(selection)
        return TrainResult(
            best_score=selection.best_score,
            best_epoch=selection.best_epoch,
            epochs_run=len(history),
            stopped_reason=stopped,
            history=history,
            seconds=time.perf_counter() - start,
        )

    def _wrap(self, model: nn.Module) -> nn.Module:
        if not dist_utils.is_distributed():
            return model
        device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def _train_epoch(
        self,
        network: nn.Module,
        loader: DataLoader,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        scaler: torch.amp.GradScaler,
        flips: torch.Generator,
        deadline: float | None,
    ) -> tuple[float, bool]:
        """One pass over the loader; returns the mean training loss and whether the time budget ran out."""
        device, cfg = self.ctx.device, self.cfg
        loss_sum = torch.zeros((), device=device)
        steps = 0
        for batch in loader:
            if deadline is not None and self._out_of_time(deadline):
                return math.nan, True
            cube, target, *readable = (t.to(device, non_blocking=True) for t in batch)
            if cfg.channels_last and cube.dim() == 4:
                cube = cube.contiguous(memory_format=torch.channels_last)
            if cfg.hflip_p > 0:
                cube, target, *readable = hflip_batch(cube, target, cfg.hflip_p, flips, *readable)
            with self._autocast():
                loss = self.loss_fn(network(cube, *readable), target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip_norm is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
                torch.nn.utils.clip_grad_norm_(network.parameters(), cfg.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach()
            steps += 1
        return float(loss_sum.item()) / max(steps, 1), False

    def _out_of_time(self, deadline: float) -> bool:
        # Ranks must agree, or one would leave the loop while the others wait in a gradient all-reduce.
        return dist_utils.any_across_ranks(time.perf_counter() > deadline)

    def _evaluate(self, evaluate: Callable[[nn.Module], float]) -> float:
        score = math.nan
        if dist_utils.is_main_process():
            self.model.eval()
            try:
                with torch.no_grad():
                    score = float(evaluate(self.model))
            finally:
                self.model.train()
        return dist_utils.broadcast_float(score)

    def _restore_best(self, selection: _Selection) -> None:
        """Load the best weights; under DDP rank 0's copy goes to every rank (BatchNorm buffers differ per rank)."""
        state = selection.best_state
        if dist_utils.is_distributed():
            # Only rank 0 keeps a copy; it sends its current weights when no evaluation ever improved.
            state = dist_utils.broadcast_state_dict(state if state is not None else self.model.state_dict())
        if state is not None:
            self.model.load_state_dict(state)

    def _report(self, bar: tqdm, entry: dict[str, Any]) -> None:
        score = entry["val_score"]
        bar.set_postfix(loss=f"{entry['train_loss']:.4f}", val="-" if score is None else f"{score:.4f}")
        bar.update(1)
        if score is not None and dist_utils.is_main_process():
            self.ctx.logger.info(
                "epoch %d/%d: train loss %.4f, val score %.4f, lr %.2e (%.1f s)",
                entry["epoch"], self.cfg.epochs, entry["train_loss"], score, entry["lr"], entry["seconds"],
            )
