"""Where real datasets live: ``--data-root``, else ``$HSBENCH_DATA``, else ``~/.cache/hsbench/data``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_root_from", "hsbench_home"]


def hsbench_home() -> Path:
    """Root for caches and the zoo (``$HSBENCH_HOME`` overrides ``~/.cache/hsbench``)."""
    return Path(os.environ.get("HSBENCH_HOME") or Path.home() / ".cache" / "hsbench").expanduser()


def data_root_from(cli_value: Path | None) -> Path:
    if cli_value is not None:
        return cli_value.expanduser()
    env = os.environ.get("HSBENCH_DATA")
    return Path(env).expanduser() if env else hsbench_home() / "data"
