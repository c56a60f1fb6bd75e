"""``hsbench evaluate``: a run's stored model on another dataset or split, class maps, evaluation rows, the report.

The runs are real (``hsbench run`` on synthetic_drive, in_domain/svm at its smallest), made once per module; the
evaluated datasets are synthetic_drive itself (exact reproduction), another seed of it, a registered variant
with merged and renamed classes (class maps) and synthetic_hyko (other bands).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hsbench.class_map import NO_CLASS_NAME, read_class_map, resolve_class_map
from hsbench.cli import main
from hsbench.cross_evaluation import score_view
from hsbench.data import Dataset, DatasetCard, DatasetProvider, Sample, array_digest
from hsbench.data.dataset_spec import open_dataset
from hsbench.errors import ConfigError
from hsbench.registry import DATASETS
from hsbench.store import ResultsStore

SVM = ["--model", "svm", "--cfg-options", "svm_c_grid=[10]", "svm_max_pixels=300"]
MERGED = "synthetic_drive_merged"
MERGED_CLASSES = ("road", "lane_marks", "vegetation", "metal", "sky", "building", "person")
# synthetic_drive id -> merged id: both metals become 'metal', glass becomes unlabelled (255)
MERGED_LUT = np.array([0, 1, 2, 3, 4, 5, 6, 3, 255], dtype=np.int64)
CLASS_MAP = """\
road_marks: lane_marks      # renamed
painted_metal: metal        # many-to-one
unpainted_metal: metal
concrete_stone_brick: building
pedestrian_cyclist: null    # counted wrong; and nothing maps to 'person', so 'person' is left out
"""


def _merged_provider() -> type[DatasetProvider]:
    """synthetic_drive's images with merged, renamed classes: the same bands, other class names."""
    base_card = open_dataset("synthetic_drive").card

    class MergedProvider(DatasetProvider):
        card = dataclasses.replace(base_card, name=MERGED, class_names=MERGED_CLASSES,
                                   palette=base_card.palette[: len(MERGED_CLASSES)])

        @classmethod
        def open(cls, *, data_root=None, **options) -> Dataset:
            base = open_dataset("synthetic_drive")

            def load(sample_id: str) -> Sample:
                sample = base.load(sample_id)
                labels = np.where(sample.labels == 255, 255, MERGED_LUT[np.minimum(sample.labels, 8)])
                return Sample(sample_id, sample.cube, labels)

            fingerprint = array_digest(*(load(i).labels for i in base.sample_ids))
            return Dataset(cls.card, base.sample_ids, load, fingerprint=fingerprint)

    return MergedProvider


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two seeds of in_domain/svm on synthetic_drive (fraction=0.1), models kept; the merged dataset registered."""
    results = tmp_path_factory.mktemp("evaluate")
    argv = ["run", "--strategy", "in_domain", "--dataset", "synthetic_drive", "--seeds", "0,1", "--results",
            str(results), "--no-progress", *SVM]
    assert main(argv) == 0
    DATASETS.register_module(name=MERGED, module=_merged_provider(), force=True)
    store = ResultsStore(results / "hsbench.db")
    yield results, store, sorted(store.runs()["run_id"])
    DATASETS.module_dict.pop(MERGED, None)


def _evaluate(results, *args: str) -> int:
    return main(["evaluate", "--results", str(results), "--no-progress", *args])


def _evaluation(store: ResultsStore, run_id: str, dataset: str, part: str = "test") -> dict:
    rows = store.evaluations([run_id])
    rows = rows[(rows["dataset"] == dataset) & (rows["part"] == part)]
    assert len(rows) == 1
    return rows.iloc[0].to_dict()


# ----------------------------------------------------------------------------------------- exact reproduction
def test_evaluating_a_run_on_its_own_dataset_reproduces_its_test_metrics_exactly(trained, capsys) -> None:
    results, store, run_ids = trained
    for run_id in run_ids:
        assert _evaluate(results, "--run", run_id[:8], "--dataset", "synthetic_drive") == 0
        row = _evaluation(store, run_id, "synthetic_drive")
        stored = store.scalar_metrics([run_id]).loc[run_id].to_dict()
        assert {k: row["metrics"][k] for k in stored} == stored  # exactly, not approximately
        assert np.array_equal(np.asarray(row["confusion"]), store.confusion(run_id))
        assert np.asarray(row["confusion"]).sum() > 0 and row["metrics"]["miou"] > 0.1  # a real model
        run_metrics = json.loads((results / "runs" / run_id / "metrics.json").read_text())["test"]
        assert row["metrics"]["per_class"]["iou"] == run_metrics["iou_per_class"]
        assert row["split_seed"] == store.run_row(run_id)["seed"] and row["part"] == "test"
    out = capsys.readouterr().out
    assert "| synthetic_drive | fraction=0.1 (test) | in_domain/svm <- synthetic_drive (fraction=0.1) |" in out


def test_a_second_evaluation_of_the_same_thing_replaces_the_row(trained) -> None:
    results, store, run_ids = trained
    argv = ["--run", run_ids[0], "--dataset", "synthetic_drive:seed=1"]
    assert _evaluate(results, *argv) == 0
    first = _evaluation(store, run_ids[0], "synthetic_drive:seed=1")
    assert _evaluate(results, *argv) == 0
    again = _evaluation(store, run_ids[0], "synthetic_drive:seed=1")  # one row, same id, written again
    assert again["evaluation_id"] == first["evaluation_id"] and again["created_at"] >= first["created_at"]
    assert again["metrics"] == first["metrics"]
    assert _evaluate(results, *argv, "--part", "val") == 0  # another part: another evaluation
    rows = store.evaluations([run_ids[0]])
    assert sorted(rows[rows["dataset"] == "synthetic_drive:seed=1"]["part"]) == ["test", "val"]


# --------------------------------------------------------------------------------------------------- class maps
def test_class_map_merges_renames_counts_unmapped_as_wrong_and_leaves_out_unreached(trained, tmp_path, capsys):
    from hsbench.saved_model import load_run_model
    from hsbench.splits import make_split
    from hsbench.strategy import SplitView

    results, store, run_ids = trained
    class_map = tmp_path / "map.yaml"
    class_map.write_text(CLASS_MAP)
    assert _evaluate(results, "--run", run_ids[0], "--dataset", MERGED, "--class-map", str(class_map)) == 0
    out = capsys.readouterr().out
    assert f"classes of {MERGED} left out of the metrics: person" in out
    assert "counted as wrong (they map to nothing): pedestrian_cyclist, glass_transparent_plastic" in out
    row = _evaluation(store, run_ids[0], MERGED)
    assert row["metrics"]["classes"] == [*MERGED_CLASSES, NO_CLASS_NAME]
    assert row["metrics"]["excluded_classes"] == ["person"]
    assert row["class_map"] == read_class_map(class_map)
    confusion = np.asarray(row["confusion"])
    assert confusion.shape == (8, 8) and not confusion[6].any()  # 'person' pixels are not scored
    assert row["metrics"]["per_class"]["iou"][6] is None  # left out of every average

    # Independently: predict the merged test images with the model and score by hand.
    strategy, _ = load_run_model(results / "runs" / run_ids[0])
    dataset = open_dataset(MERGED)
    view = SplitView.of(dataset, make_split(dataset, "fraction=0.1", 0), "test")
    to_merged = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: -1, 7: 3, 8: -1}  # -1: maps to nothing, always wrong
    correct = scored = wrong_class = 0
    for sample in view:
        prediction = strategy.predict(Sample(sample.id, sample.cube, np.full_like(sample.labels, 255)))
        mapped = np.vectorize(to_merged.get)(prediction)
        keep = (sample.labels != 255) & (sample.labels != 6)
        scored += int(keep.sum())
        correct += int((mapped[keep] == sample.labels[keep]).sum())
        wrong_class += int((mapped[keep] == -1).sum())
    assert confusion.sum() == scored and confusion[:, 7].sum() == wrong_class
    assert row["metrics"]["oa"] == pytest.approx(correct / scored, abs=1e-12)


def test_mapping_by_hand_unmapped_model_class_is_wrong_and_unreached_class_is_out() -> None:
    mapping = resolve_class_map(["a", "b", "c"], ["x", "a", "y"], {"b": "x", "c": None}, model_name="m",
                                target_name="t")
    assert mapping.lookup.tolist() == [1, 0, 3] and mapping.excluded == (2,)
    assert mapping.resolved() == {"a": "a", "b": "x", "c": None}
    assert mapping.class_names == ["x", "a", "y", NO_CLASS_NAME]
    card = DatasetCard(name="t", task="segmentation", wavelengths_nm=(500.0,), class_names=("x", "a", "y"),
                       palette=((0, 0, 0),) * 3, ignore_index=255, pseudo_rgb_bands=(0, 0, 0))

    class View:  # what evaluate_view reads of a split view
        def __init__(self) -> None:
            self.card = card

        def __iter__(self):
            yield Sample("s", np.zeros((1, 1, 5), np.float32), np.array([[0, 1, 2, 255, 0]]))

    model_says = np.array([[1, 2, 0, 0, 0]])  # b (-> x, right), c (-> nothing), a (on y: not scored), -, a (wrong)
    confusion = score_view(lambda sample: model_says, View(), mapping)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[0, 0] = expected[1, 3] = expected[0, 1] = 1
    assert np.array_equal(confusion, expected)
    same = resolve_class_map(["a", "b"], ["a", "b"], None, model_name="m", target_name="t")
    assert same.identity and not same.has_no_class


def test_without_a_class_map_class_names_must_match(trained, capsys) -> None:
    results, _, run_ids = trained
    assert _evaluate(results, "--run", run_ids[0], "--dataset", MERGED) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--class-map" in err
    assert "road_marks" in err and "lane_marks" in err and "Traceback" not in err


@pytest.mark.parametrize(("text", "message"), [
    ("road_mark: lane_marks\n", "did you mean 'road_marks'"),
    ("road_marks: lane_mark\n", "did you mean 'lane_marks'"),
    ("- road\n- lane_marks\n", "must be a mapping"),
    ("road_marks: [lane_marks, road]\n", "to one class name"),
    ("road_marks: !!python/object/apply:os.system ['echo pwned']\n", "never run"),
])
def test_bad_class_maps_are_one_line(trained, tmp_path, capsys, text, message) -> None:
    results, _, run_ids = trained
    class_map = tmp_path / "map.yaml"
    class_map.write_text(text)
    assert _evaluate(results, "--run", run_ids[0], "--dataset", MERGED, "--class-map", str(class_map)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_class_map_reader_takes_json_and_never_constructs_objects(tmp_path) -> None:
    path = tmp_path / "map.json"
    path.write_text('{"road_marks": "lane_marks", "pedestrian_cyclist": null}')
    assert read_class_map(path) == {"road_marks": "lane_marks", "pedestrian_cyclist": None}
    path = tmp_path / "map.yml"
    path.write_text("1: road\n")
    with pytest.raises(ConfigError, match="quote it"):
        read_class_map(path)


# ------------------------------------------------------------------------------------------------- bad inputs
def test_a_dataset_with_other_bands_is_one_line(trained, capsys) -> None:
    results, _, run_ids = trained
    assert _evaluate(results, "--run", run_ids[0], "--dataset", "synthetic_hyko") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has 15 bands, but the model was trained on 25 bands" in err


def test_an_unknown_run_is_one_line(trained, capsys) -> None:
    results, _, run_ids = trained
    assert _evaluate(results, "--run", "nope", "--dataset", "synthetic_drive") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no run 'nope'" in err


def test_a_run_without_a_model_is_one_line(tmp_path, tiny_registered, capsys) -> None:
    assert main(["run", "--strategy", "in_domain", "--dataset", "tiny_segmentation", "--split", "fraction=0.5",
                 "--results", str(tmp_path), "--no-progress", "--no-save-model", *SVM]) == 0
    (run_id,) = ResultsStore(tmp_path / "hsbench.db").runs()["run_id"]
    capsys.readouterr()
    assert _evaluate(tmp_path, "--run", run_id, "--dataset", "tiny_segmentation") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds no saved model" in err and "--no-save-model" in err


# -------------------------------------------------------------------------------------------------------- storage
def _run_row(dataset: str = "synthetic_drive", seed: int = 0) -> dict:
    return {"dataset": dataset, "dataset_fingerprint": "f", "dataset_version": "1", "split": "fraction=0.1",
            "split_hash": "h", "strategy": "in_domain", "strategy_label": "in_domain/svm", "seed": seed,
            "config": {"options": {"model": "svm"}}}


def _complete(store: ResultsStore, run_id: str, miou: float) -> None:
    store.complete(run_id, metrics={"test": {"miou": miou, "oa": 0.9, "macc": 0.8, "mf1": 0.7}}, per_class={},
                   confusions={"test": np.eye(2, dtype=np.int64)}, timings={"fit": 1.0}, facts={})


def _evaluation_row(run_id: str, dataset: str, miou: float, class_map=None) -> dict:
    return {"evaluation_id": f"{run_id}-{dataset}", "run_id": run_id, "dataset": dataset,
            "dataset_fingerprint": "g", "split": "fraction=0.1", "part": "test", "class_map": class_map,
            "metrics": {"miou": miou, "per_class": {"iou": [float("nan"), 0.5]}, "excluded_classes": ["person"],
                        "mapping": {"a": "x", "b": None}},
            "confusion": [[1, 0], [0, 1]]}


def test_evaluation_rows_are_replaced_and_go_with_a_rerun_of_their_run(tmp_path) -> None:
    store = ResultsStore(tmp_path / "h.db")
    store.begin("r0", _run_row())
    _complete(store, "r0", 0.5)
    store.put_evaluation(_evaluation_row("r0", "other", 0.25))
    store.put_evaluation(_evaluation_row("r0", "other", 0.3))
    rows = store.evaluations(["r0"])
    assert len(rows) == 1 and rows.iloc[0]["metrics"]["miou"] == 0.3
    assert rows.iloc[0]["metrics"]["per_class"]["iou"] == [None, 0.5]  # NaN stored as null (PostgreSQL JSON)
    store.begin("r0", _run_row())  # a forced re-run replaces the model: its evaluations go
    assert store.evaluations(["r0"]).empty


def test_evaluation_rows_on_postgresql() -> None:
    """PostgreSQL enforces the run foreign key and refuses NaN in JSON: rows with undefined metrics still store."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is an extra: pip install 'hsbench[postgres]'")
    from pg_server import PostgresServer, PostgresUnavailable

    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    try:
        store = ResultsStore(server.create_database("evaluations_on_postgresql"))
        store.begin("r0", _run_row())
        _complete(store, "r0", 0.5)
        store.put_evaluation(_evaluation_row("r0", "other", 0.25))
        store.put_evaluation(_evaluation_row("r0", "other", 0.3))
        rows = store.evaluations(["r0"])
        assert len(rows) == 1 and rows.iloc[0]["metrics"]["per_class"]["iou"] == [None, 0.5]
        store.begin("r0", _run_row())
        assert store.evaluations().empty
    finally:
        server.stop()


