"""``hsbench pretrain``: pretrain a foundation model on an unlabelled source dataset and store it in the zoo.

Example: ``hsbench pretrain spectral_fm --source synthetic_aerial --size tiny --epochs 6``; ``--source earthlib``
pretrains on the earthlib spectral library through random virtual sensors (extra ``hsbench[spectra]``). A recipe
already in the zoo is not trained again: the command then just prints where it is.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module at start-up: torch is loaded only when pretrain runs
    from hsbench.zoo import Artifact, Zoo

__all__ = ["NAME", "PRETRAINERS", "add_parser", "run"]

NAME = "pretrain"


def _spectral_fm(args: argparse.Namespace, zoo: Zoo) -> Artifact:
    from hsbench.models.spectral_fm import fm_config
    from hsbench.options import parse_key_values
    from hsbench.pretraining.spectral_mae import SpectralMAERecipe, pretrained_spectral_fm
    from hsbench.provenance import resolve_device

    defaults = SpectralMAERecipe(model={})
    recipe = SpectralMAERecipe(
        model=fm_config(args.size, parse_key_values(args.fm_options)).to_dict(),
        source=args.source,
        source_options=parse_key_values(args.source_options),
        mask_ratio=defaults.mask_ratio if args.mask_ratio is None else args.mask_ratio,
        epochs=defaults.epochs if args.epochs is None else args.epochs,
        pixels=defaults.pixels if args.pixels is None else args.pixels,
        seed=args.seed,
    )
    return pretrained_spectral_fm(zoo, recipe, device=resolve_device(args.device), progress=not args.no_progress,
                                  data_root=args.data_root)


PRETRAINERS: dict[str, Callable[[argparse.Namespace, Zoo], Artifact]] = {"spectral_fm": _spectral_fm}
"""Pretrainable models by name: ``fn(args, zoo) -> artifact``."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``pretrain`` sub-command to the ``hsbench`` parser."""
    p = subparsers.add_parser(
        "pretrain", help="pretrain a foundation model on unlabelled source data and store it in the zoo",
        description="Pretrain a foundation model on an unlabelled source dataset; the artifact goes to the zoo "
                    "($HSBENCH_HOME/zoo) and is reused by strategies that ask for the same recipe.",
    )
    p.add_argument("model", choices=sorted(PRETRAINERS), help="what to pretrain")
    p.add_argument("--source", default="synthetic_aerial",
                   help="source dataset (labels are not used), or earthlib: a spectral library through random "
                        'virtual sensors (pip install "hsbench[spectra]")')
    p.add_argument("--size", default="tiny", help="model size preset: tiny (default, CPU) or small")
    p.add_argument("--epochs", type=int, help="passes over the sampled source pixels (default 6)")
    p.add_argument("--pixels", type=int,
                   help="source pixels to sample from all images; for earthlib, simulated pixels per epoch "
                        "(default 32768)")
    p.add_argument("--mask-ratio", type=float, help="fraction of band tokens masked (default 0.9)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, sampling and masks (default 0)")
    p.add_argument("--fm-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="overrides of the size preset, e.g. dim=32 depth=2")
    p.add_argument("--source-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="options of the source dataset, e.g. num_images=10; for earthlib, sensor simulator "
                        "ranges, e.g. vnir_probability=1")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--data-root", type=Path, help="prepared real datasets (default $HSBENCH_DATA)")
    p.add_argument("--zoo", type=Path, help="zoo folder (default $HSBENCH_HOME/zoo)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    """Pretrain (or find) the artifact; print its path and final loss."""
    from hsbench.zoo import Zoo

    artifact = PRETRAINERS[args.model](args, Zoo(args.zoo))
    curve = artifact.metadata.get("loss_curve") or [float("nan")]
    print(f"artifact: {artifact.path}")
    print(f"final loss: {curve[-1]:.6f} (after {len(curve)} epochs; metadata in {artifact.path / 'metadata.json'})")
    return 0
