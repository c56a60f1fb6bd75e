"""DINOv2 and SegFormer through ``transformers``, loaded offline, as RGB networks for ``cross_modality``.

* ``dinov2``: ``Dinov2Model`` (a ViT with patch tokens) and a light decoder: the patch tokens of the last
  ``layers`` blocks (after the final LayerNorm), BatchNorm and a 1x1 convolution to class logits, bilinearly
  up-sampled to the image: the DINOv2 paper's "linear" (``layers=1``) and "+ms"-less "linear4" (``layers=4``)
  segmentation probes. Images are padded to a multiple of the patch size; position embeddings are interpolated by
  ``transformers`` for any size. Frozen or fine-tuned is the strategy's ``mode`` (``pt`` trains only the decoder).
* ``segformer``: ``SegformerForSemanticSegmentation`` as published (its all-MLP decoder, logits at stride 4),
  up-sampled to the image; ``decode_head.classifier`` is the classifier.

``weights`` is a folder written by ``save_pretrained`` or a Hugging Face model id that is already in the local
cache: loading always passes ``local_files_only=True``, so nothing is downloaded. Without weights the networks
are built from a small config (``TINY_*`` below, overridable through ``config``) for synthetic pretraining.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from hsbench.errors import ConfigError
from hsbench.models._padding import crop_to, pad_to_multiple
from hsbench.models.rgb_backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageNormalization,
    RGBBackboneSpec,
    WeightReport,
    register_rgb_backbone,
)

__all__ = ["Dinov2Segmenter", "SegformerSegmenter", "TINY_DINOV2", "TINY_SEGFORMER", "resolve_pretrained"]

TINY_DINOV2: dict[str, Any] = {
    "hidden_size": 96, "num_hidden_layers": 4, "num_attention_heads": 3, "intermediate_size": 384,
    "patch_size": 8, "image_size": 64,
}
"""Small enough to pretrain on a CPU in minutes (DINOv2 ViT-S/14 is 384 wide, 12 blocks)."""
TINY_SEGFORMER: dict[str, Any] = {
    "hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 2, 4, 8],
    "decoder_hidden_size": 64,
}
"""A quarter-width, single-block MiT (MiT-b0 is 32-64-160-256 wide, two blocks per stage)."""
SEGFORMER_STRIDE = 32
"""Total down-sampling of a MiT encoder (strides 4, 2, 2, 2)."""


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ConfigError("backbones dinov2 and segformer need transformers: pip install transformers") from None
    return transformers


def resolve_pretrained(weights: str) -> str:
    """A ``save_pretrained`` folder, or a model id to look up in the local Hugging Face cache only."""
    path = Path(weights).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path.resolve()} is not a transformers model folder: it has no config.json")
        return str(path)
    if weights.startswith((".", "/", "~")) or weights.count("/") != 1:
        raise ConfigError(f"weights folder {path.resolve()} does not exist (expected a save_pretrained folder there)")
    return weights


def _from_pretrained(cls: Any, weights: str, **kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    source = resolve_pretrained(weights)
    try:
        return cls.from_pretrained(source, local_files_only=True, output_loading_info=True, **kwargs)
    except OSError:
        from huggingface_hub import constants

        cached = Path(constants.HF_HUB_CACHE) / f"models--{weights.replace('/', '--')}"
        raise ConfigError(
            f"{weights} is not a local folder and not in the Hugging Face cache (expected {cached}); hsbench never "
            f"downloads weights: fetch them yourself (huggingface-cli download {weights}) or pass a folder"
        ) from None


def _input_statistics(weights: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``image_mean`` / ``image_std`` of the folder's image-processor config, else ImageNet's."""
    config = Path(weights).expanduser() / "preprocessor_config.json"
    if config.is_file():
        data = json.loads(config.read_text())
        return tuple(data.get("image_mean", IMAGENET_MEAN)), tuple(data.get("image_std", IMAGENET_STD))
    return IMAGENET_MEAN, IMAGENET_STD


def _report(weights: str, layout: str, network: nn.Module, prefix: str, info: dict[str, Any]) -> WeightReport:
    missing = sorted(f"{prefix}{k}" for k in info.get("missing_keys", ()))
    own = [k for k in network.state_dict() if k.startswith(prefix)]
    return WeightReport(weights, layout, len(own) - len(missing), missing, sorted(info.get("unexpected_keys", ())))


