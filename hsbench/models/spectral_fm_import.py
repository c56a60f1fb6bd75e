"""Weights into a :class:`SpectralFM`: zoo artifacts, hsbench safetensors files and HyperSL checkpoints.

HyperSL checkpoints (the model the 2026 cross-domain study used) are torch files holding ``{"model": state_dict}``,
keys possibly prefixed ``module.`` (saved from DataParallel). Their encoder submodules carry the names this
package's :class:`SpectralFM` uses, so the mapping is by name after stripping the prefix; what the encoder does not
need (the decoder's ``corss_attn``, ``decoder_blocks``, ``norm1``, ``norm2``, ``decoder_layer`` and the
placeholder ``pe`` buffer) is listed as ignored. Any other unmatched key (missing, of another shape, unexpected)
stops the import with the keys listed, unless the user passes ``strict=False`` (the strategies' ``strict=false``
option); hsbench's own files (zoo artifacts, safetensors files carrying a model config) always load strictly.
HyperSL's last block (``transformer_encoder_layer``) adds its attention output to itself instead of to its input;
imported weights therefore run with ``final_block="hypersl"`` so they compute what they were trained to compute.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hsbench.errors import ConfigError
from hsbench.models.spectral_fm import SIZES, SpectralFM, SpectralFMConfig
from hsbench.options import config_hash
from hsbench.zoo import Artifact, WeightsFile, read_weights_file

__all__ = [
    "ImportReport", "strip_prefixes", "load_matching", "load_weights_file", "fm_from_artifact", "MODEL_CONFIG_KEY",
]

log = logging.getLogger("hsbench")

MODEL_CONFIG_KEY = "model_config"
"""Metadata entry (zoo metadata, safetensors header) holding :meth:`SpectralFMConfig.to_dict`."""
HYPERSL_IGNORED = ("pe", "corss_attn.", "cross_attn.", "decoder_blocks.", "decoder_layer.", "norm1.", "norm2.")
"""HyperSL keys inference does not use: the reconstruction decoder and a zero placeholder buffer."""
_CORE_KEYS = ("global_token", "embedding_layer_4.0.weight", "transformer_encoder_layer.attn.qkv.weight")
_LISTED_KEYS = 20


@dataclass
class ImportReport:
    """How a checkpoint's keys met the model's.

    Attributes:
        loaded: model keys set from the checkpoint.
        missing: model keys the checkpoint does not have (left at their initial values).
        mismatched: ``key: checkpoint shape vs model shape`` (left at their initial values).
        unexpected: checkpoint keys the model has no place for (and that are not known decoder parts).
        ignored: known decoder / placeholder keys, skipped on purpose.
        file_sha256: SHA-256 of the file the weights came from (verified against ``weights_sha256`` when given).
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    file_sha256: str = ""

    @property
    def unmatched(self) -> list[str]:
        """Everything that did not line up (missing, mismatched, unexpected)."""
        return [*self.missing, *self.mismatched, *self.unexpected]

    def summary(self) -> str:
        return (
            f"{len(self.loaded)} tensors loaded, {len(self.missing)} missing, {len(self.mismatched)} with other "
            f"shapes, {len(self.unexpected)} unexpected, {len(self.ignored)} decoder keys ignored"
        )

    def listing(self) -> str:
        """The unmatched keys by kind, for a one-line error."""
        parts = []
        for kind, keys in (("missing", self.missing), ("other shape", self.mismatched),
                           ("unexpected", self.unexpected)):
            if keys:
                more = f" and {len(keys) - _LISTED_KEYS} more" if len(keys) > _LISTED_KEYS else ""
                parts.append(f"{kind}: {', '.join(keys[:_LISTED_KEYS])}{more}")
        return "; ".join(parts)


def strip_prefixes(state: dict[str, torch.Tensor], prefixes: tuple[str, ...] = ("module.",)) -> dict[str, torch.Tensor]:
    """Keys without DataParallel's ``module.`` (repeated prefixes too)."""
    out = {}
    for key, value in state.items():
        while key.startswith(prefixes):
            key = next(key[len(p) :] for p in prefixes if key.startswith(p))
        out[key] = value
    return out


def _ignored(key: str, ignore: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p) for p in ignore)


