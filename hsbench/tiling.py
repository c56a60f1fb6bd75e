"""Tiles: dense prediction of whole images by overlapping tiles, and training tiles anchored on labelled pixels.

Tile-based networks (transformers with a fixed token budget) see a ``T x T`` window at a time. Two ways to put
windows back together, one per task (:data:`TILE_PLANS`):

* ``segmentation`` images are densely labelled, so training tiles may sit anywhere around a labelled pixel and
  predictions are blended with a Hann window over tiles that overlap by a quarter: seams disappear and each
  pixel's prediction is dominated by the tiles in which it is most central.
* ``scene`` datasets have a few labelled pixels per class (``kshot``): training tiles are centred on a labelled
  pixel (small jitter), and prediction takes each pixel from the tile whose centre region holds it (stride of
  half a tile, a box window), which is the patch-centre classification of HSI scene benchmarks.

Images smaller than a tile are padded with replicated edges (and ``ignore_index`` labels) and cropped back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["TilePlan", "TILE_PLANS", "WINDOWS", "tile_starts", "predict_tiled", "LabelledTiles", "pad_image"]

CENTRE_FLOOR = 1e-4
"""Weight of the off-centre area in the ``centre`` window: used only where no tile centre covers a pixel."""


def _hann(tile: int, stride: int) -> torch.Tensor:
    ramp = torch.hann_window(tile + 2, periodic=False)[1:-1]  # strictly positive, so every pixel gets weight
    return ramp[:, None] * ramp[None, :]


def _centre(tile: int, stride: int) -> torch.Tensor:
    window = torch.full((tile, tile), CENTRE_FLOOR)
    low = (tile - stride) // 2
    window[low : low + stride, low : low + stride] = 1.0
    return window


WINDOWS: dict[str, Callable[[int, int], torch.Tensor]] = {"hann": _hann, "centre": _centre}
"""Blending windows by name: ``window(tile, stride) -> (tile, tile)`` positive weights."""


@dataclass(frozen=True)
class TilePlan:
    """How one task is tiled.

    Attributes:
        window: a key of :data:`WINDOWS`.
        overlap: fraction of a tile shared by neighbouring prediction tiles.
        jitter: how far (fraction of a tile, each side of the centre) a training tile's centre may be from its
            anchor pixel; 0.5 lets the anchor lie anywhere in the tile.
    """

    window: str
    overlap: float
    jitter: float

    def stride(self, tile: int) -> int:
        return max(1, tile - round(self.overlap * tile))


TILE_PLANS: dict[str, TilePlan] = {
    "segmentation": TilePlan(window="hann", overlap=0.25, jitter=0.5),
    "scene": TilePlan(window="centre", overlap=0.5, jitter=0.25),
}
"""Tiling by dataset task (see the module docstring)."""


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` (``length >= tile``); the last one ends flush."""
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def pad_image(cube: torch.Tensor, tile: int) -> torch.Tensor:
    """Pad ``(C, H, W)`` on the bottom and right to at least ``tile`` per side (replicated edges)."""
    pad_h, pad_w = max(0, tile - cube.shape[-2]), max(0, tile - cube.shape[-1])
    if pad_h == 0 and pad_w == 0:
        return cube
    return F.pad(cube[None], (0, pad_w, 0, pad_h), mode="replicate")[0]