# ----------------------------------------------------------------------------------------------------- DINOv2
class Dinov2Segmenter(nn.Module):
    """DINOv2 patch tokens -> BatchNorm -> 1x1 conv -> bilinear up-sampling.

    Args:
        backbone: a ``transformers.Dinov2Model``.
        num_classes: output classes.
        layers: how many of the last blocks' patch tokens are concatenated.
        mean: input mean the backbone was trained with.
        std: input standard deviation.
    """

    def __init__(
        self, backbone: nn.Module, num_classes: int, *, layers: int = 1,
        mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if not 1 <= layers <= backbone.config.num_hidden_layers:
            raise ConfigError(f"dinov2 layers must be 1..{backbone.config.num_hidden_layers}, got {layers}")
        self.input_layer = ImageNormalization(mean, std)
        self.backbone, self.layers = backbone, layers
        width = backbone.config.hidden_size * layers
        self.classifier = nn.Sequential(nn.BatchNorm2d(width), nn.Conv2d(width, num_classes, kernel_size=1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, H, W)`` for images ``(N, 3, H, W)`` in ``[0, 1]``."""
        size, patch = image.shape[-2:], int(self.backbone.config.patch_size)
        x = self.input_layer(pad_to_multiple(image, patch))
        rows, cols = x.shape[-2] // patch, x.shape[-1] // patch
        out = self.backbone(pixel_values=x, output_hidden_states=self.layers > 1)
        states = (
            [out.last_hidden_state] if self.layers == 1
            else [self.backbone.layernorm(s) for s in out.hidden_states[-self.layers:]]
        )
        # Patch tokens come last, after the class token (and register tokens, where a model has them).
        tokens = torch.cat([s[:, -rows * cols:] for s in states], dim=-1)
        features = tokens.transpose(1, 2).reshape(x.shape[0], -1, rows, cols)
        logits = F.interpolate(self.classifier(features), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return crop_to(logits, size)


def _build_dinov2(num_classes: int, options: dict[str, Any]) -> nn.Module:
    transformers = _transformers()
    config = transformers.Dinov2Config(**{**TINY_DINOV2, **dict(options.get("config") or {})})
    return Dinov2Segmenter(transformers.Dinov2Model(config), num_classes, layers=int(options.get("layers", 1)))


def _dinov2_from_weights(
    weights: str, num_classes: int, options: dict[str, Any], trusted: bool
) -> tuple[nn.Module, WeightReport]:
    backbone, info = _from_pretrained(_transformers().Dinov2Model, weights)
    mean, std = _input_statistics(weights)
    network = Dinov2Segmenter(backbone, num_classes, layers=int(options.get("layers", 1)), mean=mean, std=std)
    return network, _report(weights, "transformers_dinov2", network, "backbone.", info)


register_rgb_backbone(RGBBackboneSpec(
    name="dinov2",
    description="DINOv2 ViT (transformers Dinov2Model) with a BatchNorm + 1x1 linear decoder on patch tokens",
    build=_build_dinov2,
    from_weights=_dinov2_from_weights,
    classifier=("classifier.",),
    default_options={"config": {}, "layers": 1},
    weights_help="a Dinov2Model save_pretrained folder, or a model id in the local Hugging Face cache "
    "(e.g. facebook/dinov2-small)",
))


# -------------------------------------------------------------------------------------------------- SegFormer
class SegformerSegmenter(nn.Module):
    """``SegformerForSemanticSegmentation`` on images in ``[0, 1]``, logits up-sampled to the image size."""

    def __init__(
        self, model: nn.Module, *, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
    ) -> None:
        super().__init__()
        self.input_layer = ImageNormalization(mean, std)
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, H, W)``; images are padded to a multiple of the encoder's total stride.

        Without the padding, the first stage's spatial-reduction convolution (kernel = reduction ratio, 8 in
        every published MiT) is larger than the feature map of small images or crops.
        """
        x = pad_to_multiple(image, SEGFORMER_STRIDE)
        logits = self.model(pixel_values=self.input_layer(x)).logits
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return crop_to(logits, image.shape[-2:])


def _build_segformer(num_classes: int, options: dict[str, Any]) -> nn.Module:
    transformers = _transformers()
    config = transformers.SegformerConfig(**{**TINY_SEGFORMER, **dict(options.get("config") or {})},
                                          num_labels=num_classes)
    return SegformerSegmenter(transformers.SegformerForSemanticSegmentation(config))


def _segformer_from_weights(
    weights: str, num_classes: int, options: dict[str, Any], trusted: bool
) -> tuple[nn.Module, WeightReport]:
    model, info = _from_pretrained(
        _transformers().SegformerForSemanticSegmentation, weights, num_labels=num_classes, ignore_mismatched_sizes=True
    )
    model.decode_head.classifier.reset_parameters()  # a fresh classifier for the target's classes, always
    mean, std = _input_statistics(weights)
    network = SegformerSegmenter(model, mean=mean, std=std)
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith("decode_head.classifier.")]
    info = {**info, "missing_keys": missing}
    return network, _report(weights, "transformers_segformer", network, "model.", info)


register_rgb_backbone(RGBBackboneSpec(
    name="segformer",
    description="SegFormer (transformers SegformerForSemanticSegmentation): MiT encoder, all-MLP decoder",
    build=_build_segformer,
    from_weights=_segformer_from_weights,
    classifier=("model.decode_head.classifier.",),
    default_options={"config": {}},
    weights_help="a SegformerForSemanticSegmentation (or MiT encoder) save_pretrained folder, or a model id in the "
    "local Hugging Face cache (e.g. nvidia/segformer-b0-finetuned-cityscapes-1024-1024)",
))
