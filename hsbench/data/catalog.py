"""Imports every built-in dataset module so that each registers itself in ``DATASETS``."""

from hsbench.data import hs3bench, scenes, synthetic_datasets  # noqa: F401