def test_an_older_database_gets_the_evaluations_table(tmp_path) -> None:
    from sqlalchemy import create_engine, inspect, text

    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:  # a results database from before evaluations existed
        conn.execute(text("CREATE TABLE runs (run_id VARCHAR(64) PRIMARY KEY, status VARCHAR(16) NOT NULL)"))
    assert "evaluations" not in inspect(engine).get_table_names()
    ResultsStore(path)
    assert "evaluations" in inspect(engine).get_table_names()


# ------------------------------------------------------------------------------------------------------- report
def _report_inputs(store: ResultsStore):
    from hsbench.report import load_all_results
    from hsbench.report.leaderboard import leaderboard
    from hsbench.report.tables import TableInputs

    data = load_all_results(store)
    return TableInputs(data, leaderboard(data), [])


def test_report_has_a_cross_dataset_matrix_only_when_evaluations_exist(tmp_path) -> None:
    from hsbench.report.cross_dataset import CROSS_TITLE, cross_dataset_matrices
    from hsbench.report.html import render_html
    from hsbench.report.tables import render_markdown

    store = ResultsStore(tmp_path / "h.db")
    for seed, miou in enumerate((0.5, 0.7)):
        store.begin(f"r{seed}", _run_row(seed=seed))
        _complete(store, f"r{seed}", miou)
    inputs = _report_inputs(store)
    assert cross_dataset_matrices(inputs.data) == []
    assert CROSS_TITLE not in render_markdown(inputs) and CROSS_TITLE not in render_html(inputs, [])

    store.put_evaluation(_evaluation_row("r0", "other", 0.4))
    store.put_evaluation(_evaluation_row("r1", "other", 0.6))
    store.put_evaluation(_evaluation_row("r1", "mapped", 0.2, class_map={"a": "x", "b": None}))
    inputs = _report_inputs(store)
    (matrix,) = cross_dataset_matrices(inputs.data)
    assert matrix.label == "in_domain/svm"
    assert matrix.header[:3] == ["trained on", "synthetic_drive [fraction=0.1]", "other [fraction=0.1]"]
    assert matrix.header[3].startswith("mapped [fraction=0.1] map ")
    # diagonal: the runs' own test J_M (50, 70); 'other': 40 and 60; 'mapped': one seed
    assert matrix.rows == [["synthetic_drive [fraction=0.1]", "60.00 ± 14.14 (n=2)", "50.00 ± 14.14 (n=2)",
                            "20.00 ± 0.00 (n=1)"]]
    assert any("counted wrong: b" in note and "left out: person" in note for note in matrix.notes)
    markdown, page = render_markdown(inputs), render_html(inputs, [])
    assert f"## {CROSS_TITLE}" in markdown and "| synthetic_drive [fraction=0.1] | 60.00 ± 14.14 (n=2) |" in markdown
    assert CROSS_TITLE in page and "50.00 ± 14.14 (n=2)" in page


def test_report_after_real_evaluations_shows_them(trained) -> None:
    from hsbench.report import load_all_results
    from hsbench.report.cross_dataset import cross_dataset_matrices

    results, store, run_ids = trained
    for run_id in run_ids:
        assert _evaluate(results, "--run", run_id, "--dataset", "synthetic_drive:seed=1") == 0
    data = load_all_results(store)
    (matrix,) = cross_dataset_matrices(data)
    column = matrix.header.index("synthetic_drive:seed=1 [fraction=0.1]")
    values = [_evaluation(store, r, "synthetic_drive:seed=1")["metrics"]["miou"] for r in run_ids]
    from hsbench.report.tables import format_over_seeds

    assert matrix.rows[0][column] == format_over_seeds(values)
    assert matrix.rows[0][1] == format_over_seeds(list(data.runs["miou"]))


def test_predict_and_evaluate_name_runs_by_one_rule() -> None:
    """One lookup for both commands: the same function, so the same prefixes and messages."""
    from hsbench import cross_evaluation, run_lookup
    from hsbench.predict import runs

    assert cross_evaluation.find_run is run_lookup.find_run is runs.find_run
