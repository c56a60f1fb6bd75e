"""Random state dicts in published checkpoint key layouts, shared by the weight-loading tests."""

from __future__ import annotations

import torch


def bn_state(prefix: str, channels: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A BatchNorm's five entries with non-trivial statistics (so a wrong mapping changes the output)."""
    return {
        f"{prefix}.weight": 0.2 + 0.5 * torch.rand(channels, generator=gen),
        f"{prefix}.bias": 0.1 * torch.randn(channels, generator=gen),
        f"{prefix}.running_mean": 0.1 * torch.randn(channels, generator=gen),
        f"{prefix}.running_var": 0.5 + torch.rand(channels, generator=gen),
        f"{prefix}.num_batches_tracked": torch.tensor(100),
    }


def conv_state(name: str, out: int, inp: int, k: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A bias-free convolution weight, He-scaled."""
    return {name: torch.randn(out, inp, k, k, generator=gen) * (2.0 / (inp * k * k)) ** 0.5}


def vainf_head_state(low: int, high: int, num_classes: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """VainF's ``DeepLabHeadV3Plus`` under ``classifier.`` for ``low`` / ``high`` encoder channels.

    The final 1x1 classifier's bias (``classifier.classifier.3.bias``) is left to the caller.
    """
    h = "classifier"
    state = conv_state(f"{h}.project.0.weight", 48, low, 1, gen) | bn_state(f"{h}.project.1", 48, gen)
    state |= conv_state(f"{h}.aspp.convs.0.0.weight", 256, high, 1, gen) | bn_state(f"{h}.aspp.convs.0.1", 256, gen)
    for branch in (1, 2, 3):
        state |= conv_state(f"{h}.aspp.convs.{branch}.0.weight", 256, high, 3, gen)
        state |= bn_state(f"{h}.aspp.convs.{branch}.1", 256, gen)
    state |= conv_state(f"{h}.aspp.convs.4.1.weight", 256, high, 1, gen) | bn_state(f"{h}.aspp.convs.4.2", 256, gen)
    state |= conv_state(f"{h}.aspp.project.0.weight", 256, 1280, 1, gen) | bn_state(f"{h}.aspp.project.1", 256, gen)
    state |= conv_state(f"{h}.classifier.0.weight", 256, 304, 3, gen) | bn_state(f"{h}.classifier.1", 256, gen)
    state |= conv_state(f"{h}.classifier.3.weight", num_classes, 256, 1, gen)
    return state
