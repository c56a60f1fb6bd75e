"""Loss and precision options of the shared training recipe: class weighting, loss reduction, precision, clipping."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hsbench.engine import EngineConfig, Trainer, masked_cross_entropy
from hsbench.errors import ConfigError
from hsbench.learners import TRAINING_DEFAULTS, DenseNetworkLearner, engine_config, grad_clip, training_loss
from hsbench.losses import class_weights, cross_entropy, label_histogram
from hsbench.precision import autocast_dtype
from hsbench.seeding import SeedStreams
from hsbench.strategy import RunContext

IGNORE = 255
# Four classes; class 2 never appears. Counts: class 0: 3, class 1: 2, class 3: 1 (6 labelled pixels).
LABELS = [np.array([[0, 0, 0, 1], [IGNORE, 1, 3, IGNORE]])]


class _View:
    """The two things :func:`training_loss` reads from a train view."""

    def __init__(self, labels: list[np.ndarray]) -> None:
        self.labels = labels
        self.sample_ids = [str(i) for i in range(len(labels))]

    def load(self, sample_id: str) -> SimpleNamespace:
        return SimpleNamespace(labels=self.labels[int(sample_id)])


CARD = SimpleNamespace(num_classes=4, ignore_index=IGNORE)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """One 2x4 image: uniform logits (every pixel's loss is log 4) and :data:`LABELS`' targets."""
    return torch.zeros(1, 4, 2, 4), torch.as_tensor(LABELS[0])[None]


def test_histogram_counts_classes_and_skips_the_ignore_index() -> None:
    assert label_histogram(LABELS, 4).tolist() == [3.0, 2.0, 0.0, 1.0]


def test_ins_weights_are_total_over_count_with_zero_for_absent_classes() -> None:
    weights = class_weights("ins", label_histogram(LABELS, 4))
    assert weights.tolist() == pytest.approx([6 / 3, 6 / 2, 0.0, 6 / 1])


def test_isns_weights_are_total_over_square_root_of_count() -> None:
    weights = class_weights("isns", label_histogram(LABELS, 4))
    assert weights.tolist() == pytest.approx([6 / math.sqrt(3), 6 / math.sqrt(2), 0.0, 6.0])
    assert class_weights("none", label_histogram(LABELS, 4)) is None


def test_training_loss_weights_come_from_the_train_view() -> None:
    logits, target = _batch()
    cfg = {"class_weighting": "ins", "loss_reduction": "labelled"}
    loss = training_loss(cfg, _View(LABELS), CARD)(logits, target)
    # Sum of the targets' weights (3 * 2 + 2 * 3 + 1 * 6 = 18) times log 4, over the 6 labelled pixels.
    assert loss.item() == pytest.approx(18 * math.log(4) / 6)


def test_reduction_all_divides_by_every_pixel() -> None:
    logits, target = _batch()
    labelled = cross_entropy(IGNORE, reduction="labelled")(logits, target)
    every = cross_entropy(IGNORE, reduction="all")(logits, target)
    assert labelled.item() == pytest.approx(math.log(4))
    assert every.item() == pytest.approx(labelled.item() * 6 / 8)  # 6 of the 8 pixels are labelled


def test_reduction_all_with_weights_is_the_per_pixel_mean_of_hyperseg() -> None:
    logits = torch.randn(2, 4, 2, 4, generator=torch.Generator().manual_seed(0))
    target = torch.as_tensor(np.stack([LABELS[0], LABELS[0][::-1].copy()]))
    weights = class_weights("isns", label_histogram(LABELS, 4))
    ours = cross_entropy(IGNORE, weights, "all")(logits, target)
    per_pixel = F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE, reduction="none")
    assert ours.item() == pytest.approx(per_pixel.mean().item(), rel=1e-6)


def test_default_loss_is_the_masked_cross_entropy() -> None:
    logits = torch.randn(1, 4, 2, 4, generator=torch.Generator().manual_seed(1))
    _, target = _batch()
    default = training_loss(dict(TRAINING_DEFAULTS), _View(LABELS), CARD)(logits, target)
    assert torch.equal(default, masked_cross_entropy(IGNORE)(logits, target))


@pytest.mark.parametrize(
    ("precision", "cuda", "cpu"),
    [("fp32", None, None), ("bf16", torch.bfloat16, None), ("fp16", torch.float16, None)],
)
def test_precision_gives_the_autocast_dtype_on_cuda_only(precision: str, cuda, cpu) -> None:
    assert autocast_dtype(precision, "cuda") == cuda
    assert autocast_dtype(precision, "cpu") == cpu


def _trainer(tmp_path: Path, device: str, **cfg) -> Trainer:
    ctx = RunContext(device=torch.device(device), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)
    return Trainer(torch.nn.Conv2d(4, 4, 1), EngineConfig(**cfg), ctx, ignore_index=IGNORE)


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_precision_reaches_the_trainers_autocast(tmp_path: Path, precision: str, dtype: torch.dtype) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no CUDA here: torch warns that it disables the context
        context = _trainer(tmp_path, "cuda", precision=precision)._autocast()
    assert isinstance(context, torch.autocast) and context.fast_dtype == dtype
    assert not isinstance(_trainer(tmp_path, "cuda", precision="fp32")._autocast(), torch.autocast)
    assert not isinstance(_trainer(tmp_path, "cpu", precision=precision)._autocast(), torch.autocast)


def test_fp16_on_cpu_trains_exactly_as_fp32(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(4, 2, 4, generator=g), torch.as_tensor(LABELS[0])) for _ in range(4)]
    weights = []
    for precision in ("fp32", "fp16"):
        trainer = _trainer(tmp_path, "cpu", precision=precision, epochs=2, batch_size=2, early_stopping_patience=None)
        torch.manual_seed(0)
        trainer.model.reset_parameters()
        assert not trainer._grad_scaler().is_enabled()
        trainer.fit(data, evaluate=lambda _m: 0.0)
        weights.append(trainer.model.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


@pytest.mark.parametrize("value", [None, 0, 0.0, "none", "None"])
def test_grad_clip_none_or_zero_disables_clipping(value) -> None:
    assert grad_clip(value) is None
    assert engine_config({**TRAINING_DEFAULTS, "grad_clip_norm": value}).grad_clip_norm is None
    assert engine_config(dict(TRAINING_DEFAULTS)).grad_clip_norm == 1.0


@pytest.mark.parametrize(
    ("options", "suggestion"),
    [
        ({"class_weighting": "insn"}, "'ins'"),
        ({"loss_reduction": "labeled"}, "'labelled'"),
        ({"precision": "bf61"}, "'bf16'"),
    ],
)
def test_unknown_values_are_one_line_errors_with_a_suggestion(options: dict, suggestion: str) -> None:
    cfg = {**TRAINING_DEFAULTS, **options}
    with pytest.raises(ConfigError) as error:
        engine_config(cfg)
        training_loss(cfg, _View(LABELS), CARD)
    message = str(error.value)
    assert f"did you mean {suggestion}" in message and "\n" not in message


def test_negative_grad_clip_is_rejected() -> None:
    with pytest.raises(ConfigError, match="grad_clip_norm"):
        EngineConfig(grad_clip_norm=-1.0)


def test_dense_learner_rejects_a_misspelt_option_at_construction(tmp_path: Path) -> None:
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="did you mean 'all'"):
        DenseNetworkLearner({**TRAINING_DEFAULTS, "loss_reduction": "al"}, ctx, CARD)
