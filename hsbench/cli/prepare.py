"""``hsbench prepare``: convert a downloaded real dataset into the prepared cache and say what is wrong with it.

Exit codes: 0 the dataset is complete; 1 bad files or missing official samples were found (everything else was
prepared and is kept); 2 a user mistake (unknown name, missing raw folder, a dataset that needs no preparation),
raised as :class:`hsbench.errors.HsbenchError` for ``hsbench.cli.main`` to print.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hsbench.errors import ConfigError, DataError

__all__ = ["NAME", "add_parser", "run", "format_report"]

NAME = "prepare"

_SHOWN_MISSING = 40
_H5_SUFFIXES = (".h5", ".hdf5")


def add_parser(subparsers: Any) -> None:
    """Add the ``prepare`` sub-command to the ``hsbench`` parser's sub-parsers."""
    p = subparsers.add_parser(
        "prepare", help="convert a downloaded real dataset into the prepared cache (once per dataset)",
        description="Read a real dataset's raw files once, check every sample against the dataset card and write "
                    "memory-mappable arrays under the data root. Re-running skips prepared samples, so an "
                    "interrupted prepare continues where it stopped. Exit code 0: complete; 1: bad or missing "
                    "files (listed); 2: usage error.",
        epilog="Examples: hsbench prepare hsi_drive --raw ~/downloads/HSI-Drive-v2; "
               "hsbench prepare hcv2:camera=rgb --raw ~/downloads/HCV2 (the RGB camera, a cache of its own)",
    )
    p.add_argument("name", help="dataset name (see `hsbench list datasets`), with dataset options that select "
                                "other raw data, as for `hsbench run --dataset` (e.g. hcv2:camera=rgb)")
    p.add_argument("--raw", type=Path, metavar="DIR",
                   help="folder holding the downloaded raw data (required unless --verify alone)")
    p.add_argument("--format", metavar="NAME",
                   help="raw layout to read (default: the dataset's first; the error for an unknown one lists them)")
    p.add_argument("--data-root", type=Path, metavar="DIR",
                   help="where prepared datasets live (default $HSBENCH_DATA, else ~/.cache/hsbench/data)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad file instead of listing them all")
    p.add_argument("--force", action="store_true",
                   help="delete what was prepared before and rebuild (needed after a card version change)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--verify", action="store_true",
                   help="hash every prepared file against the manifest (opening checks only sizes and headers); "
                        "damaged samples are set aside for the next --raw run to prepare again; exit 1 if any")


def _real_provider(spec: str) -> Any:
    """The provider whose prepared cache ``spec`` (``NAME[:key=value,...]``) reads.

    Options that choose other raw data (``hcv2:camera=rgb``) pick a cache of their own through the provider's
    ``prepared_provider``; a provider without that hook prepares one cache, so options there are a mistake.
    """
    from hsbench.data.dataset_spec import parse_dataset_spec
    from hsbench.data.source import RealDatasetProvider
    from hsbench.registry import DATASETS, lookup

    name, options = parse_dataset_spec(spec)
    provider = lookup(DATASETS, name)
    if not (isinstance(provider, type) and issubclass(provider, RealDatasetProvider)):
        raise ConfigError(f"dataset {name!r} is embedded and needs no preparation; use it directly, "
                          f"e.g. `hsbench run --dataset {spec} --strategy in_domain`")
    if not options:
        return provider
    select = getattr(provider, "prepared_provider", None)
    if select is None:
        raise ConfigError(f"dataset {name!r} is prepared once, without options: run `hsbench prepare {name} --raw "
                          f"DIR`; the options of {spec!r} apply when the prepared data is opened")
    return select(**options)


def _format_hint(provider: Any, raw_dir: Path) -> str:
    """When the default layout found nothing but the raw folder holds HDF5 files, the format that reads them."""
    from hsbench.data.hs3bench.h5_format import Hs3BenchH5Format

    h5_format = Hs3BenchH5Format.name
    if h5_format not in provider.formats or not raw_dir.is_dir():
        return ""
    h5_files = sorted(p.name for p in raw_dir.iterdir() if p.suffix.lower() in _H5_SUFFIXES)
    if not h5_files:
        return ""
    shown = ", ".join(h5_files[:3]) + (", ..." if len(h5_files) > 3 else "")
    return f"; {raw_dir} holds HDF5 files ({shown}); if they are HS3-Bench's, pass --format {h5_format}"


def format_report(report: Any, raw_dir: Path) -> str:
    """The summary a user reads after ``hsbench prepare``: counts, every bad file, missing samples by name."""
    lines = [f"{report.dataset}: prepared {len(report.prepared)}, skipped {len(report.skipped)} already prepared; "
             f"{report.total} samples in {report.dataset_dir}"]
    if report.bad:
        lines.append(f"{len(report.bad)} bad file(s), not prepared:")
        lines += [f"  {bad.message}" for bad in report.bad]
    if report.missing:
        shown = report.missing[:_SHOWN_MISSING]
        more = len(report.missing) - len(shown)
        lines.append(f"{len(report.missing)} sample(s) of the official splits are not in {raw_dir}:")
        lines += [f"  {name}" for name in shown]
        if more:
            lines.append(f"  ... and {more} more (all listed under 'missing_official' in "
                         f"{report.dataset_dir / 'manifest.json'})")
    if report.complete:
        lines.append(f"{report.dataset} is complete.")
    else:
        lines.append(f"{report.dataset} is incomplete: fix or add the files above and run the same command again "
                     "(prepared samples are kept).")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``hsbench prepare``; user mistakes raise :class:`hsbench.errors.HsbenchError` (exit 2 in ``main``)."""
    from hsbench.data.paths import data_root_from
    from hsbench.data.prepared import prepare_dataset

    provider = _real_provider(args.name)
    if args.raw is None:
        if args.verify:
            return _verify(provider, args)
        raise ConfigError(f"hsbench prepare {args.name} needs --raw DIR (the downloaded raw data), or --verify to "
                          "check what is prepared")
    raw_dir = args.raw.expanduser()
    try:
        report = prepare_dataset(provider, raw_dir, data_root_from(args.data_root), format=args.format,
                                 strict=args.strict, progress=not args.no_progress, force=args.force)
    except DataError as exc:
        hint = _format_hint(provider, raw_dir) if args.format is None else ""
        if not hint:
            raise
        raise DataError(f"{exc}{hint}") from exc
    except KeyboardInterrupt:
        print(f"hsbench: interrupted; the samples prepared so far are kept, run the same command again to "
              f"finish {args.name}", file=sys.stderr)
        return 130
    print(format_report(report, raw_dir))
    code = 0 if report.complete else 1
    return max(code, _verify(provider, args)) if args.verify else code


def _verify(provider: Any, args: argparse.Namespace) -> int:
    """``--verify``: the full hash check; prints one line per damaged sample; 0 when all are intact."""
    from hsbench.data.paths import data_root_from
    from hsbench.data.prepared import verify_prepared

    report = verify_prepared(provider, data_root_from(args.data_root), progress=not args.no_progress)
    recorded = f"; file hashes recorded now for {report.hashed_now} (older manifest)" if report.hashed_now else ""
    print(f"{report.dataset}: verified {report.checked} sample(s) in {report.dataset_dir}{recorded}")
    if report.ok:
        return 0
    print(f"{len(report.bad)} damaged sample(s), set aside; prepare them again with "
          f"`hsbench prepare {report.dataset} --raw DIR`:")
    print("\n".join(f"  {line}" for line in report.bad))
    return 1
