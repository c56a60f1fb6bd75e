"""The split protocol a verdict rests on: the guard band comes from the models, the labels really used (train and
val) are recorded and shown, and classes too small for a kshot split are excluded rather than scored as IoU 0."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import IGNORE, make_tiny_dataset
from scipy import ndimage

from hsbench.data import Dataset, DatasetCard, DatasetProvider, Sample
from hsbench.errors import ConfigError
from hsbench.metrics import compute_metrics, confusion_matrix, per_class_metrics
from hsbench.registry import DATASETS, STRATEGIES, lookup, names
from hsbench.report.labels_used import excluded_notes
from hsbench.report.leaderboard import leaderboard
from hsbench.report.results import load_all_results
from hsbench.report.tables import TableInputs, render_csv, render_latex, render_markdown
from hsbench.runner import Runner, RunSpec
from hsbench.splits import Split, make_split, parse_split_spec
from hsbench.strategy import default_guard

SVM = {"model": "svm", "svm_c_grid": [10.0], "svm_max_pixels": 300}
BUILT_IN = ("in_domain", "cross_modality", "cross_domain", "s2former")


def small_class_scene(name: str = "small_class_scene") -> Dataset:
    """A 40 x 40 scene: three large classes in stripes and class 3 with only 4 labelled pixels."""
    labels = np.full((40, 40), IGNORE, dtype=np.int64)
    labels[:12], labels[14:26], labels[28:] = 0, 1, 2
    labels[12, 10:14] = 3
    rng = np.random.default_rng(0)
    signatures = rng.uniform(0.1, 1.0, size=(4, 6)).astype(np.float32)
    signatures[3] = signatures[0]  # spectrally like road: trained on, it would be predicted on road pixels
    cube = signatures[np.where(labels == IGNORE, 0, labels)].transpose(2, 0, 1)
    cube = (cube + rng.normal(0, 0.02, size=cube.shape)).astype(np.float32)
    card = DatasetCard(name=name, task="scene", wavelengths_nm=tuple(float(w) for w in range(500, 800, 50)),
                       class_names=("road", "grass", "roof", "oats"), palette=((0, 0, 0),) * 4, ignore_index=IGNORE,
                       pseudo_rgb_bands=(0, 2, 4))
    sample = Sample("scene", cube, labels)
    return Dataset(card, ["scene"], lambda _: sample, fingerprint=name)


@pytest.fixture
def registered_scene():
    dataset = small_class_scene()

    class Provider(DatasetProvider):
        card = dataset.card

        @classmethod
        def open(cls, *, data_root=None, **options):
            return dataset

    DATASETS.register_module(name=dataset.card.name, module=Provider, force=True)
    yield dataset
    DATASETS.module_dict.pop(dataset.card.name, None)


# --- guard band from the model --------------------------------------------------------------------------------


def test_every_built_in_strategy_declares_its_spatial_context() -> None:
    contexts = {}
    for name in BUILT_IN:
        cls = lookup(STRATEGIES, name)
        assert "spatial_context" in vars(cls), f"{name} does not declare its spatial context"
        contexts[name] = cls.spatial_context(cls.defaults)
    in_domain = lookup(STRATEGIES, "in_domain")
    assert contexts["in_domain"] == 32  # RU-Net on 64-px crops sees far more than the old 4-px guard
    assert in_domain.spatial_context({**in_domain.defaults, "model": "deeplabv3plus"}) == 32
    assert in_domain.spatial_context({**in_domain.defaults, "model": "svm"}) == 0
    assert contexts["s2former"] == 16  # half a 32-px tile
    cross_domain = lookup(STRATEGIES, "cross_domain")
    assert cross_domain.spatial_context({**cross_domain.defaults, "head": "mlp"}) == 0


def test_default_guard_is_the_largest_context_of_the_registered_strategies() -> None:
    largest = max(lookup(STRATEGIES, n).spatial_context(lookup(STRATEGIES, n).defaults) for n in names(STRATEGIES))
    assert default_guard() == largest >= 32


def test_guard_in_the_spec_overrides_the_default_and_is_recorded(tmp_path) -> None:
    assert str(parse_split_spec(" KShot=5 , Disjoint , Guard = 16 ")) == "kshot=5,disjoint,guard=16"
    with pytest.raises(ConfigError, match="guard"):
        parse_split_spec("kshot=5,guard=3")  # a guard only makes sense for a disjoint split
    scene = make_tiny_dataset(task="scene", num_images=1, height=96, width=96, unlabelled_fraction=0.3)
    split = make_split(scene, "kshot=5,disjoint,guard=6", 0, guard=2)
    assert split.params["guard"] == 6
    train_val, test = (np.logical_or.reduce([m for p in parts for m in split.parts[p].values()])
                       for parts in (("train", "val"), ("test",)))
    assert ndimage.distance_transform_cdt(~train_val, metric="chessboard")[test].min() > 6
    split.save(tmp_path)
    assert json.loads((tmp_path / "split.json").read_text())["params"]["guard"] == 6
    assert Split.load(tmp_path).params["guard"] == 6


def test_runner_passes_the_default_guard_and_records_it(tmp_path, monkeypatch) -> None:
    from conftest import register_tiny_provider

    register_tiny_provider("tiny_guard_scene", task="scene", num_images=1, height=64, width=64,
                           unlabelled_fraction=0.3)
    monkeypatch.setattr("hsbench.runner.default_guard", lambda: 3)
    try:
        outcome = Runner(tmp_path, progress=False).run(RunSpec("tiny_guard_scene", "in_domain", "kshot=5,disjoint", 0,
                                                               SVM))
    finally:
        DATASETS.module_dict.pop("tiny_guard_scene", None)
    assert outcome.status == "completed"
    config = json.loads((outcome.run_dir / "config.json").read_text())
    assert config["split_params"]["guard"] == 3
    assert json.loads((outcome.run_dir / "facts.json").read_text())["guard"] == 3


# --- the labels really used -----------------------------------------------------------------------------------


def test_val_protocol_spec_round_trips_and_defaults_to_full() -> None:
    assert parse_split_spec("fraction=0.05").val == "full"
    assert str(parse_split_spec("fraction=0.05, VAL=matched")) == "fraction=0.05,val=matched"
    with pytest.raises(ConfigError, match="val must be"):
        parse_split_spec("fraction=0.05,val=some")


def test_val_matched_subsamples_val_images_like_train() -> None:
    dataset = make_tiny_dataset(num_images=24, height=8, width=8)  # 12 train, 6 val, 6 test images
    full = make_split(dataset, "fraction=0.2", 0)
    matched = make_split(dataset, "fraction=0.2,val=matched", 0)
    assert list(full.parts["train"]) == list(matched.parts["train"])  # train does not move with the protocol
    assert len(full.parts["val"]) == 6 and len(matched.parts["val"]) == math.ceil(0.2 * 6)
    assert set(matched.parts["val"]) <= set(full.parts["val"])
    assert full.protocol()["val_protocol"] == "full" and matched.protocol()["val_protocol"] == "matched"
    assert matched.protocol()["val_labelled_images"] == 2
    assert matched.protocol()["val_labelled_pixels"] == sum(matched.coverage["val"]) < sum(full.coverage["val"])


def test_val_matched_takes_k_per_class_from_val_images_for_kshot() -> None:
    dataset = make_tiny_dataset(num_images=24, height=8, width=8)
    matched = make_split(dataset, "kshot=3,val=matched", 0)
    assert max(matched.coverage["val"]) <= 3
    assert matched.coverage["train"] == make_split(dataset, "kshot=3", 0).coverage["train"]


def test_val_matched_on_a_scene_fraction_keeps_train_and_test() -> None:
    scene = make_tiny_dataset(task="scene", num_images=1, height=96, width=96, unlabelled_fraction=0.3)
    full, matched = (make_split(scene, f"fraction=0.1{v}", 0) for v in ("", ",val=matched"))
    assert full.coverage["train"] == matched.coverage["train"] and full.coverage["test"] == matched.coverage["test"]
    assert all(m == min(f, max(1, math.ceil(0.1 * f))) for f, m in zip(full.coverage["val"], matched.coverage["val"]))


def test_a_run_records_the_labels_it_used(tmp_path) -> None:
    from conftest import register_tiny_provider

    register_tiny_provider("tiny_labels_used", num_images=24, height=8, width=8)
    try:
        runner = Runner(tmp_path, progress=False)
        outcome = runner.run(RunSpec("tiny_labels_used", "in_domain", "fraction=0.2,val=matched", 0, SVM))
    finally:
        DATASETS.module_dict.pop("tiny_labels_used", None)
    facts = json.loads((outcome.run_dir / "facts.json").read_text())
    split = Split.load(outcome.run_dir / "split")
    assert facts["train_labelled_images"] == 3 and facts["val_labelled_images"] == 2
    assert facts["train_labelled_pixels"] == sum(split.coverage["train"])
    assert facts["val_labelled_pixels"] == sum(split.coverage["val"])
    assert facts["val_protocol"] == "matched" and facts["excluded_classes"] == []


# --- classes too small for the split --------------------------------------------------------------------------


def test_kshot_excludes_a_class_with_too_few_pixels() -> None:
    dataset = small_class_scene()
    split = make_split(dataset, "kshot=5", 0)
    assert split.excluded == (3,)
    assert [c[3] for c in split.coverage.values()] == [0, 0, 0]  # the class is in no part
    assert split.coverage["train"][:3] == [5, 5, 5] and min(split.coverage["test"][:3]) >= 10
    assert split.evaluated_classes.tolist() == [True, True, True, False]
    assert any("class 3 (oats) is excluded" in w for w in split.coverage_warnings(dataset.card.class_names))
    with pytest.raises(ConfigError, match="either"):
        parse_split_spec("kshot=5,cap=half,min_test=3")


def test_min_test_sets_the_threshold_and_cap_half_keeps_the_class() -> None:
    dataset = small_class_scene()
    assert make_split(dataset, "kshot=1,min_test=3", 0).excluded == ()  # 4 >= 1 + 3
    assert make_split(dataset, "kshot=1,min_test=4", 0).excluded == (3,)
    capped = make_split(dataset, "kshot=5,cap=half", 0)
    assert capped.excluded == () and capped.coverage["train"][3] == 2 and capped.coverage["test"][3] >= 1


def test_disjoint_kshot_excludes_classes_it_cannot_test() -> None:
    dataset = small_class_scene()
    split = make_split(dataset, "kshot=5,disjoint,guard=1", 0, block_size=8)
    assert 3 in split.excluded
    for c in split.excluded:
        assert [cov[c] for cov in split.coverage.values()] == [0, 0, 0]


def test_split_json_lists_the_excluded_classes(tmp_path) -> None:
    split = make_split(small_class_scene(), "kshot=5", 0)
    split.save(tmp_path)
    assert json.loads((tmp_path / "split.json").read_text())["excluded_classes"] == [3]
    assert Split.load(tmp_path).excluded == (3,)


def test_macro_means_skip_excluded_classes_and_per_class_arrays_keep_length() -> None:
    target = np.array([0, 0, 1, 1, 2, 2])
    prediction = np.array([0, 3, 1, 1, 2, 2])  # one pixel predicted as class 3, which has no target pixel
    cm = confusion_matrix(target, prediction, 4)
    classes = np.array([True, True, True, False])
    assert compute_metrics(cm)["miou"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)  # class 3 counts as IoU 0
    scored = compute_metrics(cm, classes)
    assert scored["miou"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert scored["oa"] == compute_metrics(cm)["oa"]  # the pixel stays an error of its true class
    per_class = per_class_metrics(cm, classes)
    assert all(len(v) == 4 and np.isnan(v[3]) for v in per_class.values())
    with pytest.raises(ValueError, match="class mask"):
        per_class_metrics(cm, np.ones(3, dtype=bool))


def test_a_run_on_a_scene_with_a_4_pixel_class_scores_the_other_classes(tmp_path, registered_scene) -> None:
    runner = Runner(tmp_path, progress=False)
    outcome = runner.run(RunSpec(registered_scene.card.name, "in_domain", "kshot=5", 0, SVM))
    facts = json.loads((outcome.run_dir / "facts.json").read_text())
    metrics = json.loads((outcome.run_dir / "metrics.json").read_text())["test"]
    assert facts["excluded_classes"] == [3]
    assert len(metrics["iou_per_class"]) == 4 and math.isnan(metrics["iou_per_class"][3])
    assert metrics["miou"] == pytest.approx(np.mean(metrics["iou_per_class"][:3]))


# --- the report states them -----------------------------------------------------------------------------------


def test_leaderboard_rows_state_the_labels_used_and_the_excluded_classes(tmp_path, registered_scene) -> None:
    runner = Runner(tmp_path, progress=False)
    for seed in (0, 1):
        runner.run(RunSpec(registered_scene.card.name, "in_domain", "kshot=5", seed, SVM))
    data = load_all_results(runner.store)
    board = leaderboard(data)
    row = board[board["dataset"] == registered_scene.card.name].iloc[0]
    assert row["train_pixels"] == 15 and row["val_protocol"] == "full"
    assert row["val_pixels"] == data.runs["val_pixels"].mean() > 0
    inputs = TableInputs(data, board, [])
    markdown = render_markdown(inputs)
    assert "| train px | val px |" in markdown and f"| 15 | {row['val_pixels']:,.0f} (full) |" in markdown
    assert "## Excluded classes" in markdown and "excluded classes 3 (oats)" in markdown
    assert excluded_notes(data.runs, data.cards) == [
        "kshot=5 on small_class_scene: excluded classes 3 (oats); too few labelled pixels for the split, so they "
        "are in no part and macro means run over the other classes"
    ]
    assert "val px" in render_latex(inputs) and "excluded classes 3 (oats)" in render_latex(inputs)
    assert "val_protocol" in render_csv(inputs).splitlines()[0]
    assert render_markdown(inputs) == markdown and render_csv(inputs) == render_csv(inputs)  # reproducible