def load_matching(
    model: torch.nn.Module, state: dict[str, torch.Tensor], *, ignore: tuple[str, ...] = ()
) -> ImportReport:
    """Copy every same-named, same-shaped tensor of ``state`` into ``model``; report the rest."""
    report = ImportReport()
    own = model.state_dict()
    usable = {}
    for key, value in state.items():
        if key in own:
            if tuple(value.shape) == tuple(own[key].shape):
                usable[key] = value.to(own[key].dtype)
                report.loaded.append(key)
            else:
                report.mismatched.append(f"{key}: {tuple(value.shape)} vs {tuple(own[key].shape)}")
        elif _ignored(key, ignore):
            report.ignored.append(key)
        else:
            report.unexpected.append(key)
    report.missing = [k for k in own if k not in state]
    model.load_state_dict(usable, strict=False)
    return report


def _checkpoint_shape_hint(state: dict[str, torch.Tensor]) -> str:
    token = state.get("global_token")
    blocks = {k.split(".")[1] for k in state if k.startswith("encoder_blocks.")}
    if token is None:
        return "it has no global_token, so it is not a spectral FM checkpoint"
    return f"it has dim {token.shape[-1]} and {len(blocks) + 1} blocks; set fm_options.dim / fm_options.depth to match"


def load_weights_file(
    path: Path, config: SpectralFMConfig | None = None, *, trusted: bool = False, strict: bool = True,
    expected_sha256: str | None = None,
) -> tuple[SpectralFM, ImportReport, str]:
    """A :class:`SpectralFM` with the weights of a user file.

    hsbench safetensors files carry their model config and always load strictly. Other files (HyperSL torch
    checkpoints) are mapped by name onto ``config`` (default: the ``small`` size) run with HyperSL's last-block
    form; a partial mapping is refused, listing the keys, unless ``strict`` is false.

    Args:
        expected_sha256: the file's SHA-256 as the user knows it; a different file is refused.

    Returns:
        The model (eval mode), the import report (also logged) and the checkpoint hash that caches key on (file
        bytes plus the model config, since one file mapped onto two configs gives two models).
    """
    weights = read_weights_file(path, trusted=trusted, expected_sha256=expected_sha256)
    state = strip_prefixes(weights.state_dict)
    if MODEL_CONFIG_KEY in weights.metadata:
        model, report = _load_own(path, weights, state)
    else:
        model, report = _load_foreign(path, config, state, strict=strict)
    config, report.file_sha256 = model.cfg, weights.sha256
    level = logging.WARNING if report.unmatched else logging.INFO
    log.log(level, "spectral FM weights from %s: %s", path, report.summary())
    for key in report.unmatched:
        log.log(level, "  unmatched: %s", key)
    checkpoint_hash = config_hash({"file_sha256": weights.sha256, MODEL_CONFIG_KEY: config.to_dict()}, 64)
    return model.eval(), report, checkpoint_hash


def _load_own(path: Path, weights: WeightsFile, state: dict[str, torch.Tensor]) -> tuple[SpectralFM, ImportReport]:
    """An hsbench file: its own config, every key required (a partial load would be a different model)."""
    model = SpectralFM(SpectralFMConfig.from_dict(weights.metadata[MODEL_CONFIG_KEY]))
    report = load_matching(model, state)
    if report.unmatched:
        raise ConfigError(f"hsbench weights file {path} does not match the model config it carries "
                          f"({report.summary()}); {report.listing()}")
    return model, report


def _load_foreign(
    path: Path, config: SpectralFMConfig | None, state: dict[str, torch.Tensor], *, strict: bool
) -> tuple[SpectralFM, ImportReport]:
    """A HyperSL-layout file mapped by name; partial only when the user allowed it (``strict=false``)."""
    base = config or SIZES["small"]
    model = SpectralFM(SpectralFMConfig.from_dict({**base.to_dict(), "final_block": "hypersl"}))
    report = load_matching(model, state, ignore=HYPERSL_IGNORED)
    if not all(key in report.loaded for key in _CORE_KEYS):
        raise ConfigError(f"weights file {path} does not fit the spectral FM {model.cfg.to_dict()}: "
                          f"{_checkpoint_shape_hint(state)}")
    if report.unmatched and strict:
        raise ConfigError(f"weights file {path} loads only in part ({report.summary()}): {report.listing()}; "
                          "set strict=false to run with the unmatched tensors left at their initial values")
    return model, report


def fm_from_artifact(artifact: Artifact) -> SpectralFM:
    """The model stored in a zoo artifact (strict: a zoo artifact always matches its own config)."""
    model = SpectralFM(SpectralFMConfig.from_dict(artifact.metadata[MODEL_CONFIG_KEY]))
    return artifact.load_into(model).eval()
