"""Options of the commands that open a stored run's model (``hsbench predict``, ``hsbench evaluate``)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_stored_run_options"]


def add_stored_run_options(p: argparse.ArgumentParser) -> None:
    """Where the run is stored (``--results`` / ``--db``), where real datasets are, the device, progress bars."""
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default ./results)")
    p.add_argument("--db", help="results database URL or SQLite path (default <results>/hsbench.db)")
    p.add_argument("--data-root", type=Path, help="prepared real datasets (default $HSBENCH_DATA)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
