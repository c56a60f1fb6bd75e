"""Does RGB pretraining help? ``cross_modality`` (DL3+(BB) / DL3+(PT)) vs ``in_domain`` at 5 % and 100 % labels.

Issue 5's measured target: on the embedded suite (``synthetic_drive``, ``synthetic_hyko``), mean test mIoU over 3
seeds at ``fraction=0.05`` and ``fraction=1.0`` of

* ``in_domain/deeplabv3plus``: the same DeepLabV3+ MobileNetV2 trained from scratch on standardised bands,
* ``in_domain/runet``: HS3-Bench's strongest HSI-only baseline,
* ``cross_modality`` ``bb`` and ``pt`` with the ``prgb`` adapter, and ``bb`` with the ``learned`` adapter, all
  without user weights, i.e. with the default synthetic RGB pretraining (``synthetic_aerial`` rendered to RGB,
  stored in the zoo once).

Every strategy keeps its default options except ``--epochs`` (applied to all, for cheaper runs). Runs go through
the normal runner into a results folder, so an interrupted comparison resumes and a finished one is only
re-tabulated. With real RGB weights (``--weights`` = a VainF Cityscapes checkpoint, HS3-Bench's DL3+(PT)) the
``cross_modality`` rows use them instead of the synthetic pretraining.

    OMP_NUM_THREADS=2 python benchmarks/bench_cross_modality_vs_in_domain.py [--seeds 0,1,2] [--fractions 0.05,1.0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hsbench.report.tables import format_over_seeds
from hsbench.runner import Runner, RunSpec

STRATEGY_SPECS: dict[str, tuple[str, dict]] = {
    "in_domain/deeplabv3plus": ("in_domain", {"model": "deeplabv3plus"}),
    "in_domain/runet": ("in_domain", {"model": "runet"}),
    "cross_modality/bb/prgb": ("cross_modality", {"mode": "bb", "adapter": "prgb"}),
    "cross_modality/pt/prgb": ("cross_modality", {"mode": "pt", "adapter": "prgb"}),
    "cross_modality/bb/learned": ("cross_modality", {"mode": "bb", "adapter": "learned"}),
}


def run_all(
    runner: Runner, datasets: list[str], fractions: list[str], seeds: list[int], labels: list[str],
    extra: dict[str, dict],
) -> dict[tuple[str, str, str], list[float]]:
    """Test mIoU per (dataset, fraction, strategy label), one value per seed."""
    scores: dict[tuple[str, str, str], list[float]] = {}
    for dataset in datasets:
        for fraction in fractions:
            for label in labels:
                strategy, options = STRATEGY_SPECS[label]
                for seed in seeds:
                    spec = RunSpec(dataset, strategy, f"fraction={fraction}", seed, {**options, **extra[strategy]})
                    outcome = runner.run(spec)
                    if outcome.status == "failed":
                        raise SystemExit(f"{label} on {dataset} {fraction} seed {seed} failed: {outcome.error}")
                    scores.setdefault((dataset, fraction, label), []).append(outcome.test_metrics["miou"])
                    print(f"{dataset} fraction={fraction} {outcome.label} seed {seed}: test mIoU "
                          f"{100 * outcome.test_metrics['miou']:.2f}", flush=True)
    return scores


def format_table(scores: dict[tuple[str, str, str], list[float]], labels: list[str]) -> str:
    rows = ["| dataset | labels | " + " | ".join(labels) + " |", "|---" * (len(labels) + 2) + "|"]
    for dataset, fraction in dict.fromkeys((d, f) for d, f, _ in scores):
        cells = [format_over_seeds(scores.get((dataset, fraction, label), [])) for label in labels]
        rows.append(f"| {dataset} | {100 * float(fraction):g} % | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="synthetic_drive,synthetic_hyko")
    parser.add_argument("--fractions", default="0.05,1.0")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strategies", default=",".join(STRATEGY_SPECS), help="labels of STRATEGY_SPECS")
    parser.add_argument("--epochs", type=int, help="training epochs for every strategy (default: their own)")
    parser.add_argument("--weights", help="RGB weights for cross_modality (default: synthetic RGB pretraining)")
    parser.add_argument("--results", type=Path, default=Path("results/bench_cross_modality"))
    args = parser.parse_args()
    labels = args.strategies.split(",")
    common = {"epochs": args.epochs} if args.epochs else {}
    extra = {"in_domain": dict(common), "cross_modality": {**common, **({"weights": args.weights} if args.weights
                                                                        else {})}}
    scores = run_all(Runner(args.results, progress=False), args.datasets.split(","), args.fractions.split(","),
                     [int(s) for s in args.seeds.split(",")], labels, extra)
    print()
    print(format_table(scores, labels))
    (args.results / "summary.json").write_text(json.dumps({"|".join(k): v for k, v in scores.items()}, indent=1))


if __name__ == "__main__":
    main()
