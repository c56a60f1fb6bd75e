"""Reusable networks, registered in ``MODELS``."""

from hsbench.models import patch_classifiers  # noqa: F401  (registers cnn1d, cnn3d, hybridsn, ssrn)
from hsbench.models.deeplabv3plus import DeepLabV3Plus
from hsbench.models.mobilenetv2 import MobileNetV2Encoder
from hsbench.models.pixel_mlp import PixelMLP
from hsbench.models.unet import RUNet, UNet

__all__ = ["DeepLabV3Plus", "MobileNetV2Encoder", "PixelMLP", "RUNet", "UNet"]
