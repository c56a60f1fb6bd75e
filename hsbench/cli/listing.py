"""``hsbench list``: the registered names of datasets, strategies, metrics or models."""

from __future__ import annotations

import argparse

__all__ = ["NAME", "LIST_KINDS", "add_parser", "run"]

NAME = "list"

LIST_KINDS = ("datasets", "strategies", "metrics", "models")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``list`` to the ``hsbench`` parser's sub-commands."""
    p = subparsers.add_parser("list", help="list registered datasets, strategies, metrics or models",
                              description="List registered names.")
    p.add_argument("kind", nargs="?", choices=LIST_KINDS)


def run(args: argparse.Namespace) -> int:
    """Print one name per line (grouped under each kind when no kind is given)."""
    from hsbench.registry import REGISTRIES, names

    kinds = [args.kind] if args.kind else list(LIST_KINDS)
    for kind in kinds:
        entries = names(REGISTRIES[kind])
        if len(kinds) > 1:
            print(f"{kind}:")
        for name in entries:
            print(f"  {name}" if len(kinds) > 1 else name)
    return 0
