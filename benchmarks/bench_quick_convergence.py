"""Is the quick suite converged? Its test J_M against the same suite with 4x the training budget.

Issue 15's target ("converged", measurably): every strategy of the ``quick`` suite, run with the suite's options
and again with ``--multiplier`` (4) times the training budget on the same seeds and splits, keeps
``J_M(quick) >= 0.9 x J_M(4x)``

* for every strategy and dataset at ``fraction=1.0`` (the full split: ``fraction=1.0``, else the largest fraction);
* on average over the datasets, per strategy, at the smallest fraction (``fraction=0.05``).

J_M is the test macro IoU in %, averaged over the seeds that finished in both suites. The budget is every option
of :data:`BUDGET_KEYS` (``epochs`` and ``early_stopping_patience`` always; the pretraining budgets too unless
``--target-only``), multiplied from its effective value: the variant's option, else the strategy's default (recipe
presets included). Both suites run with :func:`hsbench.benchmark.run_benchmark` into one results folder, so a rerun
reuses finished cells (cell ids hash the options, so the two suites share no cell unless ``--multiplier 1``); no
report is written. The table goes to stdout and, with the wall seconds, to ``<results>/convergence.json``; the exit
code is 0 when every target is met (and both suites finished), 1 otherwise. The quick suite takes about 9 minutes
on 2 CPU cores (hsbench/suites/quick.yaml); the scaled one up to ``--multiplier`` times that (early stopping may end
its runs sooner), plus its pretraining, once per zoo artifact.

    python benchmarks/bench_quick_convergence.py [--suite quick] [--multiplier 4] [--seeds 0,1,2]
        [--results results/convergence] [--workers 2] [--labels L1,L2] [--datasets D1,D2] [--target-only]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from hsbench.errors import ConfigError
from hsbench.names import check_name
from hsbench.splits import parse_split_spec
from hsbench.strategy import resolve_strategy
from hsbench.suite import Suite, Variant

TARGET = 0.9
"""The quick suite's J_M must be at least this share of the scaled suite's."""

# The training budget of each strategy: option paths (``a.b`` = key ``b`` of the dict-valued option ``a``) that
# ``--multiplier`` scales. TARGET_BUDGET is the fine-tuning on the target (epochs, and the early-stopping patience,
# which would otherwise cut the longer run short at the same point); the other paths are the source or target
# pretraining, left alone with ``--target-only``. A strategy missing here is an error, not a silent partial scaling.
TARGET_BUDGET: tuple[str, ...] = ("epochs", "early_stopping_patience")
BUDGET_KEYS: dict[str, tuple[str, ...]] = {
    "in_domain": TARGET_BUDGET,
    "cross_modality": (*TARGET_BUDGET, "pretrain_epochs"),  # synthetic-RGB pretraining of the backbone (zoo)
    "cross_domain": (*TARGET_BUDGET, "pretrain_epochs"),  # masked band modelling of the foundation model (zoo)
    "s2former": (*TARGET_BUDGET, "pretrain_options.steps", "target_pretrain_steps"),  # source (zoo), target SSL
}


def budget_keys(strategy: str, *, target_only: bool = False) -> tuple[str, ...]:
    """The option paths of ``strategy`` that ``--multiplier`` scales."""
    if strategy not in BUDGET_KEYS:
        raise ConfigError(f"strategy {strategy!r} is not in BUDGET_KEYS of {Path(__file__).name}; add its budget")
    return tuple(p for p in BUDGET_KEYS[strategy] if not target_only or p in TARGET_BUDGET)


# ------------------------------------------------------------------------------------------------- scaling (pure)
def _nested_default(strategy: str, path: str) -> Any:
    """Defaults that live below a strategy's ``defaults`` (an empty override dict there means "the recipe's")."""
    if (strategy, path) == ("s2former", "pretrain_options.steps"):
        from hsbench.pretraining.s2former_ssl import S2FormerSSLRecipe

        return next(f.default for f in dataclasses.fields(S2FormerSSLRecipe) if f.name == "steps")
    raise ConfigError(f"strategy {strategy!r} has no option {path!r} (see BUDGET_KEYS)")


def effective_value(strategy: str, options: Mapping[str, Any], path: str, dataset: str | None = None) -> Any:
    """The value a run of ``strategy`` with ``options`` uses for ``path``: the option, else the default (recipe
    presets included, per ``dataset`` when given)."""
    resolved = resolve_strategy(strategy, options, dataset)[1]
    head, _, tail = path.partition(".")
    if head not in resolved:
        raise ConfigError(f"strategy {strategy!r} has no option {head!r} (see BUDGET_KEYS)")
    value = resolved[head]
    if tail:
        value = value.get(tail) if isinstance(value, dict) else None
        if value is None:
            return _nested_default(strategy, path)
    return value


