"""Reading RGB weight files and mapping their key layouts onto ``deeplabv3plus_mnv2`` / ``_r50`` / ``_r101``.

Layouts (key-name facts of the public projects; no code of theirs is used):

* ``torchvision_mobilenet_v2``: ``features.0`` (stem conv, BN) to ``features.17`` (inverted residual blocks,
  ``conv.N``), ``features.18`` (1x1 conv to 1280) and ``classifier.1`` (ImageNet linear layer). Only the
  encoder maps; ``features.18`` and ``classifier.1`` are unused.
* ``vainf_deeplabv3plus`` (VainF/DeepLabV3Plus-Pytorch, ``network/modeling.py``, ``_deeplab.py``): checkpoints
  are ``{"model_state": state_dict, "optimizer_state": ..., ...}``; the MobileNetV2 is split into
  ``backbone.low_level_features`` (= ``features[0:4]``) and ``backbone.high_level_features`` (= ``features[4:18]``);
  the head is ``classifier.project`` (48-channel low-level projection), ``classifier.aspp.convs.0-3`` (1x1 and
  three atrous branches), ``classifier.aspp.convs.4`` (image pooling: conv without bias, BN),
  ``classifier.aspp.project``, ``classifier.classifier.0/1`` (3x3 fusion conv, BN on ``cat([low, aspp])``) and
  ``classifier.classifier.3`` (the 1x1 classifier).
* ``torchvision_resnet``: ``conv1``, ``bn1``, ``layer1..4`` (``Bottleneck`` blocks: ``conv1..3``, ``bn1..3``,
  ``downsample.0/1``) and ``fc`` (ImageNet linear layer, unused); hsbench's ResNet encoder has the same names.
* ``vainf_deeplabv3plus`` with a ResNet (``deeplabv3plus_resnet50/101``): the backbone is torchvision's ResNet
  under ``backbone.`` (no ``fc``), the head as above with 2048 / 256 input channels.
* ``hsbench``: this project's own names (zoo artifacts, files saved from the network).

Mapping VainF onto hsbench's DeepLabV3+ needs two exact transformations besides renaming: the image-pooling BN is
folded into a biased 1x1 conv (hsbench's pooling branch has no BN: on a 1x1 map it breaks batch size 1), which is
exact in eval mode; and the fusion conv's input channels are reordered (hsbench concatenates ``[aspp, low]``).
One difference remains: VainF's stem convolution is unpadded, hsbench's is padded by one pixel, which shifts the
stem's sampling grid by one input pixel (no weights change).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hsbench.errors import ConfigError, DataError
from hsbench.models.mobilenetv2 import LOW_LEVEL_END
from hsbench.models.resnet import RESNET_STAGES
from hsbench.zoo import load_torch_checkpoint

__all__ = [
    "read_checkpoint", "WeightLayout", "MNV2_LAYOUTS", "resnet_layouts", "detect_layout", "CHECKPOINT_CONTAINERS",
]

CHECKPOINT_CONTAINERS = ("model_state", "state_dict", "model")
"""Keys under which checkpoints nest their state dict: VainF, mmengine / Lightning, generic."""
BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default, used by VainF's BatchNorm layers


def read_checkpoint(weights: str | Path, *, trusted: bool = False) -> dict[str, torch.Tensor]:
    """The state dict of a ``.safetensors`` file or a torch checkpoint (unwrapping container keys).

    Torch files load with ``weights_only`` unless ``trusted``; a missing file fails with its expected path.
    """
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights file {path.resolve()} does not exist (put the file there or fix `weights`)")
    if path.suffix.lower() == ".safetensors":
        import safetensors.torch

        try:
            return safetensors.torch.load_file(str(path))
        except Exception as exc:  # SafetensorError for a truncated or corrupt file
            raise DataError(f"weights file {path} is truncated or corrupt: {type(exc).__name__}: {exc}") from None
    checkpoint: Any = load_torch_checkpoint(path, trusted=trusted)
    while isinstance(checkpoint, dict):
        inner = next((checkpoint[k] for k in CHECKPOINT_CONTAINERS if isinstance(checkpoint.get(k), dict)), None)
        if inner is None:
            break
        checkpoint = inner
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"{path} holds no state dict (a dict of tensors, or one under {CHECKPOINT_CONTAINERS})")
    # DataParallel / DDP checkpoints prefix every name with "module.".
    return {k.removeprefix("module."): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


@dataclass(frozen=True)
class WeightLayout:
    """A key layout: how to recognise it, rename it to hsbench's names, which build options it fixes, and what it
    is known not to cover (network prefixes left random, weight prefixes unused), which is no partial load."""

    name: str
    matches: Callable[[set[str]], bool]
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    implied_options: Callable[[dict[str, torch.Tensor]], dict[str, Any]]
    expected_random: tuple[str, ...] = ()
    expected_unused: tuple[str, ...] = ()


def _rename(state: dict[str, torch.Tensor], rules: list[tuple[str, Callable[[re.Match], str]]]) -> dict:
    """Apply the first matching regex rule to every name; names no rule matches are kept (and reported unused)."""
    out = {}
    for key, value in state.items():
        for pattern, replace in rules:
            match = re.fullmatch(pattern, key)
            if match:
                key = replace(match)
                break
        out[key] = value
    return out


def _hsbench_options(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    options: dict[str, Any] = {"decoder": "hsbench" if any(k.startswith("decoder.fuse.1.") for k in state) else "vainf"}
    if "aspp.project.0.0.weight" in state:
        options["aspp_channels"] = int(state["aspp.project.0.0.weight"].shape[0])
    return options


_TORCHVISION_RULES = [
    (r"features\.(\d+)\.(.+)", lambda m: f"encoder.features.{m[1]}.{m[2]}" if int(m[1]) <= 17 else m[0]),
]

_VAINF_HEAD_RULES = [
    (r"classifier\.project\.([01])\.(.+)", lambda m: f"decoder.low_level_projection.{m[1]}.{m[2]}"),
    (r"classifier\.aspp\.convs\.([0-3])\.(.+)", lambda m: f"aspp.branches.{m[1]}.{m[2]}"),
    (r"classifier\.aspp\.project\.([01])\.(.+)", lambda m: f"aspp.project.0.{m[1]}.{m[2]}"),
    (r"classifier\.classifier\.([01])\.(.+)", lambda m: f"decoder.fuse.0.{m[1]}.{m[2]}"),
    (r"classifier\.classifier\.3\.(.+)", lambda m: f"classifier.{m[1]}"),
]
_VAINF_RULES = [
    (r"backbone\.low_level_features\.(\d+)\.(.+)", lambda m: f"encoder.features.{m[1]}.{m[2]}"),
    (r"backbone\.high_level_features\.(\d+)\.(.+)", lambda m: f"encoder.features.{int(m[1]) + LOW_LEVEL_END}.{m[2]}"),
    *_VAINF_HEAD_RULES,
]
_VAINF_RESNET_RULES = [
    (r"backbone\.((?:conv1|bn1|layer[1-4])\..+)", lambda m: f"encoder.{m[1]}"),
    *_VAINF_HEAD_RULES,
]


def _fold_pooling_bn(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """VainF's pooling branch (conv without bias, BN, ReLU) as one biased conv: exact for BN in eval mode."""
    prefix = "classifier.aspp.convs.4."
    weight = state.pop(prefix + "1.weight")
    gamma, beta = state.pop(prefix + "2.weight"), state.pop(prefix + "2.bias")
    mean, var = state.pop(prefix + "2.running_mean"), state.pop(prefix + "2.running_var")
    state.pop(prefix + "2.num_batches_tracked", None)
    scale = gamma / torch.sqrt(var + BN_EPS)
    state["aspp.branches.4.conv.weight"] = weight * scale[:, None, None, None]
    state["aspp.branches.4.conv.bias"] = beta - mean * scale
    return state


