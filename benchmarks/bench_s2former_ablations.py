"""The S2Former ablation table: ``s2former``, each ablation, and ``in_domain`` RU-Net at 5 % labels.

Issue 6's measured target: on the embedded suite (``synthetic_drive``, ``synthetic_hyko``) at ``fraction=0.05``,
mean test mIoU over 3 seeds of ``s2former`` with its default options, of each ablation (``no_cross_attention``,
``no_frequency_loss``, ``no_daft``, ``no_pretrain``), and of ``in_domain`` (RU-Net on standardised bands). Runs go
through the normal runner into a results folder (an interrupted table resumes; a finished one is re-tabulated),
and pretrained encoders go to the zoo (``$HSBENCH_HOME``), so ablations that share a pretraining share the work.

    OMP_NUM_THREADS=2 python benchmarks/bench_s2former_ablations.py [--seeds 0,1,2] [--datasets synthetic_drive]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hsbench.report.tables import format_over_seeds
from hsbench.runner import Runner, RunSpec

ABLATIONS = ("no_cross_attention", "no_frequency_loss", "no_daft", "no_pretrain")
STRATEGY_SPECS: dict[str, tuple[str, dict]] = {
    "in_domain/runet": ("in_domain", {"model": "runet"}),
    "s2former": ("s2former", {}),
    **{f"s2former/{flag}": ("s2former", {flag: True}) for flag in ABLATIONS},
}


def run_matrix(runner: Runner, datasets: list[str], seeds: list[int], split: str,
               options: dict) -> dict[str, dict[str, list[float]]]:
    """Test mIoU per dataset and label, one value per seed (seed-major, so one seed's table fills first)."""
    scores: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        for dataset in datasets:
            for label, (strategy, flags) in STRATEGY_SPECS.items():
                extra = options if strategy == "s2former" else {}
                start = time.perf_counter()
                outcome = runner.run(RunSpec(dataset, strategy, split, seed, {**extra, **flags}))
                if outcome.status == "failed":
                    raise SystemExit(f"{label} on {dataset} seed {seed} failed: {outcome.error}")
                scores.setdefault(dataset, {}).setdefault(label, []).append(outcome.test_metrics["miou"])
                print(f"{dataset} {label} seed {seed}: test mIoU {100 * outcome.test_metrics['miou']:.2f} "
                      f"({outcome.status}, {time.perf_counter() - start:.0f} s)", flush=True)
    return scores


def format_table(scores: dict[str, dict[str, list[float]]]) -> str:
    """Markdown: one row per strategy label, one column per dataset, the per-seed average over datasets, and the
    paired per-seed differences of that average from ``s2former`` (an ablation's effect, seed by seed)."""
    datasets = list(scores)
    header = "| strategy | " + " | ".join(datasets) + " | average | vs in_domain | vs s2former, per seed |"
    rows = [header, "|---" * (len(datasets) + 4) + "|"]

    def average(label: str) -> np.ndarray:
        return np.mean([scores[d][label] for d in datasets], axis=0)

    baseline = np.mean(average("in_domain/runet"))
    reference = average("s2former")
    for label in STRATEGY_SPECS:
        mean = average(label)
        cells = " | ".join(format_over_seeds(scores[d][label]) for d in datasets)
        paired = ", ".join(f"{100 * d:+.2f}" for d in mean - reference)
        gap = 100 * (np.mean(mean) - baseline)
        rows.append(f"| {label} | {cells} | {format_over_seeds(list(mean))} | {gap:+.2f} | {paired} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--datasets", default="synthetic_drive,synthetic_hyko")
    parser.add_argument("--split", default="fraction=0.05")
    parser.add_argument("--results", type=Path, default=Path("results/bench_s2former_ablations"))
    parser.add_argument("--options", default="{}", help="JSON overrides of every s2former run (e.g. a smaller run)")
    parser.add_argument("--json", type=Path, help="also write the scores here")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    runner = Runner(args.results, progress=False)
    scores = run_matrix(runner, args.datasets.split(","), seeds, args.split, json.loads(args.options))
    print(format_table(scores))
    if args.json:
        args.json.write_text(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