def _scaled(value: Any, multiplier: int, path: str) -> Any:
    if value is None:  # e.g. no early stopping: stays off
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"budget option {path} must be an integer to scale, got {value!r}")
    return value * multiplier


def _set_path(options: dict[str, Any], path: str, value: Any) -> None:
    head, _, tail = path.partition(".")
    if tail:
        options.pop(path, None)  # a dotted key ``a.b`` would override the nested value set here
        options[head] = {**(options.get(head) or {}), tail: value}
    else:
        options[head] = value


def scale_variant(suite: Suite, variant: Variant, multiplier: int, *, target_only: bool = False) -> Variant:
    """``variant`` with every budget option multiplied by ``multiplier``, set explicitly in its options.

    The value multiplied is the effective one on each dataset the variant runs on (dataset options and recipe
    presets included); a variant whose budget differs between its datasets cannot be scaled by one option.
    """
    options = copy.deepcopy(variant.options)
    entries = [entry for entry, v in suite.rows() if v.label == variant.label]
    for path in budget_keys(variant.strategy, target_only=target_only):
        values = {json.dumps(effective_value(variant.strategy, {**e.options, **variant.options}, path, e.name))
                  for e in entries} or {json.dumps(effective_value(variant.strategy, variant.options, path))}
        if len(values) > 1:
            raise ConfigError(f"{variant.label}: {path} differs between its datasets ({', '.join(sorted(values))}); "
                              f"give it in the variant's options")
        _set_path(options, path, _scaled(json.loads(values.pop()), multiplier, path))
    return dataclasses.replace(variant, options=options)


def scaled_suite(suite: Suite, multiplier: int, *, target_only: bool = False) -> Suite:
    """``suite`` named ``<name>-x<multiplier>`` with every variant's budget multiplied (same rows, seeds, splits)."""
    if multiplier < 1:
        raise ConfigError(f"--multiplier must be a positive integer, got {multiplier}")
    name = check_name(f"{suite.name}-x{multiplier}", "scaled suite name")
    variants = tuple(scale_variant(suite, v, multiplier, target_only=target_only) for v in suite.variants)
    scaled = dataclasses.replace(suite, name=name, variants=variants,
                                 description=f"{suite.description} (training budget x{multiplier})")
    scaled.cells()  # every scaled option set resolves (a bad value fails now, not in a worker)
    return scaled


def restrict_suite(suite: Suite, *, seeds: Sequence[int] | None = None, labels: Sequence[str] | None = None,
                   datasets: Sequence[str] | None = None) -> Suite:
    """``suite`` with only the given seeds, variant labels and datasets (``None``: all)."""
    for given, valid, what in ((seeds, suite.seeds, "seed"), (labels, suite.labels, "label"),
                               (datasets, [d.name for d in suite.datasets], "dataset")):
        unknown = [x for x in given or () if x not in valid]
        if unknown:
            raise ConfigError(f"suite {suite.name} has no {what} {unknown[0]!r}; it has {', '.join(map(str, valid))}")
    entries = tuple(d for d in suite.datasets if datasets is None or d.name in datasets)
    variants = tuple(v for v in suite.variants if labels is None or v.label in labels)
    restricted = dataclasses.replace(suite, seeds=tuple(seeds) if seeds is not None else suite.seeds,
                                     datasets=entries, variants=variants)
    used = {v.label for _, v in restricted.rows()}
    restricted = dataclasses.replace(restricted, variants=tuple(v for v in variants if v.label in used),
                                     datasets=tuple(d for d in entries if restricted.variants_of(d)))
    if not restricted.rows():
        raise ConfigError(f"suite {suite.name}: no (dataset, variant) pair left after --labels / --datasets")
    return restricted


