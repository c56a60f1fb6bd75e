"""Time to accuracy: val J_M against cumulative training seconds per strategy, from one or more results databases.

Draws the figure of docs/benchmark.md ("Convergence of the quick suite"): one panel per split of the chosen
dataset, one line style per database (e.g. the quick suite before and after a recipe change), one colour per
strategy label, one thin line per seed. The x axis is the wall time of the training loop (pretraining excluded:
it is a one-time cost that later cells take from the zoo). Runs store each epoch's seconds in their facts
(``epoch_seconds``); older runs, which stored only the fit phase's total, are spread evenly over their epochs and
the legend says so.

    git show OLD:hsbench/suites/quick.yaml > /tmp/quick_before.yaml
    python benchmarks/plot_time_to_accuracy.py --db before=OLD/hsbench.db,/tmp/quick_before.yaml \\
        --db after=results/hsbench.db --dataset synthetic_drive --out docs/figures/quick_time_to_accuracy.png

Each ``--db`` names a results database and, after a comma, the suite file its cells came from (default
``--suite``): cell ids hash the options, so a database of an older recipe needs that recipe's suite file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hsbench.report.results import load_suite_results  # noqa: E402
from hsbench.store import ResultsStore  # noqa: E402
from hsbench.suite import load_suite  # noqa: E402

LINESTYLES = ("--", "-", ":", "-.")


def curve(facts: dict[str, Any], timings: dict[str, float]) -> tuple[np.ndarray, np.ndarray, bool]:
    """Cumulative seconds and val J_M (%) at each evaluated epoch; the flag says whether seconds were spread evenly.

    Epochs without an evaluation (``eval_every`` > 1) keep their seconds but add no point.
    """
    scores = facts.get("val_history") or []
    seconds = facts.get("epoch_seconds")
    even = seconds is None
    if even:
        seconds = [float(timings.get("fit", 0.0)) / max(len(scores), 1)] * len(scores)
    elapsed = np.cumsum(np.asarray(seconds, dtype=float))
    keep = [i for i, score in enumerate(scores) if score is not None]
    return elapsed[keep], 100.0 * np.asarray([scores[i] for i in keep], dtype=float), even


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", action="append", required=True, metavar="NAME=PATH[,SUITE]",
                        help="legend name, results database and (optional) its suite file; repeat for before/after")
    parser.add_argument("--suite", default="quick")
    parser.add_argument("--dataset", default="synthetic_drive")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    splits = list(load_suite(args.suite).splits)
    fig, axes = plt.subplots(1, len(splits), figsize=(5.5 * len(splits), 4.2), squeeze=False, sharey=True)
    colours: dict[str, Any] = {}
    for index, spec in enumerate(args.db):
        name, _, rest = spec.partition("=")
        path, _, suite_file = rest.partition(",")
        suite = load_suite(suite_file or args.suite)
        store = ResultsStore(path)
        facts = store.runs().set_index("run_id")["facts"]
        data = load_suite_results(store, suite)
        for ax, split in zip(axes[0], splits, strict=True):
            runs = data.select(split=split, dataset=args.dataset)
            for _, run in runs.iterrows():
                label = run["label"]
                colour = colours.setdefault(label, f"C{len(colours)}")
                x, y, even = curve(facts[run["run_id"]] or {}, run["timings"] or {})
                first_seed = run["seed"] == min(suite.seeds)
                legend = f"{label} ({name}{', even epochs' if even else ''})" if first_seed else None
                ax.plot(x, y, LINESTYLES[index % len(LINESTYLES)], color=colour, linewidth=1.2, label=legend)
    for ax, split in zip(axes[0], splits, strict=True):
        ax.set_title(f"{args.dataset}, {split}")
        ax.set_xlabel("training wall seconds (one CPU thread)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("val J_M (%)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
