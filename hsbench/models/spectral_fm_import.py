"""Weights into a :class:`SpectralFM`: zoo artifacts, hsbench safetensors files and HyperSL checkpoints.

HyperSL checkpoints (the model the 2026 cross-domain study used) are torch files holding ``{"model": state_dict}``,
keys possibly prefixed ``module.`` (saved from DataParallel). Their encoder submodules carry the names this
package's :class:`SpectralFM` uses, so the mapping is by name after stripping the prefix; what the encoder does not
need (the decoder's ``corss_attn``, ``decoder_blocks``, ``norm1``, ``norm2``, ``decoder_layer`` and the
placeholder ``pe`` buffer) is listed as ignored, and every other unmatched key is reported, never silently dropped.
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
from hsbench.zoo import Artifact, read_weights_file

__all__ = [
    "ImportReport", "strip_prefixes", "load_matching", "load_weights_file", "fm_from_artifact", "MODEL_CONFIG_KEY",
]

log = logging.getLogger("hsbench")

MODEL_CONFIG_KEY = "model_config"
"""Metadata entry (zoo metadata, safetensors header) holding :meth:`SpectralFMConfig.to_dict`."""
HYPERSL_IGNORED = ("pe", "corss_attn.", "cross_attn.", "decoder_blocks.", "decoder_layer.", "norm1.", "norm2.")
"""HyperSL keys inference does not use: the reconstruction decoder and a zero placeholder buffer."""
_CORE_KEYS = ("global_token", "embedding_layer_4.0.weight", "transformer_encoder_layer.attn.qkv.weight")


@dataclass
class ImportReport:
    """How a checkpoint's keys met the model's.

    Attributes:
        loaded: model keys set from the checkpoint.
        missing: model keys the checkpoint does not have (left at their initial values).
        mismatched: ``key: checkpoint shape vs model shape`` (left at their initial values).
        unexpected: checkpoint keys the model has no place for (and that are not known decoder parts).
        ignored: known decoder / placeholder keys, skipped on purpose.
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def unmatched(self) -> list[str]:
        """Everything that did not line up (missing, mismatched, unexpected)."""
        return [*self.missing, *self.mismatched, *self.unexpected]

    def summary(self) -> str:
        return (
            f"{len(self.loaded)} tensors loaded, {len(self.missing)} missing, {len(self.mismatched)} with other "
            f"shapes, {len(self.unexpected)} unexpected, {len(self.ignored)} decoder keys ignored"
        )


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
    path: Path, config: SpectralFMConfig | None = None, *, trusted: bool = False
) -> tuple[SpectralFM, ImportReport, str]:
    """A :class:`SpectralFM` with the weights of a user file.

    hsbench safetensors files carry their model config and load strictly. Other files (HyperSL torch checkpoints)
    are mapped by name onto ``config`` (default: the ``small`` size) run with HyperSL's last-block form.

    Returns:
        The model (eval mode), the import report (also logged) and the checkpoint hash that caches key on (file
        bytes plus the model config, since one file mapped onto two configs gives two models).
    """
    weights = read_weights_file(path, trusted=trusted)
    if MODEL_CONFIG_KEY in weights.metadata:
        config = SpectralFMConfig.from_dict(weights.metadata[MODEL_CONFIG_KEY])
    else:
        base = config or SIZES["small"]
        config = SpectralFMConfig.from_dict({**base.to_dict(), "final_block": "hypersl"})
    state = strip_prefixes(weights.state_dict)
    model = SpectralFM(config)
    report = load_matching(model, state, ignore=HYPERSL_IGNORED)
    if not all(key in report.loaded for key in _CORE_KEYS):
        raise ConfigError(f"weights file {path} does not fit the spectral FM {config.to_dict()}: "
                          f"{_checkpoint_shape_hint(state)}")
    level = logging.WARNING if report.unmatched else logging.INFO
    log.log(level, "spectral FM weights from %s: %s", path, report.summary())
    for key in report.unmatched:
        log.log(level, "  unmatched: %s", key)
    checkpoint_hash = config_hash({"file_sha256": weights.sha256, MODEL_CONFIG_KEY: config.to_dict()}, 64)
    return model.eval(), report, checkpoint_hash


def fm_from_artifact(artifact: Artifact) -> SpectralFM:
    """The model stored in a zoo artifact (strict: a zoo artifact always matches its own config)."""
    model = SpectralFM(SpectralFMConfig.from_dict(artifact.metadata[MODEL_CONFIG_KEY]))
    model.load_state_dict(artifact.state_dict())
    return model.eval()
