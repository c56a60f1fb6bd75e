"""The training engine: learning, model selection, stopping rules, ignore_index, augmentation, determinism, DDP."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import optuna
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

from hsbench import distributed as dist_utils
from hsbench.engine import EngineConfig, Trainer, hflip_batch, masked_cross_entropy
from hsbench.errors import ConfigError
from hsbench.models import RUNet, UNet
from hsbench.seeding import SeedStreams
from hsbench.strategy import RunContext

torch.set_num_threads(1)

IGNORE = 255
NUM_BANDS, NUM_CLASSES = 4, 3


class BlockDataset(torch.utils.data.Dataset):
    """Blocky label maps whose pixel spectra are class signatures plus noise (learnable from one pixel)."""

    def __init__(self, count: int, *, seed: int, height: int = 16, width: int = 16, ignore_all: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        signatures = torch.tensor([[1.0, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.5], [0.0, 0.0, 1.0, -0.5]])
        coarse = torch.randint(0, NUM_CLASSES, (count, height // 4, width // 4), generator=g)
        self.targets = coarse.repeat_interleave(4, 1).repeat_interleave(4, 2)
        noise = 0.1 * torch.randn(count, NUM_BANDS, height, width, generator=g)
        self.cubes = signatures[self.targets].permute(0, 3, 1, 2) + noise
        self.targets[torch.rand(self.targets.shape, generator=g) < 0.1] = IGNORE
        if ignore_all:
            self.targets[:] = IGNORE

    def __len__(self) -> int:
        return len(self.cubes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cubes[index], self.targets[index]


def make_ctx(tmp_path: Path, seed: int = 0, **kwargs) -> RunContext:
    return RunContext(device=torch.device("cpu"), seeds=SeedStreams(seed), work_dir=tmp_path, progress=False, **kwargs)


def tiny_net(seed: int = 0, runet: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    if runet:
        return RUNet(NUM_BANDS, NUM_CLASSES, base_channels=4, depth=2)
    return UNet(NUM_BANDS, NUM_CLASSES, base_channels=4, depth=2)


def miou(model: nn.Module, data: BlockDataset) -> float:
    with torch.no_grad():
        pred = model(data.cubes).argmax(1)
    valid = data.targets != IGNORE
    ious = []
    for k in range(NUM_CLASSES):
        p, t = (pred == k) & valid, (data.targets == k) & valid
        if (p | t).any():
            ious.append(float((p & t).sum() / (p | t).sum()))
    return sum(ious) / len(ious)


def scripted(scores: list[float], log: list[dict] | None = None):
    """A fake ``evaluate`` returning ``scores`` in turn, optionally snapshotting the weights it was shown."""
    calls = iter(scores)

    def evaluate(model: nn.Module) -> float:
        assert not model.training
        if log is not None:
            log.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(calls)

    return evaluate


def fast_cfg(**kwargs) -> EngineConfig:
    return EngineConfig(**{"epochs": 3, "batch_size": 4, "early_stopping_patience": None, **kwargs})


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ------------------------------------------------------------------------------------------------- learning
def test_learns_a_trivially_learnable_task(tmp_path: Path) -> None:
    train, val = BlockDataset(8, seed=1), BlockDataset(4, seed=2)
    model = tiny_net(runet=True)
    chance = miou(model.eval(), val)
    cfg = fast_cfg(epochs=15, lr=1e-2, batch_size=2, schedule="constant")
    result = Trainer(model, cfg, make_ctx(tmp_path), ignore_index=IGNORE).fit(train, lambda m: miou(m, val))
    assert result.best_score > 0.8 > chance + 0.3
    assert result.stopped_reason == "completed" and result.epochs_run == 15
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert model.training  # handed back in train mode
    assert math.isclose(miou(model.eval(), val), result.best_score)


def test_restores_weights_of_the_best_epoch(tmp_path: Path) -> None:
    snapshots: list[dict[str, torch.Tensor]] = []
    model = tiny_net(runet=True)
    evaluate = scripted([0.1, 0.2, 0.9, 0.3, 0.4], snapshots)
    result = Trainer(model, fast_cfg(epochs=5), make_ctx(tmp_path), ignore_index=IGNORE).fit(
        BlockDataset(8, seed=1), evaluate
    )
    assert (result.best_epoch, result.best_score, result.epochs_run) == (3, 0.9, 5)
    assert [h["val_score"] for h in result.history] == [0.1, 0.2, 0.9, 0.3, 0.4]
    assert_same_state(model.state_dict(), snapshots[2])  # BatchNorm buffers included
    assert not all(torch.equal(model.state_dict()[k], v) for k, v in snapshots[4].items())


def test_early_stopping_after_patience_evaluations_without_improvement(tmp_path: Path) -> None:
    cfg = fast_cfg(epochs=10, early_stopping_patience=2)
    result = Trainer(tiny_net(), cfg, make_ctx(tmp_path), ignore_index=IGNORE).fit(
        BlockDataset(4, seed=1), scripted([0.5, 0.6, 0.6, 0.55, 0.9])
    )
    assert (result.stopped_reason, result.epochs_run, result.best_epoch, result.best_score) == (
        "early_stopping", 4, 2, 0.6,
    )


def test_eval_every_evaluates_periodically_and_at_the_end(tmp_path: Path) -> None:
    result = Trainer(tiny_net(), fast_cfg(epochs=5, eval_every=2), make_ctx(tmp_path), ignore_index=IGNORE).fit(
        BlockDataset(4, seed=1), scripted([0.3, 0.2, 0.1])
    )
    assert [h["val_score"] for h in result.history] == [None, 0.3, None, 0.2, 0.1]
    assert result.best_epoch == 2


def test_time_budget_stops_before_training_and_still_scores(tmp_path: Path) -> None:
    model = tiny_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ctx = make_ctx(tmp_path, time_budget_s=0.0)
    result = Trainer(model, fast_cfg(epochs=5), ctx, ignore_index=IGNORE).fit(BlockDataset(4, seed=1), scripted([0.4]))
    summary = (result.stopped_reason, result.epochs_run, result.best_epoch, result.best_score)
    assert summary == ("time_budget", 0, 0, 0.4)
    assert_same_state(model.state_dict(), before)


def test_time_budget_stops_between_iterations_and_restores_best(tmp_path: Path) -> None:
    snapshots: list[dict[str, torch.Tensor]] = []
    ctx = make_ctx(tmp_path, time_budget_s=1.0, epoch_callback=lambda epoch, score: time.sleep(1.05))
    model = tiny_net()
    result = Trainer(model, fast_cfg(epochs=5), ctx, ignore_index=IGNORE).fit(
        BlockDataset(4, seed=1), scripted([0.7, 0.1], snapshots)
    )
    assert (result.stopped_reason, result.epochs_run, result.best_epoch) == ("time_budget", 1, 1)
    assert_same_state(model.state_dict(), snapshots[0])


def test_epoch_callback_gets_every_evaluation_and_its_exception_propagates(tmp_path: Path) -> None:
    calls: list[tuple[int, float]] = []

    def callback(epoch: int, score: float) -> None:
        calls.append((epoch, score))
        if epoch == 2:
            raise optuna.TrialPruned()

    ctx = make_ctx(tmp_path, epoch_callback=callback)
    with pytest.raises(optuna.TrialPruned):
        Trainer(tiny_net(), fast_cfg(epochs=5), ctx, ignore_index=IGNORE).fit(
            BlockDataset(4, seed=1), scripted([0.1, 0.2, 0.3])
        )
    assert calls == [(1, 0.1), (2, 0.2)]


# ------------------------------------------------------------------------------------------ loss and labels
def test_masked_cross_entropy_ignores_unlabelled_pixels() -> None:
    logits = torch.randn(2, NUM_CLASSES, 5, 6, requires_grad=True)
    target = torch.randint(0, NUM_CLASSES, (2, 5, 6))
    target[:, :2] = IGNORE
    loss = masked_cross_entropy(IGNORE)(logits, target)
    torch.testing.assert_close(loss, F.cross_entropy(logits, target, ignore_index=IGNORE))
    loss.backward()
    assert torch.all(logits.grad[:, :, :2] == 0)


def test_batch_without_labels_gives_zero_loss_and_zero_gradient() -> None:
    logits = torch.randn(2, NUM_CLASSES, 5, 6, requires_grad=True)
    loss = masked_cross_entropy(IGNORE)(logits, torch.full((2, 5, 6), IGNORE))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_training_on_unlabelled_images_leaves_weights_unchanged(tmp_path: Path) -> None:
    model = tiny_net()  # no BatchNorm: nothing but gradients could change the weights
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = Trainer(model, fast_cfg(epochs=2), make_ctx(tmp_path), ignore_index=IGNORE).fit(
        BlockDataset(4, seed=1, ignore_all=True), scripted([0.0, 0.0])
    )
    assert all(h["train_loss"] == 0.0 for h in result.history)
    assert_same_state(model.state_dict(), before)


# ------------------------------------------------------------------------------------------- augmentation
def test_hflip_flips_cube_and_target_together() -> None:
    columns = torch.arange(10.0).expand(16, 2, 7, 10).clone()
    target = columns[:, 0].long()
    flipped_cube, flipped_target = hflip_batch(columns, target, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(flipped_cube[:, 0].long(), flipped_target)  # consistent per sample
    was_flipped = flipped_target[:, 0, 0] == 9
    assert 0 < int(was_flipped.sum()) < 16
    assert torch.equal(flipped_cube[was_flipped], columns[was_flipped].flip(-1))
    assert torch.equal(columns[:, 0, 0, 0], torch.zeros(16))  # input untouched
    again = hflip_batch(columns, target, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(again[1], flipped_target)


def test_engine_applies_hflip_with_the_configured_probability(tmp_path: Path) -> None:
    seen: list[torch.Tensor] = []

    def spy_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        seen.append(target.clone())
        return logits.mean()

    data = BlockDataset(1, seed=3)
    cfg = fast_cfg(epochs=1, batch_size=1, hflip_p=1.0)
    Trainer(tiny_net(), cfg, make_ctx(tmp_path), ignore_index=IGNORE, loss_fn=spy_loss).fit(data, scripted([0.0]))
    assert torch.equal(seen[0][0], data.targets[0].flip(-1))


# ----------------------------------------------------------------------------------- schedule and config
def test_warmup_then_cosine_schedule_per_step_and_per_epoch(tmp_path: Path) -> None:
    def lrs(interval: str) -> list[float]:
        cfg = fast_cfg(epochs=4, warmup_epochs=1, lr=1.0, schedule="cosine", schedule_interval=interval)
        trainer = Trainer(tiny_net(), cfg, make_ctx(tmp_path), ignore_index=IGNORE)
        optimizer = torch.optim.SGD(trainer.model.parameters(), lr=1.0)
        scheduler = trainer._make_scheduler(optimizer, steps_per_epoch=2)
        values = []
        for _ in range(8):
            values.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return values

    per_step = lrs("step")
    assert per_step[:3] == [0.5, 1.0, 1.0] and per_step[3] < 1.0 and per_step == sorted(per_step[:2]) + sorted(
        per_step[2:], reverse=True
    )
    per_epoch = lrs("epoch")
    assert per_epoch[:4] == [1.0, 1.0, 1.0, 1.0] and per_epoch[4] == per_epoch[5] < 1.0


def test_config_rejects_unknown_names_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="adamw"):
        EngineConfig(optimizer="adamx")
    with pytest.raises(ConfigError):
        EngineConfig(schedule="step")
    with pytest.raises(ConfigError):
        EngineConfig(hflip_p=1.5)


# ------------------------------------------------------------------------------------------- determinism
def test_same_seeds_give_identical_weights_and_history(tmp_path: Path) -> None:
    def run(seed: int) -> tuple[dict, list[dict]]:
        model = tiny_net(runet=True)  # dropout and BatchNorm
        cfg = fast_cfg(epochs=3, batch_size=2, hflip_p=0.5)
        result = Trainer(model, cfg, make_ctx(tmp_path, seed=seed), ignore_index=IGNORE).fit(
            BlockDataset(6, seed=1), lambda m: miou(m, BlockDataset(2, seed=2))
        )
        history = [{k: v for k, v in h.items() if k != "seconds"} for h in result.history]
        return model.state_dict(), history

    first, second, other = run(0), run(0), run(1)
    assert_same_state(first[0], second[0])
    assert first[1] == second[1]
    assert not torch.equal(first[0]["head.weight"], other[0]["head.weight"])


# --------------------------------------------------------------------------------------------------- DDP
def test_distributed_helpers_outside_a_process_group() -> None:
    assert not dist_utils.is_distributed()
    assert (dist_utils.rank(), dist_utils.world_size(), dist_utils.is_main_process()) == (0, 1, True)
    assert dist_utils.init_distributed_from_env(torch.device("cpu")) == torch.device("cpu")
    assert not dist_utils.is_distributed()


def _ddp_worker(rank: int, world: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    try:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
        assert dist_utils.init_distributed_from_env(torch.device("cpu")) == torch.device("cpu")  # idempotent
        assert (dist_utils.rank(), dist_utils.world_size()) == (rank, world)
        model = tiny_net(seed=rank, runet=True)  # different initial weights: DDP must align them
        calls: list[int] = []

        def evaluate(m: nn.Module) -> float:
            calls.append(1)
            return [0.9, 0.1][len(calls) - 1]

        ctx = make_ctx(Path(folder))
        result = Trainer(model, fast_cfg(epochs=2, batch_size=4, hflip_p=0.5), ctx, ignore_index=IGNORE).fit(
            BlockDataset(8, seed=1), evaluate
        )
        torch.save(
            {"state": model.state_dict(), "best_epoch": result.best_epoch, "scores": result.history, "calls": calls},
            Path(folder) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_end_with_identical_best_weights(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    out = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert_same_state(out[0]["state"], out[1]["state"])
    assert out[0]["best_epoch"] == out[1]["best_epoch"] == 1
    assert [h["val_score"] for h in out[1]["scores"]] == [0.9, 0.1]  # broadcast from rank 0
    assert (len(out[0]["calls"]), len(out[1]["calls"])) == (2, 0)  # only rank 0 evaluates


# ------------------------------------------------------------------------------------------- speed settings
def test_channels_last_trains_the_network_in_nhwc_and_learns_the_same_task(tmp_path: Path) -> None:
    seen: list[bool] = []

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = tiny_net(runet=True)

        def forward(self, cube: torch.Tensor) -> torch.Tensor:
            if self.training:  # training batches only (evaluation feeds its own tensors)
                seen.append(cube.is_contiguous(memory_format=torch.channels_last))
            return self.net(cube)

    train, val = BlockDataset(8, seed=1), BlockDataset(4, seed=2)
    train.cubes = train.cubes.contiguous()  # NCHW, as the data pipeline delivers it
    scores = {}
    for channels_last in (True, False):
        seen.clear()
        model = Probe()
        cfg = fast_cfg(epochs=15, lr=1e-2, batch_size=2, schedule="constant", channels_last=channels_last)
        scores[channels_last] = Trainer(model, cfg, make_ctx(tmp_path), ignore_index=IGNORE).fit(
            train, lambda m: miou(m, val)).best_score
        conv = next(m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
        assert set(seen) == {channels_last}
        assert conv.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert scores[True] > 0.8 and scores[False] > 0.8


def test_channels_last_changes_the_layout_not_the_function() -> None:
    """Same weights, same input: the NHWC network computes what the NCHW one does (dropout aside, whose masks are
    drawn in memory order, hence eval mode)."""
    import copy

    model = tiny_net(runet=True).eval()
    nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last)
    cube = BlockDataset(2, seed=3).cubes.contiguous()
    with torch.no_grad():
        expected, got = model(cube), nhwc(cube.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(expected, got, atol=1e-5)


def test_fused_adamw_is_the_engine_optimizer() -> None:
    from hsbench.engine import OPTIMIZERS

    optimizer = OPTIMIZERS["adamw"](tiny_net().parameters(), fast_cfg())
    assert optimizer.defaults["fused"] is True


def test_curve_gives_the_val_score_and_seconds_of_every_epoch(tmp_path: Path) -> None:
    cfg = fast_cfg(epochs=4, eval_every=2)
    result = Trainer(tiny_net(), cfg, make_ctx(tmp_path), ignore_index=IGNORE).fit(
        BlockDataset(4, seed=1), scripted([0.3, 0.5]))
    curve = result.curve()
    assert curve["val_history"] == [None, 0.3, None, 0.5]
    assert len(curve["epoch_seconds"]) == 4 and all(s > 0 for s in curve["epoch_seconds"])
