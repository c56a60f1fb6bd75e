"""Pad-and-crop so that fully convolutional networks accept any image size.

Encoder-decoder networks need the input size to be a multiple of their total stride, or skip connections and
upsampled maps disagree by a pixel. Real HSI images are not (HSI-Drive is 216 x 409, HyKo2 about 254 x 510), so
every network pads on the bottom and right edges and crops its logits back to the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["pad_to_multiple", "crop_to"]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the last two dimensions of ``x`` (N, C, H, W) up to a multiple of ``multiple``.

    Replicate padding, because it works for any size (reflect needs the pad to be smaller than the image) and
    does not inject an artificial zero spectrum at the border.
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def crop_to(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Crop the last two dimensions of ``x`` to ``size`` (undoes :func:`pad_to_multiple`)."""
    height, width = size
    if x.shape[-2] == height and x.shape[-1] == width:
        return x
    return x[..., :height, :width]