# ------------------------------------------------------------------------------------------------ analysis (pure)
def ratio_table(base: pd.DataFrame, scaled: pd.DataFrame) -> pd.DataFrame:
    """Per (label, dataset, split): mean test J_M (%) over the seeds finished in both frames, and base / scaled.

    ``base`` and ``scaled`` are run frames with columns label, dataset, split, seed, miou (a fraction), as
    :func:`hsbench.report.results.load_suite_results` gives; a row finished in one frame only has NaN J_M and ratio.
    """
    keys = ["label", "dataset", "split", "seed"]
    merged = pd.merge(base[keys + ["miou"]], scaled[keys + ["miou"]], on=keys, how="outer",
                      suffixes=("_base", "_scaled"))
    rows = []
    for (label, dataset, split), group in merged.groupby(["label", "dataset", "split"], sort=False):
        both = group.dropna(subset=["miou_base", "miou_scaled"])
        base_jm = 100.0 * both["miou_base"].mean() if len(both) else math.nan
        scaled_jm = 100.0 * both["miou_scaled"].mean() if len(both) else math.nan
        rows.append({"label": label, "dataset": dataset, "split": split, "seeds": sorted(int(s) for s in both["seed"]),
                     "base_jm": base_jm, "scaled_jm": scaled_jm, "ratio": _ratio(base_jm, scaled_jm)})
    return pd.DataFrame(rows, columns=["label", "dataset", "split", "seeds", "base_jm", "scaled_jm", "ratio"])


def _ratio(base: float, scaled: float) -> float:
    if math.isnan(base) or math.isnan(scaled):
        return math.nan
    if scaled == 0.0:
        return 1.0 if base == 0.0 else math.inf
    return base / scaled


def _fraction(split: str) -> float | None:
    spec = parse_split_spec(split)
    return spec.fraction if spec.kind == "fraction" else None


def target_splits(splits: Sequence[str]) -> tuple[str | None, str | None]:
    """(full split, smallest-fraction split): ``fraction=1.0`` (else the largest fraction) and the smallest
    fraction below it; ``None`` where the splits have no such split."""
    fractions = {s: f for s in splits if (f := _fraction(s)) is not None}
    if not fractions:
        return None, None
    full = max(fractions, key=fractions.__getitem__)
    small = min(fractions, key=fractions.__getitem__)
    return full, (small if small != full else None)


class Verdict(NamedTuple):
    """The targets' outcome: ``lines`` to print, ``failures`` naming each unmet target, ``means`` (label -> mean
    ratio over datasets at the smallest fraction)."""

    full_split: str | None
    small_split: str | None
    lines: list[str]
    failures: list[str]
    means: dict[str, float]

    @property
    def met(self) -> bool:
        return not self.failures


def verdict(table: pd.DataFrame, target: float = TARGET) -> Verdict:
    """Every ratio at the full split >= ``target`` (per label and dataset; a missing ratio fails), and per label
    the mean ratio over datasets at the smallest fraction >= ``target``."""
    full, small = target_splits(list(dict.fromkeys(table["split"])))
    lines, failures, means = [], [], {}
    if full is None:
        lines.append("no fraction splits: ratios reported, no target applies")
        return Verdict(None, None, lines, failures, means)
    for row in table[table["split"] == full].itertuples():
        ok = not math.isnan(row.ratio) and row.ratio >= target
        what = "missing (not finished in both suites)" if math.isnan(row.ratio) else f"ratio {row.ratio:.3f}"
        lines.append(f"{'PASS' if ok else 'FAIL'} {full} {row.label} on {row.dataset}: {what} (target >= {target})")
        if not ok:
            failures.append(f"{full} {row.label} on {row.dataset}: {what}")
    if small is not None:
        for label, group in table[table["split"] == small].groupby("label", sort=False):
            ratios = group["ratio"].tolist()
            mean = math.nan if any(math.isnan(r) for r in ratios) else sum(ratios) / len(ratios)
            means[str(label)] = mean
            ok = not math.isnan(mean) and mean >= target
            what = "missing rows" if math.isnan(mean) else f"mean ratio {mean:.3f}"
            lines.append(f"{'PASS' if ok else 'FAIL'} {small} {label}: {what} over {len(ratios)} dataset(s) "
                         f"(target >= {target})")
            if not ok:
                failures.append(f"{small} {label}: {what}")
    lines.append(f"verdict: {'all targets met' if not failures else f'{len(failures)} target(s) missed'}")
    return Verdict(full, small, lines, failures, means)


def markdown_table(table: pd.DataFrame, multiplier: int, target: float = TARGET) -> str:
    """label | dataset | split | base J_M | xM J_M | ratio | meets."""
    from hsbench.report.tables import markdown_table as table_lines

    header = ["label", "dataset", "split", "base J_M", f"x{multiplier} J_M", "ratio", "meets"]
    rows = [[str(row.label), str(row.dataset), str(row.split), _num(row.base_jm, 2), _num(row.scaled_jm, 2),
             _num(row.ratio, 3), "-" if math.isnan(row.ratio) else ("yes" if row.ratio >= target else "no")]
            for row in table.itertuples()]
    return "\n".join(table_lines(header, rows))


