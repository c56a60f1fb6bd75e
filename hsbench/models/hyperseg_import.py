"""Weights of ``nickstheisen/hyperseg`` U-Net / RU-Net checkpoints into hsbench's ``layout=hyperseg`` U-Net.

hyperseg's ``UNet`` is itself the Lightning module (``hyperseg/models/unet.py``), so a Lightning ``.ckpt`` holds
``{"state_dict": {...}}`` with the network's keys unprefixed: ``inc.double_conv.<i>``, ``down<k>.maxpool_conv.2.
double_conv.<i>``, ``up<k>.conv.double_conv.<i>`` and ``outc.conv``. Wrappers that hold the network as an attribute
add ``model.`` / ``net.`` (DataParallel adds ``module.``); those prefixes are stripped. The loss's class-weight
buffer (``criterion.weight``, created in ``SemanticSegmentationModule.setup``) is training state, not network
state, and is listed as ignored. Everything else must match exactly, or the import stops listing the keys.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
import torch.nn as nn

from hsbench.errors import ConfigError
from hsbench.models.spectral_fm_import import ImportReport, load_matching, strip_prefixes
from hsbench.zoo import check_user_file, load_torch_checkpoint

__all__ = [
    "HYPERSEG_KEY_RULES", "hyperseg_to_hsbench", "read_hyperseg_checkpoint", "load_state", "load_hyperseg_weights",
]

log = logging.getLogger("hsbench")

CHECKPOINT_PREFIXES = ("model.", "net.", "module.")
"""Attribute / wrapper prefixes a hyperseg network's keys may carry."""
IGNORED_KEYS = ("criterion.",)
"""Training state saved beside the network (the cross-entropy class weights)."""

HYPERSEG_KEY_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^inc\.double_conv\.(.+)$"), r"stem.\1"),
    (re.compile(r"^down(\d+)\.maxpool_conv\.2\.double_conv\.(.+)$"), r"downs.{\1}.2.\2"),
    (re.compile(r"^up(\d+)\.conv\.double_conv\.(.+)$"), r"ups.{\1}.conv.\2"),
    (re.compile(r"^outc\.conv\.(.+)$"), r"head.\1"),
)
"""hyperseg key pattern -> hsbench key; ``{k}`` is hyperseg's 1-based block number, made 0-based."""


def _rename(key: str) -> str | None:
    for pattern, target in HYPERSEG_KEY_RULES:
        match = pattern.match(key)
        if match:
            expanded = match.expand(target)
            return re.sub(r"\{(\d+)\}", lambda m: str(int(m.group(1)) - 1), expanded)
    return None


def hyperseg_to_hsbench(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``state`` under hsbench's key names, and the keys no rule knows (kept as they are, so they show up)."""
    mapped: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in strip_prefixes(state, CHECKPOINT_PREFIXES).items():
        name = _rename(key)
        if name is None:
            unknown.append(key)
            name = key
        mapped[name] = value
    return mapped, unknown


def read_hyperseg_checkpoint(
    path: str | Path, *, trusted: bool = False, expected_sha256: str | None = None
) -> dict[str, torch.Tensor]:
    """The tensors of a Lightning checkpoint's ``state_dict`` (or of a plain state dict file).

    ``expected_sha256`` (``model_options.weights_sha256``) refuses another file under the same path; it also
    enters the run's options, so a run id names the checkpoint's content and not only its path.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"hyperseg checkpoint {path} does not exist")
    if expected_sha256:
        check_user_file(path, expected_sha256)
    checkpoint = load_torch_checkpoint(
        path, trusted=trusted, what="hyperseg checkpoint",
        trust_hint=" (if you trust its source, set model_options.weights_trusted=true)",
    )
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(f"{path} holds no state dict (expected a Lightning checkpoint or a dict of tensors)")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_state(model: nn.Module, state: dict[str, torch.Tensor], *, source: str = "state dict") -> ImportReport:
    """Load hyperseg-named ``state`` into ``model`` strictly; the error lists missing and unexpected keys."""
    mapped, _ = hyperseg_to_hsbench(state)
    report = load_matching(model, mapped, ignore=IGNORED_KEYS)
    if report.unmatched:
        raise ConfigError(f"hyperseg weights from {source} do not fit the network: {report.listing()}")
    log.info("hyperseg weights from %s: %s", source, report.summary())
    return report


def load_hyperseg_weights(
    model: nn.Module, path: str | Path, *, trusted: bool = False, expected_sha256: str | None = None
) -> ImportReport:
    """Initialise ``model`` (a ``layout=hyperseg`` U-Net / RU-Net) from the hyperseg checkpoint at ``path``."""
    state = read_hyperseg_checkpoint(path, trusted=trusted, expected_sha256=expected_sha256)
    return load_state(model, state, source=str(path))
