"""Common parts of a saved model (:mod:`hsbench.saved_model`): a network's weights and a fitted pixel transform.

Strategies compose their :class:`~hsbench.saved_model.ModelState` from these with
:meth:`~hsbench.saved_model.ModelState.nest`, and rebuild each part on restore with the matching ``load_*``.
"""

from __future__ import annotations

import numpy as np
import torch

from hsbench.data.transforms import PixelTransform
from hsbench.saved_model import ModelState

__all__ = ["load_module", "module_state", "transform_from_state", "transform_state"]


def module_state(module: torch.nn.Module) -> ModelState:
    """Every parameter and persistent buffer of ``module`` (its ``state_dict``), as independent CPU copies.

    Copies, because safetensors refuses tensors that share storage and the run may go on training the module.
    """
    return ModelState({name: t.detach().to("cpu", copy=True).contiguous() for name, t in module.state_dict().items()})


def load_module(module: torch.nn.Module, state: ModelState) -> torch.nn.Module:
    """``module`` with ``state``'s tensors loaded (strict: a missing or extra tensor is an error), in eval mode."""
    module.load_state_dict(state.tensors, strict=True)
    return module.eval()


def transform_state(transform: PixelTransform) -> ModelState:
    """A fitted :class:`PixelTransform`: its float64 mean and matrix (none when it is the identity) and its kind."""
    return ModelState(ModelState.arrays(transform.state()),
                      {"kind": transform.kind, "out_channels": transform.out_channels})


def transform_from_state(state: ModelState) -> PixelTransform:
    """The inverse of :func:`transform_state` (bit-identical: the arrays keep their float64)."""
    out_channels = state.meta.get("out_channels")
    mean, matrix = state.array("mean"), state.array("matrix")
    return PixelTransform(str(state.meta["kind"]), out_channels=None if out_channels is None else int(out_channels),
                          mean=None if mean is None else np.array(mean), matrix=None if matrix is None else
                          np.array(matrix))
