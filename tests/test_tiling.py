"""Tiled dense prediction and labelled training tiles (hsbench.tiling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsbench.tiling import TILE_PLANS, LabelledTiles, TilePlan, predict_tiled, tile_starts

IGNORE = 255


@pytest.mark.parametrize(("length", "tile", "stride"), [(10, 10, 5), (33, 16, 12), (17, 8, 4), (64, 32, 16)])
def test_tile_starts_cover_and_end_flush(length: int, tile: int, stride: int) -> None:
    starts = tile_starts(length, tile, stride)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered.all() and starts[0] == 0 and starts[-1] == length - tile
    assert all(b - a <= stride for a, b in zip(starts, starts[1:], strict=False))


@pytest.mark.parametrize("task", sorted(TILE_PLANS))
@pytest.mark.parametrize(("height", "width"), [(37, 53), (9, 40), (16, 16)])
def test_blending_reproduces_a_tile_independent_prediction(task: str, height: int, width: int) -> None:
    """A per-pixel map blended over any overlap must come back unchanged, including images smaller than a tile."""
    cube = torch.randn(3, height, width)
    out = predict_tiled(lambda tiles: tiles * 2.0, cube, tile=16, plan=TILE_PLANS[task], batch_size=5)
    assert out.shape == (3, height, width)
    torch.testing.assert_close(out, cube * 2.0)


def test_centre_window_takes_each_pixel_from_the_tile_it_is_central_in() -> None:
    tile = 16
    plan = TilePlan(window="centre", overlap=0.5, jitter=0.25)

    def distance_to_tile_centre(tiles: torch.Tensor) -> torch.Tensor:
        coords = torch.arange(tile, dtype=torch.float32) - (tile - 1) / 2
        dist = torch.maximum(coords.abs()[:, None], coords.abs()[None, :])
        return dist.expand(tiles.shape[0], 1, tile, tile)

    out = predict_tiled(distance_to_tile_centre, torch.zeros(1, 64, 64), tile=tile, plan=plan)
    interior = out[0, tile // 4 : -tile // 4, tile // 4 : -tile // 4]
    assert float(interior.max()) <= plan.stride(tile) / 2  # never from a tile's outer ring
    hann = predict_tiled(distance_to_tile_centre, torch.zeros(1, 64, 64), tile=tile, plan=TILE_PLANS["segmentation"])
    assert float(hann[0].mean()) > float(out[0].mean())  # blending mixes in off-centre outputs


def test_labelled_tiles_always_hold_a_labelled_pixel() -> None:
    labels = torch.full((40, 50), IGNORE, dtype=torch.int64)
    labels[5, 7], labels[30, 44], labels[20, 20] = 0, 1, 2
    small = torch.full((6, 9), IGNORE, dtype=torch.int64)
    small[2, 3] = 3
    images = [(torch.randn(4, 40, 50), labels), (torch.randn(4, 6, 9), small)]
    tiles = LabelledTiles(images, tile=16, jitter=0.25, length=50, ignore_index=IGNORE, rng=np.random.default_rng(0))
    seen = set()
    for index in range(len(tiles)):
        cube, target = tiles[index]
        assert cube.shape == (4, 16, 16) and target.shape == (16, 16)
        present = target[target != IGNORE]
        assert len(present) >= 1
        seen.update(present.tolist())
    assert seen == {0, 1, 2, 3}


def test_scene_jitter_keeps_the_anchor_near_the_tile_centre() -> None:
    labels = torch.full((64, 64), IGNORE, dtype=torch.int64)
    labels[32, 32] = 0
    tiles = LabelledTiles([(torch.zeros(1, 64, 64), labels)], tile=16, jitter=0.25, length=40, ignore_index=IGNORE,
                          rng=np.random.default_rng(1))
    for index in range(len(tiles)):
        row, col = (tiles[index][1] == 0).nonzero()[0].tolist()
        assert 4 <= row <= 12 and 4 <= col <= 12


def test_labelled_tiles_reject_views_without_labels() -> None:
    empty = torch.full((20, 20), IGNORE, dtype=torch.int64)
    with pytest.raises(ValueError, match="no labelled pixel"):
        LabelledTiles([(torch.zeros(1, 20, 20), empty)], tile=8, jitter=0.5, length=4, ignore_index=IGNORE,
                      rng=np.random.default_rng(0))
