"""TensorBoard curves of a run (``--tensorboard``): per-epoch loss, val score and learning rates, test confusion.

The runner opens a :class:`RunBoard` in ``<run_dir>/tensorboard/`` and hands :meth:`RunBoard.epoch` to the
strategy as ``RunContext.epoch_observer``; training loops (:class:`hsbench.engine.Trainer`) call it once per
completed epoch. At the end the runner adds the test confusion matrix as an image. A run without epochs (an SVM)
writes only the image. Logging reads what training computed and changes neither the run id nor any number.

TensorBoard is an optional dependency (``hsbench[tensorboard]``), imported only when a board is opened, so
``import hsbench`` and the CLI's start-up never load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsbench.errors import ConfigError
from hsbench.strategy import EpochRecord

__all__ = ["RunBoard", "TAGS", "confusion_image", "require_tensorboard"]

TAGS = {
    "train_loss": "train/loss",
    "val_score": "val/miou",
    "lr": "train/lr",
    "confusion": "test/confusion",
}
"""TensorBoard tags. ``train/lr`` is the first parameter group's rate; an optimizer with several groups (the lower
rate of a fine-tuned backbone) adds ``train/lr_group1``, ``train/lr_group2``, ..."""

_DPI = 100
_ANNOTATE_MAX_CLASSES = 20


def require_tensorboard() -> None:
    """Fail with one line saying how to install TensorBoard when it cannot be imported (before any training)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as exc:
        reason = (str(exc).strip().splitlines() or ["not installed"])[0]
        raise ConfigError(f'--tensorboard needs the tensorboard package ({reason}): '
                          f'pip install "hsbench[tensorboard]"') from None


def confusion_image(cm: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """The row-normalised confusion matrix (rows: target, columns: prediction, in %) as an ``(H, W, 3)`` uint8
    image, class names on both axes; rows without a labelled pixel stay blank. Same matrix -> same pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = np.asarray(cm, dtype=np.float64)
    k = cm.shape[0]
    support = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.where(support > 0, 100 * cm / np.maximum(support, 1), np.nan)
    side = 2.0 + 0.4 * k
    fig = Figure(figsize=(side + 0.8, side), dpi=_DPI, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    shown = ax.imshow(normalised, vmin=0, vmax=100, cmap="Blues")
    fig.colorbar(shown, ax=ax, label="% of the target class")
    names = list(class_names)[:k] + [str(i) for i in range(len(class_names), k)]
    ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("prediction")
    ax.set_ylabel("target")
    if k <= _ANNOTATE_MAX_CLASSES:
        for (row, col), value in np.ndenumerate(normalised):
            if not np.isnan(value):
                ax.text(col, row, f"{value:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if value > 50 else "black")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class RunBoard:
    """The TensorBoard event files of one run, in ``log_dir`` (the main process's only)."""

    def __init__(self, log_dir: Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self._writer: Any = SummaryWriter(log_dir=str(self.log_dir))

    def epoch(self, record: EpochRecord) -> None:
        """Log one completed epoch (an ``epoch_observer``): loss, val score when evaluated, every group's lr."""
        step = record.epoch
        self._writer.add_scalar(TAGS["train_loss"], record.train_loss, step)
        if record.val_score is not None:
            self._writer.add_scalar(TAGS["val_score"], record.val_score, step)
        for group, lr in enumerate(record.lrs):
            self._writer.add_scalar(TAGS["lr"] if group == 0 else f"{TAGS['lr']}_group{group}", lr, step)
        self._writer.flush()  # curves appear while the run trains

    def confusion(self, cm: np.ndarray, class_names: Sequence[str]) -> None:
        """Add the test confusion matrix as an image (:func:`confusion_image`)."""
        self._writer.add_image(TAGS["confusion"], confusion_image(cm, class_names), 0, dataformats="HWC")
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
