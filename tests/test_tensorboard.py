"""``--tensorboard``: per-epoch curves and the test confusion matrix as TensorBoard event files (issue 16).

The event files are read back with TensorBoard's own reader, and compared with what the run stored.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import register_tiny_provider  # tests/ is on sys.path (see conftest.py)

from hsbench.cli import main
from hsbench.engine import EngineConfig, Trainer
from hsbench.registry import DATASETS
from hsbench.runner import Runner, RunSpec
from hsbench.seeding import SeedStreams
from hsbench.strategy import EpochRecord, RunContext
from hsbench.tensorboard_log import TAGS, confusion_image

needs_tensorboard = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                                       reason="the tensorboard extra is not installed")

DATASET = "tiny_tensorboard"
EPOCHS, LR = 3, 0.005
OPTIONS = {"epochs": EPOCHS, "lr": LR, "batch_size": 4, "schedule": "cosine", "model": "runet",
           "model_options": {"base_channels": 8}}
SPEC = RunSpec(DATASET, "in_domain", "fraction=0.5", 0, OPTIONS)


@pytest.fixture(scope="module")
def board_run(tmp_path_factory) -> Path:
    """One tiny in_domain run with ``tensorboard: true`` in its run config (the CLI path); its run folder. The
    tiny dataset stays registered until the module's tests are done."""
    register_tiny_provider(DATASET)
    results = tmp_path_factory.mktemp("board")
    config = results / "run.json"
    config.write_text(json.dumps({"strategy": "in_domain", "dataset": DATASET, "split": SPEC.split, "seeds": [0],
                                  "options": OPTIONS, "tensorboard": True}))
    try:
        assert main(["run", "--config", str(config), "--results", str(results), "--no-progress"]) == 0
        (run_dir,) = (results / "runs").iterdir()
        yield run_dir
    finally:
        DATASETS.module_dict.pop(DATASET, None)


def _accumulator(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


@needs_tensorboard
def test_event_files_hold_loss_val_miou_lr_per_epoch_and_the_test_confusion(board_run: Path) -> None:
    acc = _accumulator(board_run)
    tags = acc.Tags()
    assert set(tags["scalars"]) == {TAGS["train_loss"], TAGS["val_score"], TAGS["lr"]}
    for tag in tags["scalars"]:
        assert [event.step for event in acc.Scalars(tag)] == list(range(1, EPOCHS + 1)), tag
    assert all(math.isfinite(e.value) and e.value > 0 for e in acc.Scalars(TAGS["train_loss"]))
    # val J_M is the engine's selection score, exactly what the run stored as its val curve (float32 in the file).
    facts = json.loads((board_run / "facts.json").read_text())
    assert [e.value for e in acc.Scalars(TAGS["val_score"])] == pytest.approx(facts["val_history"], rel=1e-6)
    # The cosine schedule without warm-up: each epoch starts at lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2.
    expected_lr = [LR * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / EPOCHS)) for epoch in range(1, EPOCHS + 1)]
    assert [e.value for e in acc.Scalars(TAGS["lr"])] == pytest.approx(expected_lr, rel=1e-6)
    # The confusion image is the row-normalised test matrix the run stored, with the dataset's class names.
    (image,) = acc.Images(TAGS["confusion"])
    card = DATASETS.module_dict[DATASET].card
    expected = confusion_image(np.load(board_run / "confusion.npz")["test"], card.class_names)
    assert (image.height, image.width) == expected.shape[:2] == (360, 440)  # (2 + 0.4 K) x (2.8 + 0.4 K) in at 100 dpi
    from PIL import Image

    decoded = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(decoded, expected)


@needs_tensorboard
def test_without_the_flag_no_event_file_and_the_same_run_id_and_numbers(tmp_path: Path, board_run: Path) -> None:
    outcome = Runner(tmp_path, progress=False).run(SPEC)
    assert outcome.status == "completed", outcome.error
    assert outcome.run_id == board_run.name  # not part of the run id
    assert not list(tmp_path.rglob("events.out.tfevents*")) and not (outcome.run_dir / "tensorboard").exists()
    stored = json.loads((board_run / "metrics.json").read_text())["test"]
    assert {k: stored[k] for k in outcome.test_metrics} == outcome.test_metrics  # and it changes no number


@needs_tensorboard
def test_a_run_without_epochs_writes_only_the_confusion_matrix(tmp_path: Path, tiny_registered) -> None:
    spec = RunSpec(tiny_registered["segmentation"], "in_domain", "fraction=0.5", 0,
                   {"model": "svm", "input": "standardize", "svm_c_grid": [10.0], "svm_max_pixels": 300})
    outcome = Runner(tmp_path, progress=False, tensorboard=True).run(spec)
    assert outcome.status == "completed", outcome.error
    tags = _accumulator(outcome.run_dir).Tags()
    assert tags["scalars"] == [] and tags["images"] == [TAGS["confusion"]]


@pytest.mark.parametrize("command", [
    ["run", "--strategy", "in_domain", "--tensorboard"],
    ["run", "--config", "{config}"],
    ["benchmark", "--suite", "quick", "--no-report", "--tensorboard"],
])
def test_tensorboard_without_the_package_is_one_line_before_training(tmp_path, capsys, monkeypatch, command) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # an import of it now fails, as when not installed
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    config = tmp_path / "run.yaml"
    config.write_text("strategy: in_domain\ntensorboard: true\n")
    results = tmp_path / "results"
    argv = [arg.format(config=config) for arg in command] + ["--results", str(results), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "hsbench[tensorboard]"' in err and "Traceback" not in err
    assert not (results / "runs").exists() and not (results / "hsbench.db").exists()  # nothing trained or stored


def test_a_non_boolean_tensorboard_key_is_one_line(tmp_path, capsys) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("strategy: in_domain\ntensorboard: sometimes\n")
    assert main(["run", "--config", str(config), "--results", str(tmp_path)]) == 2
    assert "tensorboard in a run config must be true or false" in capsys.readouterr().err


def test_importing_hsbench_and_its_cli_does_not_import_tensorboard() -> None:
    code = ("import sys, hsbench, hsbench.cli.main, hsbench.runner, hsbench.benchmark; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorboard' or 'tensorboard' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['hsbench.tensorboard_log']"


class _Pixels(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(index)
        return torch.randn(2, 4, 4, generator=g), torch.randint(0, 2, (4, 4), generator=g)


def test_the_epoch_observer_sees_every_epoch_before_the_epoch_callback(tmp_path: Path) -> None:
    events: list[object] = []
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False,
                     epoch_observer=events.append, epoch_callback=lambda epoch, score: events.append((epoch, score)))
    cfg = EngineConfig(epochs=3, batch_size=2, eval_every=2, lr=0.01, schedule="constant", precision="fp32")
    result = Trainer(torch.nn.Conv2d(2, 2, 1), cfg, ctx, ignore_index=255).fit(_Pixels(), lambda model: 0.5)
    records = [e for e in events if isinstance(e, EpochRecord)]
    assert [(r.epoch, r.val_score, r.lrs) for r in records] == [(1, None, (0.01,)), (2, 0.5, (0.01,)),
                                                                (3, 0.5, (0.01,))]
    assert [r.train_loss for r in records] == [entry["train_loss"] for entry in result.history]
    assert events[1:3] == [records[1], (2, 0.5)]  # observer first, so a pruned epoch is still logged
