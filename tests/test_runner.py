"""The runner: run ids, skipping, forced re-runs, failures, run folders and the no-test-label rule."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pytest

from hsbench.errors import ConfigError
from hsbench.registry import STRATEGIES
from hsbench.runner import Runner, RunSpec
from hsbench.strategy import Strategy, StrategySpec

FAST = {"model": "svm", "svm_c_grid": [10.0], "svm_max_pixels": 300}


class _Spy(Strategy):
    """Predicts the majority training class; records what it was shown."""

    name: ClassVar[str] = "spy"
    spec: ClassVar[StrategySpec] = StrategySpec(description="test double")
    defaults: ClassVar[dict[str, Any]] = {"fail": False}
    seen_labels: ClassVar[list[np.ndarray]] = []

    def fit(self, train, val):
        if self.cfg["fail"]:
            raise ValueError("boom on purpose")
        counts = np.bincount(np.concatenate([s.labels[s.labels != 255] for s in train]), minlength=4)
        self.majority = int(counts.argmax())
        return {"majority": self.majority}

    def predict(self, sample):
        type(self).seen_labels.append(sample.labels.copy())
        return np.full(sample.labels.shape, self.majority, dtype=np.int64)


@pytest.fixture
def spy():
    STRATEGIES.register_module(name="spy", module=_Spy, force=True)
    _Spy.seen_labels.clear()
    yield _Spy
    STRATEGIES.module_dict.pop("spy", None)


def test_completed_run_is_skipped_and_forced_run_repeats(tmp_path, tiny_registered) -> None:
    runner = Runner(tmp_path, progress=False)
    spec = RunSpec("tiny_segmentation", "in_domain", "fraction=0.5", 0, FAST)
    first = runner.run(spec)
    assert first.status == "completed" and 0 <= first.test_metrics["miou"] <= 1
    again = runner.run(spec)
    assert again.status == "skipped" and again.run_id == first.run_id
    assert again.test_metrics["miou"] == pytest.approx(first.test_metrics["miou"])
    forced = Runner(tmp_path, progress=False, force=True).run(spec)
    assert forced.status == "completed" and forced.run_id == first.run_id
    assert runner.store.count_rows()["runs"] == 1


def test_run_id_depends_on_seed_split_and_options(tmp_path, tiny_registered, spy) -> None:
    runner = Runner(tmp_path, progress=False)
    ids = {
        runner.run(RunSpec("tiny_segmentation", "spy", split, seed)).run_id
        for split, seed in [("fraction=0.5", 0), ("fraction=0.5", 1), ("fraction=1.0", 0)]
    }
    assert len(ids) == 3


def test_run_folder_holds_config_split_metrics_confusion_timings_predictions_log(tmp_path, tiny_registered) -> None:
    outcome = Runner(tmp_path, progress=False).run(RunSpec("tiny_segmentation", "in_domain", "fraction=0.5", 0, FAST))
    run_dir = tmp_path / "runs" / outcome.run_id
    config = json.loads((run_dir / "config.json").read_text())
    assert config["seed"] == 0 and config["options"]["model"] == "svm" and "git_commit" in config
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"val", "test"} and len(metrics["test"]["iou_per_class"]) == 4
    assert np.load(run_dir / "confusion.npz")["test"].dtype == np.int64
    assert {"fit", "predict_test"} <= set(json.loads((run_dir / "timings.json").read_text()))
    assert len(list((run_dir / "predictions").glob("*.png"))) == 3
    assert (run_dir / "split" / "split.json").is_file()
    assert "completed" in (run_dir / "log.txt").read_text()


def test_predict_never_sees_labels(tmp_path, tiny_registered, spy) -> None:
    Runner(tmp_path, progress=False).run(RunSpec("tiny_segmentation", "spy", "fraction=0.5", 0))
    assert spy.seen_labels and all((labels == 255).all() for labels in spy.seen_labels)


def test_test_metrics_match_a_direct_computation(tmp_path, tiny_registered, spy) -> None:
    from hsbench.metrics import confusion_matrix, miou
    from hsbench.registry import DATASETS

    outcome = Runner(tmp_path, progress=False).run(RunSpec("tiny_segmentation", "spy", "official", 0))
    dataset = DATASETS.module_dict["tiny_segmentation"].open()
    test_ids = dataset.card.official().test
    target = np.concatenate([dataset.load(i).labels.ravel() for i in test_ids])
    train = np.concatenate([dataset.load(i).labels.ravel() for i in dataset.card.official().train])
    majority = np.bincount(train[train != 255]).argmax()
    cm = confusion_matrix(target, np.full_like(target, majority), 4, ignore_index=255)
    assert outcome.test_metrics["miou"] == pytest.approx(miou(cm))


def test_failed_run_is_stored_with_traceback_and_redone(tmp_path, tiny_registered, spy) -> None:
    runner = Runner(tmp_path, progress=False)
    spec = RunSpec("tiny_segmentation", "spy", "fraction=0.5", 0, {"fail": True})
    outcome = runner.run(spec)
    assert outcome.status == "failed" and "boom on purpose" in outcome.error
    record = runner.store.get(outcome.run_id)
    assert record.status == "failed" and "ValueError: boom on purpose" in record.error
    assert runner.run(spec).status == "failed"  # not skipped: failed runs are retried


def test_unknown_option_is_a_config_error(tmp_path, tiny_registered) -> None:
    with pytest.raises(ConfigError, match="did you mean epochs"):
        Runner(tmp_path, progress=False).run(RunSpec("tiny_segmentation", "in_domain", options={"epoch": 1}))


def test_same_seed_gives_identical_metrics(tmp_path, tiny_registered) -> None:
    spec = RunSpec("tiny_segmentation", "in_domain", "fraction=0.5", 3,
                   {"model": "runet", "epochs": 2, "batch_size": 2, "model_options": {"base_channels": 4}})
    a = Runner(tmp_path / "a", progress=False).run(spec)
    b = Runner(tmp_path / "b", progress=False).run(spec)
    assert a.run_id == b.run_id and a.test_metrics == b.test_metrics
