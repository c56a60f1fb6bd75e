"""Single-scene remote-sensing datasets (MATLAB files) and user datasets in ENVI format described by a config file.

Importing this package registers ``indian_pines``, ``pavia_u``, ``pavia_c``, ``salinas``, ``ksc``, ``botswana``,
``houston2013``, ``jasper_ridge`` and ``samson`` in ``DATASETS``. User datasets are registered by
:func:`register_user_datasets` (every config under ``<data root>/configs/`` and in ``$HSBENCH_DATASET_CONFIGS``)
or :func:`register_dataset_config` (one file). See ``docs/datasets/scenes.md``.
"""

from hsbench.data.matfile import mat_variable_names, read_mat_array
from hsbench.data.scenes import catalog, unmixing  # noqa: F401  (registers the built-in scene datasets)
from hsbench.data.scenes.envi import (
    EnviFormat,
    EnviHeader,
    EnviSample,
    read_envi_cube,
    read_envi_header,
    read_label_raster,
)
from hsbench.data.scenes.matscene import MatSceneFormat, MatVariable
from hsbench.data.scenes.unmixing import UnmixingSceneFormat
from hsbench.data.scenes.user_config import UserDatasetConfig, load_dataset_config
from hsbench.data.scenes.user_datasets import (
    CONFIGS_ENV,
    build_card,
    config_paths,
    register_dataset_config,
    register_user_datasets,
)

__all__ = [
    "CONFIGS_ENV",
    "EnviFormat",
    "EnviHeader",
    "EnviSample",
    "MatSceneFormat",
    "MatVariable",
    "UnmixingSceneFormat",
    "UserDatasetConfig",
    "build_card",
    "config_paths",
    "load_dataset_config",
    "mat_variable_names",
    "read_envi_cube",
    "read_envi_header",
    "read_label_raster",
    "read_mat_array",
    "register_dataset_config",
    "register_user_datasets",
]