@torch.no_grad()
def predict_tiled(
    predict: Callable[[torch.Tensor], torch.Tensor],
    cube: torch.Tensor,
    *,
    tile: int,
    plan: TilePlan,
    batch_size: int = 16,
) -> torch.Tensor:
    """Blended per-pixel outputs ``(K, H, W)`` of ``predict`` (tiles ``(B, C, T, T)`` -> ``(B, K, T, T)``).

    Args:
        predict: the network in eval mode (the caller puts it there).
        cube: ``(C, H, W)`` on the network's device.
        tile: tile side.
        plan: window, overlap.
        batch_size: tiles per forward pass.
    """
    height, width = cube.shape[-2:]
    padded = pad_image(cube, tile)
    stride = plan.stride(tile)
    window = WINDOWS[plan.window](tile, stride).to(cube.device)
    corners = [(y, x) for y in tile_starts(padded.shape[-2], tile, stride)
               for x in tile_starts(padded.shape[-1], tile, stride)]
    total: torch.Tensor | None = None
    weight = torch.zeros(padded.shape[-2:], device=cube.device)
    for first in range(0, len(corners), batch_size):
        batch = corners[first : first + batch_size]
        outputs = predict(torch.stack([padded[:, y : y + tile, x : x + tile] for y, x in batch])).float()
        if total is None:
            total = torch.zeros(outputs.shape[1], *padded.shape[-2:], device=cube.device)
        for (y, x), output in zip(batch, outputs, strict=True):
            total[:, y : y + tile, x : x + tile] += output * window
            weight[y : y + tile, x : x + tile] += window
    assert total is not None
    return (total / weight)[:, :height, :width]


class LabelledTiles(torch.utils.data.Dataset):
    """Training tiles ``(cube (C, T, T), labels (T, T))``, each around a labelled pixel drawn uniformly.

    Drawing the anchor among labelled pixels keeps sparse (k-shot) labels from being lost in empty tiles;
    for densely labelled images it is close to uniform tiling. Draws come from ``rng`` (the run's ``augment``
    stream), in call order, so the data loader must use no worker processes (the engine's default).

    Args:
        images: ``(cube (C, H, W), labels (H, W))`` pairs, already transformed.
        tile: tile side.
        jitter: see :attr:`TilePlan.jitter`.
        length: items per epoch.
        ignore_index: label of unlabelled pixels.
        rng: random generator.
        readable: per image, the ``(H, W)`` bool mask of the pixels readable without labels (the caller blanks
            the cubes outside it); given, each item adds its tile of the mask, which the engine hands to the
            network for unlabelled losses (padding is unreadable).
    """

    def __init__(
        self,
        images: list[tuple[torch.Tensor, torch.Tensor]],
        *,
        tile: int,
        jitter: float,
        length: int,
        ignore_index: int,
        rng: np.random.Generator,
        readable: list[torch.Tensor] | None = None,
    ) -> None:
        self.tile, self.length, self.rng = tile, length, rng
        self.readable = None if readable is None else [_pad_labels(m, tile, False) for m in readable]
        self.max_offset = int(round(jitter * tile))
        self.images = [(pad_image(c, tile), _pad_labels(t, tile, ignore_index)) for c, t in images]
        self.anchors = [np.argwhere((labels != ignore_index).numpy()) for _, labels in self.images]
        counts = np.array([len(a) for a in self.anchors], dtype=np.float64)
        if counts.sum() == 0:
            raise ValueError("no labelled pixel to anchor training tiles on")
        self.image_p = counts / counts.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        which = int(self.rng.choice(len(self.images), p=self.image_p))
        cube, labels = self.images[which]
        anchor = self.anchors[which][int(self.rng.integers(len(self.anchors[which])))]
        top, left = (self._start(int(a), size) for a, size in zip(anchor, labels.shape, strict=True))
        rows, cols = slice(top, top + self.tile), slice(left, left + self.tile)
        if self.readable is None:
            return cube[:, rows, cols], labels[rows, cols]
        return cube[:, rows, cols], labels[rows, cols], self.readable[which][rows, cols]

    def _start(self, anchor: int, size: int) -> int:
        offset = int(self.rng.integers(-self.max_offset, self.max_offset + 1)) if self.max_offset else 0
        return int(np.clip(anchor - self.tile // 2 + offset, 0, size - self.tile))


def _pad_labels(labels: torch.Tensor, tile: int, ignore_index: int | bool) -> torch.Tensor:
    pad_h, pad_w = max(0, tile - labels.shape[0]), max(0, tile - labels.shape[1])
    return F.pad(labels, (0, pad_w, 0, pad_h), value=ignore_index) if pad_h or pad_w else labels