def _vainf_head(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """VainF's head tensors made exact for hsbench's: pooling BN folded, fusion input channels reordered."""
    state = _fold_pooling_bn(dict(state))
    fuse = state.get("classifier.classifier.0.weight")
    if fuse is not None:  # VainF fuses cat([low (48), aspp]); hsbench fuses cat([aspp, low (48)])
        low = state["classifier.project.0.weight"].shape[0]
        state["classifier.classifier.0.weight"] = torch.cat([fuse[:, low:], fuse[:, :low]], dim=1)
    return state


def _vainf_convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    foreign = sorted(k for k in state if k.startswith("backbone.") and "_level_features." not in k)
    if foreign:
        resnet = " (a ResNet: use deeplabv3plus_r50 / deeplabv3plus_r101)" if "backbone.layer1." in foreign[0] else ""
        raise ConfigError(
            f"this VainF checkpoint has a backbone other than MobileNetV2 (e.g. {foreign[0]}){resnet}; "
            "deeplabv3plus_mnv2 loads only deeplabv3plus_mobilenet checkpoints"
        )
    return _rename(_vainf_head(state), _VAINF_RULES)


MNV2_LAYOUTS: tuple[WeightLayout, ...] = (
    WeightLayout(
        "hsbench", lambda keys: "encoder.features.0.0.weight" in keys, lambda s: dict(s), _hsbench_options
    ),
    WeightLayout(
        "vainf_deeplabv3plus",
        lambda keys: any(k.startswith(("backbone.low_level_features.", "classifier.aspp.convs.")) for k in keys),
        _vainf_convert,
        _hsbench_options,
    ),
    WeightLayout(
        "torchvision_mobilenet_v2",
        lambda keys: "features.0.0.weight" in keys,
        lambda s: _rename(s, _TORCHVISION_RULES),
        lambda s: {},
        expected_random=("aspp.", "decoder."),  # an ImageNet classifier network has no segmentation head
        expected_unused=("features.18.", "classifier.1."),
    ),
)
"""Layouts ``deeplabv3plus_mnv2`` recognises, tried in order."""


def _resnet_depth_check(depth: int, prefix: str) -> Callable[[dict[str, torch.Tensor]], None]:
    """Refuse a ResNet of another depth (told apart by ``layer3``'s block count) with the backbone to use."""
    blocks = {stages[2]: d for d, stages in RESNET_STAGES.items()}

    def check(state: dict[str, torch.Tensor]) -> None:
        found = {int(m[1]) for k in state if (m := re.match(re.escape(prefix) + r"layer3\.(\d+)\.", k))}
        if found and (n := max(found) + 1) != RESNET_STAGES[depth][2]:
            other = f"deeplabv3plus_r{blocks[n]}" if n in blocks else "no registered backbone"
            raise ConfigError(
                f"these weights are a ResNet with {n} layer3 blocks, not ResNet-{depth} "
                f"({RESNET_STAGES[depth][2]}); they fit {other}"
            )

    return check


def _resnet_options(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    options: dict[str, Any] = {"decoder": "hsbench" if any(k.startswith("decoder.fuse.1.") for k in state) else "vainf"}
    if "aspp.project.0.0.weight" in state:
        options["aspp_channels"] = int(state["aspp.project.0.0.weight"].shape[0])
    return options


def resnet_layouts(depth: int) -> tuple[WeightLayout, ...]:
    """Layouts ``deeplabv3plus_r{depth}`` recognises, tried in order; a ResNet of another depth is refused."""
    vainf_check, plain_check = _resnet_depth_check(depth, "backbone."), _resnet_depth_check(depth, "")
    encoder_check = _resnet_depth_check(depth, "encoder.")

    def vainf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if any(k.startswith("backbone.") and "_level_features." in k for k in state):
            raise ConfigError("this VainF checkpoint has a MobileNetV2 backbone; use backbone deeplabv3plus_mnv2")
        vainf_check(state)
        return _rename(_vainf_head(state), _VAINF_RESNET_RULES)

    def torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        plain_check(state)
        return {f"encoder.{k}" if k.startswith(("conv1.", "bn1.", "layer")) else k: v for k, v in state.items()}

    def own(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        encoder_check(state)
        return dict(state)

    return (
        WeightLayout("hsbench", lambda keys: "encoder.conv1.weight" in keys, own, _resnet_options),
        WeightLayout(
            "vainf_deeplabv3plus", lambda keys: any(k.startswith("classifier.aspp.convs.") for k in keys),
            vainf, _resnet_options,
        ),
        WeightLayout(
            "torchvision_resnet",
            lambda keys: {"conv1.weight", "layer1.0.conv1.weight"} <= keys,
            torchvision,
            lambda s: {},
            expected_random=("aspp.", "decoder."),  # an ImageNet classifier network has no segmentation head
            expected_unused=("fc.",),
        ),
    )


def detect_layout(state: dict[str, torch.Tensor], layouts: tuple[WeightLayout, ...], *, source: str) -> WeightLayout:
    keys = set(state)
    for layout in layouts:
        if layout.matches(keys):
            return layout
    example = ", ".join(sorted(keys)[:3]) or "(no tensors)"
    raise ConfigError(
        f"weights {source}: unrecognised key layout (first keys: {example}); "
        f"known layouts are {', '.join(layout.name for layout in layouts)}"
    )
