"""Small images for humans: pseudo-RGB renderings and label maps in the dataset palette."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample

__all__ = ["pseudo_rgb", "colorize", "save_prediction_panel"]

_IGNORE_COLOUR = (0, 0, 0)


def pseudo_rgb(cube: np.ndarray, bands: tuple[int, int, int]) -> np.ndarray:
    """``(H, W, 3)`` uint8 from three bands, each stretched between its 2nd and 98th percentile."""
    channels = []
    for band in bands:
        x = np.asarray(cube[band], dtype=np.float32)
        lo, hi = np.percentile(x, [2, 98])
        channels.append(np.clip((x - lo) / max(hi - lo, 1e-6), 0, 1))
    return (np.stack(channels, axis=-1) * 255).astype(np.uint8)


def colorize(labels: np.ndarray, card: DatasetCard) -> np.ndarray:
    """``(H, W, 3)`` uint8 label map in the card's palette; ignored pixels black."""
    lut = np.zeros((max(card.num_classes, card.ignore_index + 1), 3), dtype=np.uint8)
    lut[: card.num_classes] = np.asarray(card.palette, dtype=np.uint8)
    lut[card.ignore_index] = _IGNORE_COLOUR
    return lut[np.clip(labels, 0, len(lut) - 1)]


def save_prediction_panel(path: Path, sample: Sample, prediction: np.ndarray, card: DatasetCard) -> None:
    """Save pseudo-RGB input | ground truth | prediction side by side (a 2-pixel white gap between)."""
    gap = np.full((sample.labels.shape[0], 2, 3), 255, dtype=np.uint8)
    panel = np.concatenate(
        [pseudo_rgb(sample.cube, card.pseudo_rgb_bands), gap, colorize(sample.labels, card), gap,
         colorize(prediction, card)],
        axis=1,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(panel).save(path)
