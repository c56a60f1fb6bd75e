"""Adapters from hyperspectral cubes to three-channel images for RGB-pretrained networks (``cross_modality``)."""

from hsbench.adapters.colorimetry import cie_cmf, d65_spd, linear_srgb_weights, srgb_encode, visible_coverage
from hsbench.adapters.rgb import ADAPTERS, PCA3, Adapter, CIERendering, Learned, PseudoRGB, build_adapter

__all__ = [
    "ADAPTERS",
    "Adapter",
    "CIERendering",
    "Learned",
    "PCA3",
    "PseudoRGB",
    "build_adapter",
    "cie_cmf",
    "d65_spd",
    "linear_srgb_weights",
    "srgb_encode",
    "visible_coverage",
]
