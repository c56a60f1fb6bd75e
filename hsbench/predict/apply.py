"""Apply a stored model to images: tile, predict, check, write (``hsbench predict``'s work, without its parsing)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hsbench._atomic import atomic_write_text
from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample, check_finite
from hsbench.names import inside
from hsbench.predict.inputs import InputImage
from hsbench.predict.outputs import write_prediction
from hsbench.predict.tiles import predict_tiled
from hsbench.visualize import pseudo_rgb

__all__ = ["DEFAULT_TILE", "TILE_ALIGN", "SUMMARY_NAME", "predict_image", "input_rgb", "apply_model"]

DEFAULT_TILE = 1024
"""Tile side: every image of the HS3-Bench datasets (HCV2 at 711 x 944 the largest, after halving) fits one tile,
so they are predicted whole, exactly as their runs predicted them; larger scenes are tiled."""
TILE_ALIGN = 32
"""Windows start on multiples of this: the total stride of the registered encoder-decoders (U-Net 2**depth up to
depth 5, DeepLabV3+ 16), so their pooling grids fall on the same pixels as in the whole image."""
SUMMARY_NAME = "predict.json"


def predict_image(
    predict: Callable[[Sample], np.ndarray],
    image: InputImage,
    card: DatasetCard,
    *,
    tile: int,
    margin: int,
    on_tile: Callable[[int, int], None] | None = None,
    cube: Any = None,
) -> np.ndarray:
    """``(H, W)`` int64 class ids of ``image`` in ``card``'s classes, predicted tile by tile (``cube``: the image
    already opened).

    Raises:
        DataError: the cube holds NaN or infinite values (checked window by window, before each prediction:
            a model given NaN answers garbage, not an error).
        RuntimeError: the strategy answered ids outside ``0..K-1`` (a programming error).
    """
    cube = image.open() if cube is None else cube
    height, width = (int(n) for n in cube.shape[-2:])

    def checked(part: Sample) -> np.ndarray:
        values = part.cube if image.scale == 1.0 else part.cube / np.float32(image.scale)
        check_finite(values, f"{image.source} (a {values.shape[1]} x {values.shape[2]} window)")
        return predict(Sample(part.id, values, part.labels))

    hidden = np.broadcast_to(np.int64(card.ignore_index), (height, width))  # predict never sees labels
    labels = predict_tiled(checked, Sample(image.id, cube, hidden), tile, margin, align=TILE_ALIGN, on_tile=on_tile)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= card.num_classes:
        raise RuntimeError(f"{image.source}: the model predicted class ids {low}..{high}, outside 0.."
                           f"{card.num_classes - 1}")
    return labels


def input_rgb(image: InputImage, card: DatasetCard, cube: Any = None) -> np.ndarray:
    """Pseudo-RGB ``(H, W, 3)`` uint8 of the card's pseudo-RGB bands, read one band at a time."""
    cube = image.open() if cube is None else cube
    bands = np.stack([np.asarray(cube[b : b + 1], dtype=np.float32)[0] for b in card.pseudo_rgb_bands])
    return pseudo_rgb(bands / np.float32(image.scale), (0, 1, 2))


def apply_model(
    predict: Callable[[Sample], np.ndarray],
    images: Sequence[InputImage],
    card: DatasetCard,
    out_dir: Path,
    *,
    tile: int = DEFAULT_TILE,
    margin: int = 0,
    progress: bool = True,
    facts: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Predict every image and write its rasters into ``out_dir`` (created), plus ``predict.json`` listing them
    with ``facts`` (run, model); returns the list."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[dict[str, Any]] = []
    description = f"hsbench predict, run {(facts or {}).get('run_id') or ''}".strip(", ")
    with tqdm(images, desc="images", unit="image", disable=not progress) as bar:
        for image in bar:
            tiles = tqdm(desc=f"tiles of {image.id}", unit="tile", leave=False, disable=not progress)

            def on_tile(done: int, total: int, tiles: tqdm = tiles) -> None:
                tiles.total = total
                tiles.update(1)

            cube = image.open()
            with tiles:
                labels = predict_image(predict, image, card, tile=tile, margin=margin, on_tile=on_tile, cube=cube)
            paths = write_prediction(out_dir, image.id, labels, card, rgb=input_rgb(image, card, cube),
                                     description=description)
            written.append({"id": image.id, "source": image.source, "height": int(labels.shape[0]),
                            "width": int(labels.shape[1]),
                            "files": {kind: str(path.relative_to(out_dir)) for kind, path in paths.items()}})
    summary = {**(facts or {}), "tile": tile, "margin": margin, "class_names": list(card.class_names),
               "images": written}
    atomic_write_text(inside(out_dir, out_dir / SUMMARY_NAME), json.dumps(summary, indent=2))
    return written
