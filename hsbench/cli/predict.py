"""``hsbench predict``: apply a run's stored model to images and write label rasters (:mod:`hsbench.predict`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hsbench.cli.stored_runs import add_stored_run_options
from hsbench.errors import ConfigError

__all__ = ["NAME", "add_parser", "run"]

NAME = "predict"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``predict`` to the ``hsbench`` parser's sub-commands."""
    from hsbench.predict.apply import DEFAULT_TILE
    from hsbench.predict.inputs import FILE_TYPES

    p = subparsers.add_parser(
        "predict", help="apply a run's stored model to images and write label rasters",
        description="Predict class ids with the model a run kept, for a file or a dataset split, and write per "
                    "image <id>.png (palette), <id>.hdr + .img (ENVI classification), <id>.npy and "
                    "panels/<id>.png into --out. Inputs must have the training bands (count and, when the file "
                    "says, wavelengths).",
        epilog="Example: hsbench predict --run 3f2a9c --input scene.hdr --out predictions/")
    p.add_argument("--run", required=True, help="run id (or a unique prefix) in the results database, or a run folder")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, metavar="FILE", help=f"an image file: {FILE_TYPES}")
    source.add_argument("--dataset", metavar="NAME", help="a registered dataset; predicts the images of --part")
    p.add_argument("--split", help="split of --dataset (default: the run's own split)")
    p.add_argument("--part", choices=("train", "val", "test"), help="part of the split to predict (default test)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help=f"tile side in pixels; larger images are predicted tile by tile with the model's spatial "
                        f"context as overlap (default {DEFAULT_TILE})")
    add_stored_run_options(p)


def _run_split(run_dir: Path) -> str:
    """The split the run was made with (its ``config.json``)."""
    import json

    try:
        return str(json.loads((run_dir / "config.json").read_text())["split"])
    except (OSError, ValueError, KeyError):
        raise ConfigError(f"{run_dir} has no readable config.json to take the split from; give --split") from None


def run(args: argparse.Namespace) -> int:
    from hsbench.data.paths import data_root_from
    from hsbench.predict import apply_model, dataset_inputs, file_inputs, resolve_run
    from hsbench.provenance import resolve_device
    from hsbench.saved_model import load_run_model

    if args.input is not None and (args.split or args.part):
        raise ConfigError("--split and --part choose images of --dataset; with --input there is nothing to choose")
    if args.tile < 1:
        raise ConfigError(f"--tile must be a positive number of pixels, got {args.tile}")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a file; give a folder")
    run_dir = resolve_run(args.run, results=args.results, db=args.db)
    data_root = data_root_from(args.data_root)
    strategy, stored = load_run_model(run_dir, device=resolve_device(args.device), data_root=data_root,
                                      progress=not args.no_progress)
    card = stored.card
    if args.input is not None:
        images = file_inputs(args.input, card)
    else:
        images = dataset_inputs(args.dataset, card, split=args.split or _run_split(run_dir), part=args.part or "test",
                                seed=stored.seed, data_root=data_root)
    margin = type(strategy).spatial_context(stored.options)
    facts = {"run_id": stored.run_id, "run_dir": str(run_dir), "strategy": stored.label,
             "weights_sha256": stored.weights_sha256, "trained_on": card.name}
    written = apply_model(strategy.predict, images, card, args.out, tile=args.tile, margin=margin,
                          progress=not args.no_progress, facts=facts)
    print(f"Predicted {len(written)} image(s) with {stored.label} (run {stored.run_id or run_dir}): {args.out}/")
    return 0
