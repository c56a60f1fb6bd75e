"""hsbench: a benchmark harness for transfer learning on hyperspectral images."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
