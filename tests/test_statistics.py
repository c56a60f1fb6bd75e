"""Paired comparisons that hold at 3 seeds: the simulation of docs/statistics.md, evidence storage, Holm, val picks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hsbench.evidence import BLOCK, EvidenceError, UnitConfusions, block_confusions, decode, digest, encode
from hsbench.metrics import confusion_matrix, miou
from hsbench.report.pairwise import compare_best_two, pairwise
from hsbench.report.results import ReportData
from hsbench.report.stats import batched_estimate, holm, miou_batched, paired_difference

# --------------------------------------------------------------------------------------------------------------
# The simulation: realistic confusion matrices, 3 seeds x 12 test images shared by the seeds
# --------------------------------------------------------------------------------------------------------------

K, PIXELS, SEEDS, IMAGES, SUITES = 6, 3000, 3, 12, 600
CLASS_LOGIT = np.linspace(0.4, 2.2, K)  # some classes are harder than others
SCENARIOS = {  # logit-scale standard deviations of the strategy-specific effects
    "seed-dominated": {"sd_seed": 0.3, "sd_image": 0.05, "sd_noise": 0.05},
    "image-dominated": {"sd_seed": 0.03, "sd_image": 0.3, "sd_noise": 0.05},
    "mixed": {"sd_seed": 0.15, "sd_image": 0.15, "sd_noise": 0.1},
}
DELTA = 0.3
"""Logit advantage of A under the alternative (about +6 J_M points)."""


def _logits(rng, m, seeds, units, delta, difficulty, sd_seed, sd_image, sd_noise) -> np.ndarray:
    """(M, 2, S, U, K) logit of a pixel being right: class + image difficulty (shared by both strategies) +
    strategy + seed x strategy + image x strategy + seed x image x strategy noise."""
    strategy = np.array([delta / 2, -delta / 2])[None, :, None, None, None]
    return (CLASS_LOGIT + difficulty[:, None, None, :, None] + strategy
            + rng.normal(0, sd_seed, (m, 2, seeds, 1, 1)) + rng.normal(0, sd_image, (m, 2, 1, units, 1))
            + rng.normal(0, sd_noise, (m, 2, seeds, units, 1)))


def simulate(rng, m: int, delta: float, **sd) -> tuple[np.ndarray, np.ndarray]:
    """M suites of (M, S, U, K, K) matrices for A and B: per image a class mix and a difficulty, then binomial
    right pixels per class and the wrong ones spread over the other classes."""
    counts = rng.multinomial(PIXELS, rng.dirichlet(np.full(K, 0.7), (m, IMAGES)))
    logits = _logits(rng, m, SEEDS, IMAGES, delta, rng.normal(0, 0.5, (m, IMAGES)), **sd)
    n = np.broadcast_to(counts[:, None, None], logits.shape)
    right = rng.binomial(n, 1 / (1 + np.exp(-logits)))
    wrong = rng.multinomial(n - right, np.full(K - 1, 1 / (K - 1)))
    cm = np.zeros((*logits.shape, K), dtype=np.int64)
    cm[..., np.arange(K), np.arange(K)] = right
    others = np.array([[j for j in range(K) if j != i] for i in range(K)])
    np.put_along_axis(cm, np.broadcast_to(others, (*logits.shape[:-1], K, K - 1)), wrong, axis=-1)
    return cm[:, 0], cm[:, 1]


def true_difference(rng, delta: float, seeds: int = 2000, units: int = 1000, **sd) -> float:
    """The estimand: mean over seeds of J_M(A) - J_M(B) on the image population (expected counts, many images)."""
    out = []
    for _ in range(seeds // 50):
        counts = PIXELS * rng.dirichlet(np.full(K, 0.7), (1, units))
        p = 1 / (1 + np.exp(-_logits(rng, 1, 50, units, delta, rng.normal(0, 0.5, (1, units)), **sd)))
        right = counts[:, None, None] * p
        cm = ((counts[:, None, None] - right) / (K - 1))[..., None] * (1 - np.eye(K)) + right[..., None] * np.eye(K)
        j = miou_batched(cm.sum(3))
        out.append(j[0, 0] - j[0, 1])
    return float(np.concatenate(out).mean())


def _run(scenario: str, delta: float, seed: int) -> tuple[dict[str, np.ndarray], float]:
    rng = np.random.default_rng(seed)
    a, b = simulate(rng, SUITES, delta, **SCENARIOS[scenario])
    weights = rng.multinomial(IMAGES, np.full(IMAGES, 1 / IMAGES), size=400).astype(np.float64)
    truth = 0.0 if delta == 0 else true_difference(rng, delta, **SCENARIOS[scenario])
    return batched_estimate(a, b, weights), truth


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_interval_covers_and_no_difference_is_rarely_called_a_win(scenario: str) -> None:
    """docs/statistics.md: 95 % coverage within [92 %, 98 %] and false "A > B" <= 6 %, at 3 seeds x 12 images."""
    null, _ = _run(scenario, 0.0, seed=11)
    false_win = np.mean(null["ci_low"] > 0)
    null_coverage = np.mean((null["ci_low"] <= 0) & (0 <= null["ci_high"]))
    alt, truth = _run(scenario, DELTA, seed=12)
    coverage = np.mean((alt["ci_low"] <= truth) & (truth <= alt["ci_high"]))
    print(f"{scenario}: false A>B {false_win:.3f}, coverage null {null_coverage:.3f}, "
          f"coverage at +{100 * truth:.1f} J_M {coverage:.3f}, power {np.mean(alt['ci_low'] > 0):.3f}")
    assert false_win <= 0.06
    assert 0.92 <= null_coverage <= 0.98 and 0.92 <= coverage <= 0.98
    assert np.all(alt["ci_low"] <= alt["estimate"]) and np.all(alt["estimate"] <= alt["ci_high"])


def test_three_seed_interval_is_wider_than_the_spread_of_the_three_differences() -> None:
    """The observed fault: the percentile bootstrap at 3 seeds was [min, max] and called a 3/3 lead real."""
    rng = np.random.default_rng(3)
    a, b = simulate(rng, 1, DELTA / 3, **SCENARIOS["seed-dominated"])
    runs = [{s: UnitConfusions(tuple(f"img{u}" for u in range(IMAGES)), x[0, s]) for s in range(SEEDS)}
            for x in (a, b)]
    e = paired_difference(*runs)
    assert e.ci_low < min(e.differences) and e.ci_high > max(e.differences)
    assert e.p_signflip >= 0.25  # 8 sign patterns: a seed-level permutation cannot resolve 3 seeds alone
    assert paired_difference(*runs) == e  # seeded: a report is byte-reproducible


def test_j_m_is_recomputed_from_summed_matrices_not_averaged_per_image() -> None:
    rng = np.random.default_rng(4)
    a, b = simulate(rng, 1, DELTA, **SCENARIOS["mixed"])
    ids = tuple(f"img{u}" for u in range(IMAGES))
    e = paired_difference({s: UnitConfusions(ids, a[0, s]) for s in range(SEEDS)},
                          {s: UnitConfusions(ids, b[0, s]) for s in range(SEEDS)})
    expected = [miou(a[0, s].sum(0)) - miou(b[0, s].sum(0)) for s in range(SEEDS)]
    np.testing.assert_allclose(e.differences, expected)
    per_image = np.mean([[miou(a[0, s, u]) - miou(b[0, s, u]) for u in range(IMAGES)] for s in range(SEEDS)])
    assert e.estimate == pytest.approx(np.mean(expected)) and e.estimate != pytest.approx(per_image)
    assert e.units == IMAGES


def test_statement_wording() -> None:
    ids = ("i",)
    strong = {s: UnitConfusions(ids, np.array([[[90 + s, 10], [10, 90]]])) for s in range(3)}
    weak = {s: UnitConfusions(ids, np.array([[[50, 50 - s], [50, 50]]])) for s in range(3)}
    text = paired_difference(strong, weak).statement("A", "B")
    assert text.startswith("A > B by +") and "J_M (95 % CI [" in text and "p = " in text
    flipped = paired_difference(weak, strong).statement("B", "A")
    assert flipped.startswith("A > B by +")
    # The interval is that of the stated difference (winner - loser): the same interval as stated the right way.
    assert flipped == text
    assert paired_difference(strong, strong).statement("A", "B").startswith("not resolved")
    two = paired_difference({0: strong[0], 1: strong[1]}, {0: weak[0], 1: weak[1]})
    assert two.statement("A", "B").startswith("not resolved: 2 paired seed(s)")


def test_holm_adjustment() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, float("nan"), 0.01]) == pytest.approx([0.5, float("nan"), 0.02], nan_ok=True)


# --------------------------------------------------------------------------------------------------------------
# Evidence: per image, per scene block, hashed
# --------------------------------------------------------------------------------------------------------------


def test_scene_blocks_sum_to_the_scene_matrix_and_have_stable_ids() -> None:
    rng = np.random.default_rng(5)
    target = rng.integers(0, 4, (70, 45))
    target[:BLOCK, :BLOCK] = 255  # an unlabelled block is no unit
    prediction = rng.integers(0, 4, target.shape)
    units = block_confusions("scene", target, prediction, 4, 255)
    np.testing.assert_array_equal(units.total(), confusion_matrix(target, prediction, 4, 255))
    assert units.ids == ("scene@0,1", "scene@1,0", "scene@1,1", "scene@2,0", "scene@2,1")
    np.testing.assert_array_equal(units.matrices[0], confusion_matrix(target[:32, 32:], prediction[:32, 32:], 4))


def test_evidence_blob_is_deterministic_and_tampering_is_caught() -> None:
    units = UnitConfusions(("a", "b"), np.arange(2 * 3 * 3, dtype=np.int64).reshape(2, 3, 3))
    blob = encode(units)
    assert encode(units) == blob
    back = decode(blob, digest(blob), where="run x")
    assert back.ids == units.ids and np.array_equal(back.matrices, units.matrices)
    with pytest.raises(EvidenceError, match="run x"):
        decode(blob[:-1] + bytes([blob[-1] ^ 1]), digest(blob), where="run x")


def test_store_round_trip_and_a_changed_blob_fails_on_read(tmp_path) -> None:
    from sqlalchemy import update

    from hsbench.store import ResultsStore, evidence_table

    store = ResultsStore(tmp_path / "r.db")
    store.begin("r1", {"dataset": "d", "dataset_fingerprint": "f", "dataset_version": "1", "split": "s",
                       "strategy": "x", "strategy_label": "x", "seed": 0, "config": {}})
    units = UnitConfusions(("a", "b"), np.ones((2, 2, 2), dtype=np.int64))
    store.complete("r1", metrics={}, per_class={}, confusions={"test": units.total()}, timings={}, facts={},
                   evidence={"test": units})
    assert store.evidence("r1").ids == ("a", "b") and store.evidence("r1", "val") is None
    other = encode(UnitConfusions(("a", "b"), 2 * np.ones((2, 2, 2), dtype=np.int64)))
    with store.engine.begin() as conn:
        conn.execute(update(evidence_table).values(blob=other))
    with pytest.raises(EvidenceError):
        store.evidence("r1")


def test_evaluate_view_keeps_one_matrix_per_image(tiny_dataset) -> None:
    from hsbench.evaluation import confusion_on_view, evaluate_view
    from hsbench.strategy import SplitView

    view = SplitView(tiny_dataset, {i: None for i in tiny_dataset.sample_ids}, "test")
    k = tiny_dataset.card.num_classes

    def predict(sample):
        return np.zeros(sample.labels.shape, dtype=np.int64)

    units = evaluate_view(predict, view)
    assert units.ids == tuple(tiny_dataset.sample_ids) and units.matrices.shape == (len(units.ids), k, k)
    np.testing.assert_array_equal(units.total(), confusion_on_view(predict, view))


def test_evaluate_view_on_a_scene_keeps_one_matrix_per_block(tiny_scene) -> None:
    from hsbench.evaluation import evaluate_view
    from hsbench.metrics import ConfusionAccumulator
    from hsbench.strategy import SplitView

    (scene_id,) = tiny_scene.sample_ids
    view = SplitView(tiny_scene, {scene_id: None}, "test")
    sample = tiny_scene.load(scene_id)
    prediction = np.clip(sample.labels, 0, tiny_scene.card.num_classes - 1)[:, ::-1].copy()
    units = evaluate_view(lambda _s: prediction, view)
    assert len(units.ids) == 9 and all(i.startswith(f"{scene_id}@") for i in units.ids)  # 96 px: 3 x 3 blocks
    expected = ConfusionAccumulator(tiny_scene.card.num_classes)
    expected.add(sample.labels, prediction, ignore_index=tiny_scene.card.ignore_index)
    np.testing.assert_array_equal(units.total(), expected.matrix)


# --------------------------------------------------------------------------------------------------------------
# All pairs, and best vs runner-up picked on val
# --------------------------------------------------------------------------------------------------------------


class _FakeStore:
    """Evidence per run id, as the results database would return it."""

    url = "memory"

    def __init__(self, evidence: dict[str, UnitConfusions]) -> None:
        self._evidence = evidence

    def evidence(self, run_id: str, part: str = "test") -> UnitConfusions:
        return self._evidence[run_id]


def _data(val: dict[str, float] | None) -> ReportData:
    rng = np.random.default_rng(6)
    quality = {"A": 0.9, "B": 0.8, "C": 0.7}
    rows, evidence = [], {}
    for label, q in quality.items():
        for seed in range(3):
            right = rng.binomial(1000, q + 0.01 * seed, 12)
            matrices = np.stack([[[r, 1000 - r], [1000 - r, r]] for r in right]).astype(np.int64)
            run_id = f"{label}{seed}"
            evidence[run_id] = UnitConfusions(tuple(f"img{u}" for u in range(12)), matrices)
            rows.append({"run_id": run_id, "dataset": "d", "split": "s", "label": label, "seed": seed,
                         "miou": miou(matrices.sum(0)), "val_miou": np.nan if val is None else val[label]})
    return ReportData("t", "", pd.DataFrame(rows), list(quality), ["d"], ["s"], _FakeStore(evidence))


def test_all_pairs_get_holm_p_values() -> None:
    rows = pairwise(_data(None))
    assert [(r.a, r.b) for r in rows] == [("A", "B"), ("A", "C"), ("B", "C")]
    np.testing.assert_allclose([r.p_holm for r in rows], holm([r.estimate.p for r in rows]))
    assert all(r.verdict.startswith(f"{r.a} > {r.b} by +") for r in rows)


def test_best_and_runner_up_are_picked_on_val_else_flagged_post_hoc() -> None:
    on_test = compare_best_two(_data(None))[0]
    assert (on_test.best, on_test.runner_up, on_test.post_hoc) == ("A", "B", True)
    assert on_test.verdict.endswith("post hoc: chosen on test means")
    on_val = compare_best_two(_data({"A": 0.5, "B": 0.6, "C": 0.7}))[0]
    assert (on_val.best, on_val.runner_up, on_val.chosen_on, on_val.post_hoc) == ("C", "B", "val", False)
    assert on_val.mean_difference < 0 and on_val.ci_high < 0  # val's pick loses on test, and the report says so
    assert on_val.verdict.startswith("B > C by +")
