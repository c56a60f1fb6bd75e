"""Apply a run's stored model to new images (``hsbench predict``): inputs, tiling, label rasters."""

from hsbench.predict.apply import DEFAULT_TILE, apply_model, predict_image
from hsbench.predict.inputs import InputImage, dataset_inputs, file_inputs
from hsbench.predict.outputs import write_prediction
from hsbench.predict.runs import RunNotFoundError, resolve_run
from hsbench.predict.tiles import predict_tiled, tile_windows

__all__ = [
    "DEFAULT_TILE", "InputImage", "RunNotFoundError", "apply_model", "dataset_inputs", "file_inputs",
    "predict_image", "predict_tiled", "resolve_run", "tile_windows", "write_prediction",
]
