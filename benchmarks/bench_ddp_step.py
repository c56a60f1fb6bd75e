"""DDP training step time: 2 processes (gloo, CPU) against 1 process, same global batch and model.

A step is what :class:`hsbench.engine.Trainer` does per batch: forward, masked cross-entropy, backward (under DDP
the gradient all-reduce overlaps it), gradient clipping and an AdamW update. One process runs the global batch
with every CPU thread (and, for reference, with half of them); under DDP each of the 2 processes runs half the
batch with half the threads. The ratio
(DDP step time / single-process step time) is informative only on CPU: the cores are the same either way, so DDP
can only win where one process does not use its threads well, and it pays for the all-reduce. On GPUs each
process has its own device, which is what DDP is for.

Usage: ``python benchmarks/bench_ddp_step.py [--steps 10] [--batch 8] [--base-channels 16]``
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from hsbench.engine import masked_cross_entropy
from hsbench.models import UNet

NUM_BANDS, NUM_CLASSES, HEIGHT, WIDTH = 25, 9, 64, 96  # synthetic_drive-like images
WARMUP = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _step_times(rank: int, world: int, threads: int, args: argparse.Namespace, port: int, queue) -> None:
    torch.set_num_threads(threads)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = UNet(NUM_BANDS, NUM_CLASSES, base_channels=args.base_channels)
    network = DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = masked_cross_entropy(255)
    g = torch.Generator().manual_seed(rank)
    cube = torch.randn(args.batch // world, NUM_BANDS, HEIGHT, WIDTH, generator=g)
    target = torch.randint(0, NUM_CLASSES, (args.batch // world, HEIGHT, WIDTH), generator=g)
    times = []
    for step in range(WARMUP + args.steps):
        start = time.perf_counter()
        loss = loss_fn(network(cube), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        if world > 1:
            dist.barrier()  # a step ends when the slowest rank is done
        if step >= WARMUP:
            times.append(time.perf_counter() - start)
    if rank == 0:
        queue.put(statistics.median(times))
    if world > 1:
        dist.destroy_process_group()


def median_step_s(world: int, threads: int, args: argparse.Namespace) -> float:
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    port = _free_port()
    processes = [context.Process(target=_step_times, args=(rank, world, threads, args, port, queue))
                 for rank in range(world)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    if any(p.exitcode != 0 for p in processes):
        raise RuntimeError("a benchmark process failed")
    return queue.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8, help="global batch size")
    parser.add_argument("--base-channels", type=int, default=16)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    half = max(1, cores // 2)
    single, single_half, ddp = median_step_s(1, cores, args), median_step_s(1, half, args), median_step_s(2, half, args)
    print(f"1 process, {cores} threads: {1000 * single:.1f} ms/step (batch {args.batch})")
    print(f"1 process, {half} threads: {1000 * single_half:.1f} ms/step (batch {args.batch})")
    print(f"2 processes (DDP, gloo), {half} threads each: {1000 * ddp:.1f} ms/step (batch {args.batch // 2} each)")
    print(f"ratio DDP / 1 process with all threads: {ddp / single:.2f}; DDP / 1 process with {half} threads: "
          f"{ddp / single_half:.2f} (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
