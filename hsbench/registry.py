"""The four registries of hsbench (mmengine ``Registry`` objects, scope ``hsbench``).

Plug-ins register themselves at import time; :func:`lookup` is the one way to resolve a user-given name, so
that every unknown name fails the same way, with the closest valid names in the message.
"""

from __future__ import annotations

import difflib
from typing import Any

from mmengine.registry import Registry

from hsbench.errors import UnknownNameError

__all__ = ["DATASETS", "STRATEGIES", "METRICS", "MODELS", "REGISTRIES", "lookup", "names"]

DATASETS = Registry("dataset", scope="hsbench")
"""Dataset factories: ``factory(**options) -> hsbench.data.Dataset``."""
STRATEGIES = Registry("strategy", scope="hsbench")
"""Strategy classes implementing :class:`hsbench.strategy.Strategy`."""
METRICS = Registry("metric", scope="hsbench")
"""Scalar metric functions of an int64 confusion matrix: ``fn(cm) -> float``."""
MODELS = Registry("model", scope="hsbench")
"""Network classes: ``cls(in_channels, num_classes, **options) -> torch.nn.Module``."""

REGISTRIES: dict[str, Registry] = {
    "datasets": DATASETS,
    "strategies": STRATEGIES,
    "metrics": METRICS,
    "models": MODELS,
}


def _ensure_plugins_loaded() -> None:
    # Importing these packages registers every built-in entry; deferred to avoid import cycles.
    import hsbench.data.catalog  # noqa: F401
    import hsbench.metrics  # noqa: F401
    import hsbench.models  # noqa: F401
    import strategies  # noqa: F401


def names(registry: Registry) -> list[str]:
    """Sorted names registered in ``registry``."""
    _ensure_plugins_loaded()
    return sorted(registry.module_dict)


def lookup(registry: Registry, name: str) -> Any:
    """Return the entry registered as ``name`` or raise with the closest valid names."""
    _ensure_plugins_loaded()
    entry = registry.module_dict.get(name)
    if entry is not None:
        return entry
    valid = sorted(registry.module_dict)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise UnknownNameError(
        f"unknown {registry.name} {name!r}: {hint}valid names are {', '.join(valid) or '(none)'}"
    )
