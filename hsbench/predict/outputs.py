"""Label rasters of one predicted image, in the folder the user chose.

Per image ``<id>`` (through :func:`hsbench.names.path_component`, so any sample id is one safe file name):

* ``<id>.png``: palette image (mode ``P``) whose pixel values are the class ids and whose palette is the card's;
  GIS and image tools show it in the dataset's colours, and ``np.asarray(Image.open(...))`` gives the ids back
  (not written for a card of more than 256 classes, which a palette cannot hold).
* ``<id>.hdr`` + ``<id>.img``: ENVI classification (``file type = ENVI Classification``, BSQ, one band of class
  ids, ``class names`` and ``class lookup`` from the card), readable by ENVI, QGIS / GDAL and ``spectral``.
* ``<id>.npy``: the ``(H, W)`` int64 class ids.
* ``panels/<id>.png``: pseudo-RGB of the input | prediction, for a quick look.

Each file is written under a temporary name and renamed, and none can land outside the folder
(:func:`hsbench.names.inside`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from hsbench._atomic import atomic_file
from hsbench.data.card import DatasetCard
from hsbench.names import inside, path_component
from hsbench.visualize import colorize

__all__ = ["PANELS_DIR", "write_prediction", "write_label_png", "write_envi_classification", "write_panel",
           "envi_classification_header"]

PANELS_DIR = "panels"
_PNG_CLASSES = 256  # a palette image indexes at most 256 colours
_ENVI_UINT8, _ENVI_INT16 = 1, 2  # ENVI data type codes: byte, 16-bit signed integer


def write_prediction(
    out_dir: Path, image_id: str, labels: np.ndarray, card: DatasetCard, *, rgb: np.ndarray | None = None,
    description: str = "",
) -> dict[str, Path]:
    """Write every raster of one image (module docstring); returns them by kind (``png``, ``envi``, ``npy``,
    ``panel``)."""
    name = path_component(image_id)
    paths = {"envi": out_dir / f"{name}.hdr", "npy": out_dir / f"{name}.npy"}
    if card.num_classes <= _PNG_CLASSES:
        paths["png"] = out_dir / f"{name}.png"
    if rgb is not None:
        paths["panel"] = out_dir / PANELS_DIR / f"{name}.png"
    for path in paths.values():
        inside(out_dir, path, "prediction file")
    if "png" in paths:
        write_label_png(paths["png"], labels, card)
    write_envi_classification(paths["envi"], labels, card, description=description)
    with atomic_file(paths["npy"]) as tmp, tmp.open("wb") as f:
        np.save(f, np.asarray(labels, dtype=np.int64))
    if rgb is not None:
        write_panel(paths["panel"], rgb, labels, card)
    return paths


def write_label_png(path: Path, labels: np.ndarray, card: DatasetCard) -> None:
    """Palette PNG of class ids; cards with more than 256 classes cannot have one (a ``ValueError``)."""
    if card.num_classes > _PNG_CLASSES:
        raise ValueError(f"{card.name} has {card.num_classes} classes; a palette PNG holds at most {_PNG_CLASSES}")
    ids = np.ascontiguousarray(labels, dtype=np.uint8)
    image = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.tobytes())
    palette = np.zeros((_PNG_CLASSES, 3), dtype=np.uint8)
    palette[: card.num_classes] = np.asarray(card.palette, dtype=np.uint8)
    image.putpalette(palette.ravel().tolist())
    with atomic_file(path) as tmp:
        image.save(tmp, format="PNG")


def _envi_text(name: str) -> str:
    """A class name as an ENVI list item: the header syntax has no quoting, so ``,{}`` become spaces."""
    return " ".join(name.translate(str.maketrans(",{}", "   ")).split()) or "unnamed"


def envi_classification_header(card: DatasetCard, height: int, width: int, *, description: str = "") -> str:
    """ENVI header text of a one-band classification of ``card``'s classes (byte ids up to 255 classes)."""
    data_type = _ENVI_UINT8 if card.num_classes <= 255 else _ENVI_INT16
    lookup = ", ".join(str(int(c)) for colour in card.palette for c in colour)
    names = ", ".join(_envi_text(n) for n in card.class_names)
    lines = [
        "ENVI",
        f"description = {{{_envi_text(description) if description else 'hsbench predict'}}}",
        f"samples = {width}",
        f"lines = {height}",
        "bands = 1",
        "header offset = 0",
        "file type = ENVI Classification",
        f"data type = {data_type}",
        "interleave = bsq",
        "byte order = 0",
        f"classes = {card.num_classes}",
        f"class lookup = {{{lookup}}}",
        f"class names = {{{names}}}",
        "band names = {class}",
    ]
    return "\n".join(lines) + "\n"


def write_envi_classification(hdr_path: Path, labels: np.ndarray, card: DatasetCard, *, description: str = "") -> Path:
    """Write ``<stem>.img`` (little-endian class ids, BSQ) and its header ``hdr_path``; returns the data file."""
    height, width = labels.shape
    dtype = np.dtype("u1") if card.num_classes <= 255 else np.dtype("<i2")
    data_path = hdr_path.with_suffix(".img")
    with atomic_file(data_path) as tmp:
        np.ascontiguousarray(labels, dtype=dtype).tofile(tmp)
    with atomic_file(hdr_path) as tmp:
        tmp.write_text(envi_classification_header(card, height, width, description=description))
    return data_path


def write_panel(path: Path, rgb: np.ndarray, labels: np.ndarray, card: DatasetCard) -> None:
    """Pseudo-RGB ``(H, W, 3)`` uint8 | the prediction in the card's colours, 2 white pixels apart."""
    gap = np.full((labels.shape[0], 2, 3), 255, dtype=np.uint8)
    panel = np.concatenate([rgb, gap, colorize(labels, card)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        Image.fromarray(panel).save(tmp, format="PNG")
