"""``hsbench show``: describe a dataset (its card), a strategy (its options) or a model."""

from __future__ import annotations

import argparse

__all__ = ["NAME", "add_parser", "run"]

NAME = "show"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``show`` to the ``hsbench`` parser's sub-commands."""
    p = subparsers.add_parser("show", help="describe a dataset (card), strategy (options) or model",
                              description="Describe a registered entry.")
    p.add_argument("kind", choices=("dataset", "strategy", "model"))
    p.add_argument("name")


def run(args: argparse.Namespace) -> int:
    from hsbench.describe import DESCRIBERS

    print(DESCRIBERS[args.kind](args.name))
    return 0
