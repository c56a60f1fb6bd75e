"""Training precision by name: the autocast dtype each option gives on each device type.

hsbench trains in bf16 autocast on CUDA (no loss scaling needed, same exponent range as float32); HS3-Bench
(``nickstheisen/hyperseg``, ``run/train.py``) trains in float32, and in Lightning's ``precision="16-mixed"``
(fp16 autocast with a gradient scaler) where the dataset config sets ``half_precision: True`` (HyperspectralCity
V2, ``run/conf/dataset/hcv2*.yaml``). CPU runs stay in float32 whatever the option: CPU autocast is slow for
convolutions and hsbench's CPU runs are smoke tests and CI, where numbers must not depend on it.
"""

from __future__ import annotations

import torch

from hsbench.config_files import require_choice

__all__ = ["PRECISIONS", "autocast_dtype", "check_precision"]

PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,  # no autocast
    "bf16": torch.bfloat16,
    "fp16": torch.float16,  # with a GradScaler (hsbench.engine.Trainer)
}
"""The CUDA autocast dtype of each ``precision`` option (``None``: no autocast)."""

AUTOCAST_DEVICES = frozenset({"cuda"})
"""Device types on which the option takes effect; elsewhere training stays in float32."""


def check_precision(name: str) -> str:
    """``name`` if it is a key of :data:`PRECISIONS`, else a one-line ConfigError with the closest names."""
    return require_choice("precision", name, PRECISIONS)


def autocast_dtype(name: str, device_type: str) -> torch.dtype | None:
    """The autocast dtype of option ``name`` on ``device_type``; ``None`` means plain float32."""
    dtype = PRECISIONS[check_precision(name)]
    return dtype if device_type in AUTOCAST_DEVICES else None
