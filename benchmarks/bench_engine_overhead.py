"""Overhead of :class:`hsbench.engine.Trainer` over a bare PyTorch training loop (target: ratio <= 1.05).

Both loops train a freshly initialised RU-Net (same seed) on the same synthetic batches with the same optimizer
and learning rate; the engine runs with a constant schedule, no clipping, no augmentation and one trivial
evaluation at the end, so the difference is the engine's bookkeeping (time checks, scheduler, loss accumulation,
the final best-weights copy). Runs alternate bare / engine in one process, pairs in ABBA order against drift;
the reported number is the median of the per-pair time ratios.

Usage: ``python benchmarks/bench_engine_overhead.py [--repeats 6] [--epochs 3] [--threads 1]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from hsbench.engine import EngineConfig, Trainer
from hsbench.models import RUNet
from hsbench.seeding import SeedStreams
from hsbench.strategy import RunContext

IGNORE = 255
NUM_IMAGES, NUM_BANDS, HEIGHT, WIDTH, NUM_CLASSES, BATCH = 16, 25, 64, 96, 9, 4
LR = 1e-3


def synthetic_set(seed: int = 0) -> TensorDataset:
    """Blocky label maps with class-dependent spectra and 10% unlabelled pixels (HSI-Drive-like shapes)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, NUM_CLASSES, (NUM_IMAGES, HEIGHT // 8, WIDTH // 8), generator=g)
    labels = labels.repeat_interleave(8, 1).repeat_interleave(8, 2)
    signatures = torch.rand(NUM_CLASSES, NUM_BANDS, generator=g)
    noise = 0.05 * torch.randn(NUM_IMAGES, NUM_BANDS, HEIGHT, WIDTH, generator=g)
    cubes = signatures[labels].permute(0, 3, 1, 2) + noise
    labels[torch.rand(labels.shape, generator=g) < 0.1] = IGNORE
    return TensorDataset(cubes.contiguous(), labels)


def fresh_model() -> RUNet:
    torch.manual_seed(0)
    return RUNet(NUM_BANDS, NUM_CLASSES)


def bare_loop(data: TensorDataset, epochs: int) -> float:
    """What one would write by hand: shuffled loader, AdamW, masked cross-entropy, no evaluation."""
    model = fresh_model().train()
    start = time.perf_counter()
    loader = DataLoader(data, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    for _ in range(epochs):
        for cube, target in loader:
            loss = F.cross_entropy(model(cube), target, ignore_index=IGNORE)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def engine_loop(data: TensorDataset, epochs: int, work_dir: Path) -> float:
    model = fresh_model()
    cfg = EngineConfig(
        epochs=epochs, batch_size=BATCH, lr=LR, schedule="constant", grad_clip_norm=None,
        early_stopping_patience=None, eval_every=epochs, hflip_p=0.0,
    )
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=work_dir, progress=False)
    start = time.perf_counter()
    Trainer(model, cfg, ctx, ignore_index=IGNORE).fit(data, evaluate=lambda m: 0.0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6, help="bare/engine pairs")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = synthetic_set()
    with tempfile.TemporaryDirectory() as tmp:
        bare_loop(data, 1)  # warm-up: allocator, kernels
        engine_loop(data, 1, Path(tmp))
        ratios = []
        for i in range(args.repeats):
            if i % 2 == 0:
                bare, engine = bare_loop(data, args.epochs), engine_loop(data, args.epochs, Path(tmp))
            else:
                engine, bare = engine_loop(data, args.epochs, Path(tmp)), bare_loop(data, args.epochs)
            ratios.append(engine / bare)
            print(f"pair {i + 1}: bare {bare:.3f} s, engine {engine:.3f} s, ratio {engine / bare:.4f}")
    print(f"median engine/bare time ratio: {statistics.median(ratios):.4f} over {len(ratios)} pairs (target <= 1.05)")


if __name__ == "__main__":
    main()
