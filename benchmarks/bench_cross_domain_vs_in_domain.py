"""Does the cross-domain foundation model help? ``cross_domain`` vs ``in_domain`` (RU-Net) at 5 % labels.

Issue 4's measured target: on the embedded suite (``synthetic_drive``, ``synthetic_hyko``) at ``fraction=0.05``,
mean test mIoU over 3 seeds of ``cross_domain`` (frozen tiny FM pretrained on ``synthetic_aerial``, RU-Net head)
against ``in_domain`` (RU-Net on standardised bands), both with their default options. Runs go through the normal
runner into a results folder, so an interrupted comparison resumes and a finished one is only re-tabulated.

``--probe`` adds a diagnosis for when transfer does not help: a per-pixel logistic-regression probe on the same
split's labelled train pixels, scored on test pixels, for (a) standardised raw bands, (b) features of a randomly
initialised FM of the same architecture, (c) features of the pretrained FM. (b) vs (a) isolates the model's
inductive bias, (c) vs (b) what pretraining on the source domain adds.

    OMP_NUM_THREADS=2 python benchmarks/bench_cross_domain_vs_in_domain.py [--seeds 0,1,2] [--probe]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from hsbench.data.dataset import Dataset
from hsbench.features import extract_cube
from hsbench.metrics import ConfusionAccumulator, miou
from hsbench.models.spectral_fm import SpectralFM
from hsbench.models.spectral_fm_import import fm_from_artifact
from hsbench.pretraining.spectral_mae import pretrained_spectral_fm
from hsbench.registry import DATASETS, STRATEGIES, lookup
from hsbench.report.tables import format_over_seeds
from hsbench.runner import Runner, RunSpec
from hsbench.seeding import SeedStreams
from hsbench.splits import make_split
from hsbench.strategy import RunContext
from hsbench.zoo import Zoo

STRATEGY_SPECS = {"in_domain/runet": ("in_domain", {"model": "runet"}),
                  "cross_domain/runet": ("cross_domain", {"head": "runet"})}


def compare(runner: Runner, datasets: list[str], seeds: list[int], split: str) -> dict[str, dict[str, list[float]]]:
    """Test mIoU per dataset and strategy label, one value per seed."""
    scores: dict[str, dict[str, list[float]]] = {}
    for dataset in datasets:
        for label, (strategy, options) in STRATEGY_SPECS.items():
            for seed in seeds:
                outcome = runner.run(RunSpec(dataset, strategy, split, seed, options))
                if outcome.status == "failed":
                    raise SystemExit(f"{label} on {dataset} seed {seed} failed: {outcome.error}")
                scores.setdefault(dataset, {}).setdefault(label, []).append(outcome.test_metrics["miou"])
                print(f"{dataset} {label} seed {seed}: test mIoU {100 * outcome.test_metrics['miou']:.2f}",
                      flush=True)
    return scores


def format_table(scores: dict[str, dict[str, list[float]]]) -> str:
    labels = list(STRATEGY_SPECS)
    rows = ["| dataset | " + " | ".join(labels) + " | difference |", "|---" * (len(labels) + 2) + "|"]

    for dataset, by_label in [*scores.items(), ("average", _average(scores))]:
        diff = 100 * (np.mean(by_label[labels[1]]) - np.mean(by_label[labels[0]]))
        cells = " | ".join(format_over_seeds(by_label[label]) for label in labels)
        rows.append(f"| {dataset} | {cells} | {diff:+.2f} |")
    return "\n".join(rows)


def _average(scores: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-seed mean over datasets."""
    return {label: list(np.mean([scores[d][label] for d in scores], axis=0)) for label in STRATEGY_SPECS}


def _probe_pixels(dataset: Dataset, masks: dict, transform, rng: np.random.Generator, limit: int):
    xs, ys = [], []
    for sample_id, mask in masks.items():
        sample = dataset.load(sample_id)
        keep = sample.labels != dataset.card.ignore_index
        if mask is not None:
            keep &= mask
        xs.append(transform(sample.cube)[:, keep].T)
        ys.append(sample.labels[keep])
    x, y = np.concatenate(xs), np.concatenate(ys)
    pick = rng.choice(len(y), size=min(limit, len(y)), replace=False)
    return x[pick], y[pick]


def probe(
    dataset: Dataset, split: str, seed: int, models: dict[str, SpectralFM], cache: dict | None = None
) -> dict[str, float]:
    """Test mIoU of a logistic-regression pixel probe on raw bands and on each model's features.

    ``cache`` (a dict the caller keeps) remembers each model's features per image across calls, so that several
    seeds and splits of one scene extract them once (features depend on the model and the cube only).
    """
    parts = make_split(dataset, split, seed).parts
    wavelengths = np.asarray(dataset.card.wavelengths_nm)
    cache = {} if cache is None else cache

    def features(name: str, model: SpectralFM, cube: np.ndarray) -> np.ndarray:
        key = (name, dataset.card.name, hash(np.asarray(cube).tobytes()))
        if key not in cache:
            cache[key] = extract_cube(model, cube, wavelengths)
        return cache[key]

    transforms = {"raw bands": lambda cube: np.asarray(cube, dtype=np.float32)}
    transforms |= {name: (lambda cube, n=name, m=m: features(n, m, cube)) for name, m in models.items()}
    results = {}
    for name, transform in transforms.items():
        x, y = _probe_pixels(dataset, parts["train"], transform, np.random.default_rng(seed), 20_000)
        scaler = StandardScaler().fit(x)
        clf = LogisticRegression(max_iter=1000).fit(scaler.transform(x), y)
        xt, yt = _probe_pixels(dataset, parts["test"], transform, np.random.default_rng(seed), 100_000)
        acc = ConfusionAccumulator(dataset.card.num_classes)
        acc.add(yt, clf.predict(scaler.transform(xt)).astype(np.int64), ignore_index=dataset.card.ignore_index)
        results[name] = miou(acc.matrix)
        print(f"probe {dataset.card.name} {name}: test mIoU {100 * results[name]:.2f}", flush=True)
    return results


def probe_models() -> dict[str, SpectralFM]:
    """The default zoo FM (pretrained now if absent) and a random initialisation of the same architecture."""
    cls = lookup(STRATEGIES, "cross_domain")
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=Path("."), progress=False)
    strategy = cls(dict(cls.defaults), ctx, lookup(DATASETS, "synthetic_drive").card)
    pretrained = fm_from_artifact(pretrained_spectral_fm(Zoo(), strategy.recipe(), progress=False))
    torch.manual_seed(0)
    return {"random FM": SpectralFM(strategy.fm_config).eval(), "pretrained FM": pretrained}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="synthetic_drive,synthetic_hyko")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--split", default="fraction=0.05")
    parser.add_argument("--results", type=Path, default=Path("results/bench_cross_domain"))
    parser.add_argument("--probe", action="store_true", help="also run the pixel-probe diagnosis (seed 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    runner = Runner(args.results, progress=False)
    scores = compare(runner, datasets, seeds, args.split)
    report: dict = {"split": args.split, "seeds": seeds, "test_miou": scores}
    print(f"\nTest mIoU (%), {args.split}, mean ± std over seeds:\n{format_table(scores)}")
    if args.probe:
        models = probe_models()
        report["probe_test_miou"] = {d: probe(runner.dataset(d), args.split, seeds[0], models) for d in datasets}
    (args.results / "comparison.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