def _num(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else float(value)


def summary_json(table: pd.DataFrame, result: Verdict, *, suites: tuple[str, str], multiplier: int,
                 seeds: Sequence[int], target_only: bool, wall_s: Mapping[str, float]) -> dict[str, Any]:
    """What ``convergence.json`` holds."""
    return {
        "suites": list(suites), "multiplier": multiplier, "target_only": target_only, "seeds": list(seeds),
        "target": TARGET, "full_split": result.full_split, "small_split": result.small_split,
        "wall_s": {k: round(v, 1) for k, v in wall_s.items()},
        "rows": [{"label": r.label, "dataset": r.dataset, "split": r.split, "seeds": list(r.seeds),
                  "base_jm": _json_number(r.base_jm), "scaled_jm": _json_number(r.scaled_jm),
                  "ratio": _json_number(r.ratio)} for r in table.itertuples()],
        "small_split_mean_ratio": {k: _json_number(v) for k, v in result.means.items()},
        "failures": result.failures, "met": result.met,
    }


# ------------------------------------------------------------------------------------------------------- running
def _runs_frame(store: Any, suite: Suite) -> pd.DataFrame:
    from hsbench.report.results import NothingToReport, load_suite_results

    try:
        return load_suite_results(store, suite).runs
    except NothingToReport:
        return pd.DataFrame(columns=["label", "dataset", "split", "seed", "miou"])


def _csv(value: str | None, cast: type = str) -> list[Any] | None:
    return None if value is None else [cast(v.strip()) for v in value.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="quick", help="shipped suite name or YAML path (default: quick)")
    parser.add_argument("--multiplier", type=int, default=4, help="training budget factor of the scaled suite")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the suite's)")
    parser.add_argument("--results", type=Path, default=Path("results/convergence"),
                        help="results folder shared by both suites (resumable; default: results/convergence)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per suite (default: 2)")
    parser.add_argument("--labels", help="comma-separated variant labels (default: all)")
    parser.add_argument("--datasets", help="comma-separated datasets (default: all)")
    parser.add_argument("--target-only", action="store_true",
                        help="scale epochs and patience only, not the pretraining budgets")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)

    from hsbench.benchmark import BenchmarkConfig, run_benchmark
    from hsbench.store import ResultsStore
    from hsbench.suite import load_suite

    base = restrict_suite(load_suite(args.suite), seeds=_csv(args.seeds, int), labels=_csv(args.labels),
                          datasets=_csv(args.datasets))
    scaled = scaled_suite(base, args.multiplier, target_only=args.target_only)
    config = BenchmarkConfig(results_dir=args.results, device=args.device, workers=args.workers,
                             progress=not args.no_progress)
    wall: dict[str, float] = {}
    incomplete = []
    for suite in (base, scaled):
        summary = run_benchmark(suite, config)
        wall[suite.name] = summary.wall_s
        print(f"suite {suite.name}: {summary.states.get('done', 0)} of {summary.total} cells done, "
              f"{summary.states.get('failed', 0)} failed, {summary.wall_s:.0f} s wall")
        for error in summary.errors:
            print(f"  failed: {error}")
        if not summary.complete:
            incomplete.append(suite.name)

    store = ResultsStore(config.database)
    table = ratio_table(_runs_frame(store, base), _runs_frame(store, scaled))
    result = verdict(table)
    budget = "; ".join(f"{v.label}: {', '.join(budget_keys(v.strategy, target_only=args.target_only))}"
                       for v in base.variants)
    print(f"\nTest J_M (%), mean over seeds {', '.join(map(str, base.seeds))}; x{args.multiplier} = {scaled.name} "
          f"(scaled: {budget})\n")
    print(markdown_table(table, args.multiplier))
    print()
    for line in result.lines:
        print(line)
    if incomplete:
        print(f"incomplete: {', '.join(incomplete)} (rerun to finish; finished cells are reused)")
    out = args.results / "convergence.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary_json(table, result, suites=(base.name, scaled.name), multiplier=args.multiplier,
                                           seeds=base.seeds, target_only=args.target_only, wall_s=wall),
                              indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if result.met and not incomplete else 1


if __name__ == "__main__":
    sys.exit(main())
