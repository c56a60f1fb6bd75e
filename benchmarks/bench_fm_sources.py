"""Which pretraining source makes the spectral foundation model's features worth having? (issue 17)

Four feature sets on the same splits: standardised raw bands, a randomly initialised FM, the FM pretrained on
``synthetic_aerial`` (the embedded default) and the FM pretrained on ``earthlib`` (measured library spectra seen
through simulated sensors). Each is scored with the per-pixel logistic-regression probe of
``bench_cross_domain_vs_in_domain.py`` (test J_M, %), and with ``--head`` also with the RU-Net head
(``cross_domain/runet`` per source through the normal runner; raw bands = ``in_domain/runet``; the random FM is
probed only).

Targets: ``synthetic_drive`` and ``synthetic_hyko`` at ``fraction=0.05``; the real Jasper Ridge and Samson scenes at
``kshot=5`` and ``kshot=20`` (prepared from ``--real`` into ``--data-root`` on first use; skipped with a line when
their raw files are absent). Both FMs use the ``cross_domain`` defaults (``tiny``), differing only in ``source``.

    OMP_NUM_THREADS=2 python benchmarks/bench_fm_sources.py [--seeds 0,1,2] [--targets ...] [--head]
        [--real ../shared/data/real] [--data-root results/bench_fm_sources/data] [--out results/bench_fm_sources]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from hsbench.models.spectral_fm import SpectralFM
from hsbench.models.spectral_fm_import import fm_from_artifact
from hsbench.pretraining.spectral_mae import pretrained_spectral_fm
from hsbench.registry import DATASETS, STRATEGIES, lookup
from hsbench.report.tables import format_over_seeds
from hsbench.runner import Runner, RunSpec
from hsbench.seeding import SeedStreams
from hsbench.strategy import RunContext
from hsbench.zoo import Zoo

sys.path.insert(0, str(Path(__file__).parent))
from bench_cross_domain_vs_in_domain import probe  # noqa: E402  (one probe for both benchmarks)

SOURCES = ("synthetic_aerial", "earthlib")
FEATURE_SETS = ("raw bands", "random FM", *(f"FM({s})" for s in SOURCES))
TARGETS = ("synthetic_drive:fraction=0.05", "synthetic_hyko:fraction=0.05", "jasper_ridge:kshot=5",
           "jasper_ridge:kshot=20", "samson:kshot=5", "samson:kshot=20")
REAL_FOLDERS = {"jasper_ridge": "jasper_ridge", "samson": "samson"}


def feature_models() -> dict[str, SpectralFM]:
    """A random FM and one FM per pretraining source, all of the ``cross_domain`` default architecture."""
    cls = lookup(STRATEGIES, "cross_domain")
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=Path("."), progress=False)
    card = lookup(DATASETS, "synthetic_drive").card
    models: dict[str, SpectralFM] = {}
    for source in SOURCES:
        strategy = cls({**cls.defaults, "source": source}, ctx, card)
        models[f"FM({source})"] = fm_from_artifact(pretrained_spectral_fm(Zoo(), strategy.recipe(), progress=True))
        if "random FM" not in models:
            torch.manual_seed(0)
            models["random FM"] = SpectralFM(strategy.fm_config).eval()
    return models


def ensure_prepared(name: str, real: Path, data_root: Path) -> bool:
    """Prepare a real scene from ``real/<folder>`` once; ``False`` (with a line) when its raw files are absent."""
    from hsbench.data.prepared import prepare_dataset

    if (data_root / name).is_dir():
        return True
    raw = real / REAL_FOLDERS[name]
    if not raw.is_dir():
        print(f"skipping {name}: no raw files in {raw}", flush=True)
        return False
    prepare_dataset(lookup(DATASETS, name), raw, data_root, progress=False)
    return True


def head_scores(runner: Runner, dataset: str, split: str, seed: int) -> dict[str, float]:
    """Test J_M of the RU-Net head on each feature set (raw bands: ``in_domain/runet``; the random FM has no
    ``cross_domain`` option, so it is probed only)."""
    specs = {"raw bands": ("in_domain", {"model": "runet"})}
    specs |= {f"FM({s})": ("cross_domain", {"head": "runet", "source": s}) for s in SOURCES}
    scores = {}
    for name, (strategy, options) in specs.items():
        outcome = runner.run(RunSpec(dataset, strategy, split, seed, options))
        done = outcome.status in ("completed", "skipped")  # skipped: finished by an earlier invocation, reused
        scores[name] = outcome.test_metrics.get("miou", float("nan")) if done else np.nan
        print(f"head {dataset} {split} seed {seed} {name}: {outcome.status} "
              f"{100 * scores[name]:.2f}", flush=True)
    return scores


def table(scores: dict[str, dict[str, list[float]]]) -> str:
    rows = ["| target | " + " | ".join(FEATURE_SETS) + " |", "|---" * (len(FEATURE_SETS) + 1) + "|"]
    for target, by_set in scores.items():
        best = max(FEATURE_SETS, key=lambda s: np.mean(by_set.get(s, [np.nan])) if by_set.get(s) else -1)
        cells = [("**" if s == best else "") + format_over_seeds(by_set[s]) + ("**" if s == best else "")
                 if by_set.get(s) else "-" for s in FEATURE_SETS]
        rows.append(f"| {target} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--targets", default=",".join(TARGETS), help="DATASET:SPLIT, comma-separated")
    parser.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real")
    parser.add_argument("--data-root", type=Path, default=Path("results/bench_fm_sources/data"))
    parser.add_argument("--out", type=Path, default=Path("results/bench_fm_sources"))
    parser.add_argument("--head", action="store_true", help="also train the RU-Net head on each feature set")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    runner = Runner(args.out, data_root=args.data_root, progress=False)
    models = feature_models()
    features: dict = {}  # each model's features per image, extracted once for all seeds and splits
    probes: dict[str, dict[str, list[float]]] = {}
    heads: dict[str, dict[str, list[float]]] = {}
    for target in targets:
        dataset, _, split = target.partition(":")
        if dataset in REAL_FOLDERS and not ensure_prepared(dataset, args.real, args.data_root):
            continue
        for seed in seeds:
            for name, value in probe(runner.dataset(dataset), split, seed, models, features).items():
                probes.setdefault(target, {}).setdefault(name, []).append(value)
            if args.head:
                for name, value in head_scores(runner, dataset, split, seed).items():
                    heads.setdefault(target, {}).setdefault(name, []).append(value)
        report = {"seeds": seeds, "probe": probes, "head": heads}
        (args.out / "fm_sources.json").write_text(json.dumps(report, indent=2))  # after every target
    print(f"\nPixel probe, test J_M (%), mean ± std over seeds {seeds}:\n{table(probes)}")
    if heads:
        print(f"\nRU-Net head, test J_M (%), mean ± std over seeds {seeds}:\n{table(heads)}")


if __name__ == "__main__":
    main()
