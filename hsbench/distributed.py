"""Thin helpers over ``torch.distributed`` for data-parallel training launched with ``torchrun``.

Everything here degrades to single-process answers (rank 0 of 1) when no process group exists, so callers never
branch on whether they run distributed. Collectives go through the device the backend can use: NCCL only
moves CUDA tensors, gloo only CPU ones.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = [
    "is_distributed",
    "rank",
    "world_size",
    "is_main_process",
    "init_distributed_from_env",
    "broadcast_float",
    "broadcast_state_dict",
    "any_across_ranks",
]


def is_distributed() -> bool:
    """Whether a default process group is initialised (training then uses DDP)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0: the process that evaluates, logs, shows progress and writes files."""
    return rank() == 0


def init_distributed_from_env(device: torch.device) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment; idempotent.

    Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and ``MASTER_ADDR`` / ``MASTER_PORT`` through the
    ``env://`` rendezvous). Does nothing without ``WORLD_SIZE`` or with a world of one process.

    Args:
        device: the device type to train on; CUDA selects NCCL, anything else gloo.

    Returns:
        The device this process should use: ``cuda:LOCAL_RANK`` on CUDA, ``device`` otherwise.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not is_distributed():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not is_distributed():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            init_method="env://",
            rank=int(os.environ["RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]),
        )
    return device


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_float(value: float, src: int = 0) -> float:
    """``value`` as held by rank ``src``, on every rank (so that decisions made on it agree)."""
    if not is_distributed():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=_comm_device())
    dist.broadcast(tensor, src=src)
    return float(tensor.item())


def any_across_ranks(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one (a collective: every rank must call it)."""
    if not is_distributed():
        return flag
    tensor = torch.tensor([int(flag)], dtype=torch.int32, device=_comm_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def broadcast_state_dict(state: dict[str, torch.Tensor], src: int = 0) -> dict[str, torch.Tensor]:
    """Rank ``src``'s tensors, on CPU, on every rank.

    Every rank passes a dict with the same keys, shapes and dtypes (its own copy serves as the receive buffer).
    """
    if not is_distributed():
        return state
    device = _comm_device()
    received: dict[str, torch.Tensor] = {}
    for key in sorted(state):
        tensor = state[key].detach().to(device, copy=True).contiguous()
        dist.broadcast(tensor, src=src)
        received[key] = tensor.cpu()
    return {key: received[key] for key in state}
