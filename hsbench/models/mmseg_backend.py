"""Optional mmsegmentation backend: any mmseg config (plus checkpoint) as an RGB network for ``cross_modality``.

mmsegmentation and mmcv are imported lazily, only when a network is built, so hsbench works without them; a
missing install fails with the command that installs it. The config file is data: YAML or JSON is read safely
(:func:`hsbench.config_files.read_config_file`); a Python config, the usual mmseg form, runs code when read, so it is
refused unless ``backbone_options.config_trusted=true`` says the user trusts it (checked before mmseg is imported).
mmcv 2.1.0 has no wheel for this torch and compiles from source (about 11 minutes on two cores), which is why this
is an extra (``hsbench[mmseg]``) and not a dependency.

The segmentor runs in mmseg's ``tensor`` mode (backbone, neck, decode head: raw logits at the head's stride),
bilinearly up-sampled to the image. Input normalisation comes from the config's ``data_preprocessor`` (mmseg
states it on 0-255 images; hsbench images are in ``[0, 1]``). ``SyncBN`` becomes ``BN``: synchronised BatchNorm
needs a process group, and DDP runs here synchronise gradients, not statistics. The classifiers (``conv_seg`` of
the decode and auxiliary heads) are built for the target's classes and never loaded from the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from hsbench.config_files import read_config_file
from hsbench.errors import ConfigError
from hsbench.models.rgb_backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageNormalization,
    RGBBackboneSpec,
    WeightReport,
    load_matching,
    register_rgb_backbone,
)

__all__ = ["MMSEG_INSTALL_HINT", "require_mmseg", "MMSegSegmenter", "build_mmseg_segmentor", "CLASSIFIER_PREFIXES"]

MMSEG_INSTALL_HINT = (
    "pip install 'hsbench[mmseg]' (mmcv 2.1.0 compiles from source: first pip install 'setuptools<70' wheel ninja, "
    "then pip install --no-build-isolation mmcv==2.1.0)"
)
CLASSIFIER_PREFIXES = ("segmentor.decode_head.conv_seg.", "segmentor.auxiliary_head.conv_seg.")
TRUST_OPTION = "backbone_options.config_trusted=true"
"""What a user sets to let hsbench read (and so run) a Python mmseg config."""


def require_mmseg() -> Any:
    """The ``mmseg`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import mmcv  # noqa: F401
        import mmseg
        from mmseg.utils import register_all_modules
    except (ImportError, AssertionError) as exc:  # mmseg asserts compatible mmcv / mmengine versions on import
        raise ConfigError(f"the mmseg backend needs mmsegmentation and mmcv ({exc}): {MMSEG_INSTALL_HINT}") from None
    register_all_modules(init_default_scope=False)
    return mmseg


def _config_dicts(node: Any) -> Iterator[dict]:
    """Every dict of a config tree, parents before children; a caller may edit a dict before its children are read."""
    if isinstance(node, dict):
        yield node
        children: Iterable[Any] = list(node.values())
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return
    for child in children:
        yield from _config_dicts(child)


def _replace_sync_bn(model_cfg: Any) -> None:
    """Every ``SyncBN`` norm config becomes ``BN``, in place."""
    for node in _config_dicts(model_cfg):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"


def _set_num_classes(model_cfg: Any, num_classes: int) -> None:
    for key in ("decode_head", "auxiliary_head"):
        heads = model_cfg.get(key)
        for head in heads if isinstance(heads, list) else [heads] if heads else []:
            head["num_classes"] = num_classes


def _pretrained_sources(node: Any) -> list[str]:
    """Where the config's ``pretrained`` keys and ``init_cfg=dict(type='Pretrained')`` entries load weights from."""
    sources: list[str] = []
    if isinstance(node, dict):
        if node.get("pretrained"):
            sources.append(str(node["pretrained"]))
        inits = node.get("init_cfg")
        for init in inits if isinstance(inits, list) else [inits]:
            if isinstance(init, dict) and init.get("type") == "Pretrained":
                sources.append(str(init.get("checkpoint")))
        for key, value in node.items():
            if key != "init_cfg":
                sources += _pretrained_sources(value)
    elif isinstance(node, list):
        for value in node:
            sources += _pretrained_sources(value)
    return sources


def _drop_pretrained_init(node: Any) -> None:
    """Remove ``pretrained`` keys and ``Pretrained`` init entries, in place: the checkpoint given replaces them.

    Published mmseg configs name ImageNet backbone weights (``pretrained='open-mmlab://resnet50_v1c'``); building
    such a segmentor would download them only to overwrite them with the checkpoint, and fails offline.
    """
    if isinstance(node, dict):
        if "pretrained" in node:
            node["pretrained"] = None
        inits = node.get("init_cfg")
        if isinstance(inits, dict) and inits.get("type") == "Pretrained":
            node["init_cfg"] = None
        elif isinstance(inits, list):
            node["init_cfg"] = [i for i in inits if not (isinstance(i, dict) and i.get("type") == "Pretrained")]
        for key, value in node.items():
            if key != "init_cfg":
                _drop_pretrained_init(value)
    elif isinstance(node, list):
        for value in node:
            _drop_pretrained_init(value)


def _read_config(config: str | Path, trusted: bool) -> Any:
    """The config file as an mmengine ``Config``; a Python file only when ``trusted`` (reading it runs it)."""
    from mmengine.config import Config

    path = Path(config).expanduser()
    if not path.is_file():
        raise ConfigError(f"mmseg config {path.resolve()} does not exist")
    raw = read_config_file(path, what="mmseg config", trust_code=trusted, trust_flag=TRUST_OPTION)
    if "_base_" in raw:  # only mmengine's Python reader resolves bases; a data config must be whole
        raise ConfigError(f"mmseg config {path} inherits from _base_ files, which hsbench resolves only in a Python "
                          f"config ({TRUST_OPTION}); merge the bases into this file")
    if not isinstance(raw.get("model"), dict):
        raise ConfigError(f"mmseg config {path} has no 'model' mapping")
    return Config(raw)


def _model_config(
    config: str | Path, num_classes: int, trusted: bool = False
) -> tuple[Any, tuple[float, ...], tuple[float, ...]]:
    """The config's ``model`` for ``num_classes`` on CPU-friendly norms, and its input mean / std on ``[0, 1]``."""
    model_cfg = _read_config(config, trusted).model
    preprocessor = model_cfg.pop("data_preprocessor", None) or {}
    mean = tuple(v / 255 for v in preprocessor.get("mean", [255 * m for m in IMAGENET_MEAN]))
    std = tuple(v / 255 for v in preprocessor.get("std", [255 * s for s in IMAGENET_STD]))
    _replace_sync_bn(model_cfg)
    _set_num_classes(model_cfg, num_classes)
    return model_cfg, mean, std


class MMSegSegmenter(nn.Module):
    """An mmseg segmentor on images ``(N, 3, H, W)`` in ``[0, 1]``, returning logits at the image size."""

    def __init__(self, segmentor: nn.Module, *, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.input_layer = ImageNormalization(mean, std)
        self.segmentor = segmentor

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.segmentor(self.input_layer(image), mode="tensor")
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)


def build_mmseg_segmentor(
    config: str | Path,
    num_classes: int,
    *,
    checkpoint: str | Path | None = None,
    trusted: bool = False,
    config_trusted: bool = False,
) -> tuple[MMSegSegmenter, WeightReport | None]:
    """Build the segmentor of an mmseg config for ``num_classes``, loading ``checkpoint`` except its classifiers.

    Args:
        trusted: the checkpoint may be unpickled (``weights_trusted``).
        config_trusted: a Python config file may be read, which runs it (``backbone_options.config_trusted``).

    Returns:
        The network and, when a checkpoint was given, what loading it did.
    """
    model_cfg, mean, std = _model_config(config, num_classes, config_trusted)  # refusals before mmseg is imported
    require_mmseg()
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS as MMSEG_MODELS

    if checkpoint is not None:
        _drop_pretrained_init(model_cfg)
    sources = _pretrained_sources(model_cfg)
    with DefaultScope.overwrite_default_scope("mmseg"):
        segmentor = MMSEG_MODELS.build(model_cfg)
        try:
            segmentor.init_weights()
        except Exception as exc:  # noqa: BLE001 - mmengine raises whatever its loaders raise (URLError, OSError...)
            if not sources:
                raise
            raise ConfigError(
                f"mmseg config {config} initialises from {', '.join(sources)}, which could not be loaded "
                f"({type(exc).__name__}: {exc}); hsbench runs offline: pass weights=<checkpoint of this config> "
                "(its pretrained entries are then ignored) or point them at a local file"
            ) from None
    network = MMSegSegmenter(segmentor, mean=mean, std=std)
    if checkpoint is None:
        return network, None
    from hsbench.models.rgb_weights import read_checkpoint

    state = {f"segmentor.{k}": v for k, v in read_checkpoint(checkpoint, trusted=trusted).items()}
    return network, load_matching(network, state, skip=CLASSIFIER_PREFIXES, source=str(checkpoint), layout="mmseg")


def _config_option(options: dict[str, Any]) -> str:
    if not options.get("config"):
        raise ConfigError("backbone mmseg needs backbone_options.config=<path of an mmsegmentation config file> (a "
                          f"Python config also needs {TRUST_OPTION})")
    return str(options["config"])


def _build(num_classes: int, options: dict[str, Any]) -> nn.Module:
    return build_mmseg_segmentor(_config_option(options), num_classes,
                                 config_trusted=bool(options.get("config_trusted")))[0]


def _from_weights(
    weights: str, num_classes: int, options: dict[str, Any], trusted: bool
) -> tuple[nn.Module, WeightReport]:
    network, report = build_mmseg_segmentor(_config_option(options), num_classes, checkpoint=weights, trusted=trusted,
                                            config_trusted=bool(options.get("config_trusted")))
    assert report is not None
    return network, report


register_rgb_backbone(RGBBackboneSpec(
    name="mmseg",
    description="any mmsegmentation config + checkpoint (optional backend: pip install 'hsbench[mmseg]')",
    build=_build,
    from_weights=_from_weights,
    classifier=CLASSIFIER_PREFIXES,
    default_options={"config": None, "config_trusted": False},
    weights_help="an mmseg checkpoint (.pth with 'state_dict') matching backbone_options.config",
))
