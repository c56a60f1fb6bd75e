"""The optional mmsegmentation backend (``hsbench[mmseg]``).

Without mmsegmentation and a compiled mmcv the build tests skip (the reason says how to install them); the
error a user gets in that case is tested instead. The tests write a tiny mmseg config and checkpoint themselves; the
configs are Python, as published mmseg configs are, so every build passes ``config_trusted=True`` (the refusal
without it is tested, without mmseg, in test_trust_configs_names.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hsbench.errors import ConfigError
from hsbench.models.mmseg_backend import MMSEG_INSTALL_HINT, build_mmseg_segmentor
from hsbench.models.rgb_backbones import rgb_backbone

torch.set_num_threads(1)


def _mmseg_importable() -> bool:
    try:
        import mmcv  # noqa: F401
        import mmseg  # noqa: F401
    except (ImportError, AssertionError):
        return False
    return True


HAVE_MMSEG = _mmseg_importable()
needs_mmseg = pytest.mark.skipif(
    not HAVE_MMSEG, reason=f"mmsegmentation / mmcv not installed: {MMSEG_INSTALL_HINT} (tox -e mmseg does it)"
)

# A ResNet-18-V1c FCN at 1/8 width with an auxiliary head, SyncBN as in the published configs.
TINY_CONFIG = """
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8, num_stages=4, out_indices=(0, 1, 2, 3),
                  dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg, norm_eval=False, style='pytorch',
                  contract_dilation=True),
    decode_head=dict(type='FCNHead', in_channels=64, in_index=3, channels=16, num_convs=1, concat_input=False,
                     dropout_ratio=0.1, num_classes=19, norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(type='FCNHead', in_channels=32, in_index=2, channels=8, num_convs=1, concat_input=False,
                        dropout_ratio=0.1, num_classes=19, norm_cfg=norm_cfg, align_corners=False,
                        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
"""

# DeepLabV3+ (the HS3-Bench architecture) on the same backbone, as published configs write it: ImageNet weights named
# by ``pretrained``, which an offline machine cannot download.
TINY_DEEPLABV3PLUS = """
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    pretrained='open-mmlab://resnet18_v1c',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8, num_stages=4, out_indices=(0, 1, 2, 3),
                  dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg, norm_eval=False, style='pytorch',
                  contract_dilation=True),
    decode_head=dict(type='DepthwiseSeparableASPPHead', in_channels=64, in_index=3, channels=16, dilations=(1, 2, 3, 4),
                     c1_in_channels=8, c1_channels=8, dropout_ratio=0.1, num_classes=19, norm_cfg=norm_cfg,
                     align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
"""


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "fcn_r18-v1c-tiny_cityscapes.py"
    path.write_text(TINY_CONFIG)
    return path


def test_mmseg_backbone_is_registered_and_needs_a_config() -> None:
    spec = rgb_backbone("mmseg")
    assert spec.is_classifier("segmentor.decode_head.conv_seg.weight")
    with pytest.raises(ConfigError, match="backbone_options.config"):
        spec.build(5, {"config": None})


@pytest.mark.skipif(HAVE_MMSEG, reason="mmsegmentation is installed: the missing-install message cannot be seen")
def test_missing_mmseg_names_the_install_command(tiny_config: Path) -> None:
    with pytest.raises(ConfigError, match=r"pip install 'hsbench\[mmseg\]'"):
        build_mmseg_segmentor(tiny_config, 5, config_trusted=True)


@needs_mmseg
def test_config_and_checkpoint_build_a_trainable_segmentor(tmp_path: Path, tiny_config: Path) -> None:
    source, report = build_mmseg_segmentor(tiny_config, 19, config_trusted=True)
    assert report is None
    assert not any("SyncBatchNorm" in type(m).__name__ for m in source.modules())  # SyncBN became BN
    checkpoint = tmp_path / "fcn_tiny.pth"
    state = {k.removeprefix("segmentor."): v for k, v in source.state_dict().items()}
    torch.save({"meta": {"mmseg_version": "1.2.2"}, "state_dict": state}, checkpoint)

    network, report = build_mmseg_segmentor(tiny_config, 5, checkpoint=checkpoint, config_trusted=True)
    assert report is not None and report.initialised == []  # all but the two conv_seg classifiers loaded
    assert network.segmentor.decode_head.conv_seg.out_channels == 5
    torch.testing.assert_close(network.segmentor.backbone.stem[0].weight, source.segmentor.backbone.stem[0].weight)
    torch.testing.assert_close(network.input_layer.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]), atol=1e-3,
                               rtol=0)
    logits = network(torch.rand(2, 3, 37, 53))
    assert logits.shape == (2, 5, 37, 53)
    logits.mean().backward()
    assert network.segmentor.decode_head.conv_seg.weight.grad is not None


@needs_mmseg
def test_cross_modality_runs_an_mmseg_segmentor(tmp_path: Path, tiny_config: Path, tiny_registered, monkeypatch):
    from hsbench.runner import Runner, RunSpec

    monkeypatch.setenv("HSBENCH_HOME", str(tmp_path / "home"))
    source, _ = build_mmseg_segmentor(tiny_config, 19, config_trusted=True)
    checkpoint = tmp_path / "fcn_tiny.pth"
    torch.save({"state_dict": {k.removeprefix("segmentor."): v for k, v in source.state_dict().items()}}, checkpoint)
    options = {"backbone": "mmseg", "backbone_options": {"config": str(tiny_config), "config_trusted": True},
               "weights": str(checkpoint), "mode": "pt", "epochs": 2, "batch_size": 4, "lr": 0.05}
    outcome = Runner(tmp_path / "results", progress=False).run(
        RunSpec(tiny_registered["segmentation"], "cross_modality", "fraction=0.5", 0, options))
    assert outcome.status == "completed", outcome.error
    assert outcome.label == "cross_modality/mmseg/pt/prgb"


def _without_pretrained(config: str) -> str:
    return config.replace("    pretrained='open-mmlab://resnet18_v1c',\n", "")


@needs_mmseg
def test_deeplabv3plus_checkpoint_loads_offline_despite_pretrained_url(tmp_path: Path) -> None:
    offline = tmp_path / "deeplabv3plus_r18-d8_local.py"
    offline.write_text(_without_pretrained(TINY_DEEPLABV3PLUS))
    source, _ = build_mmseg_segmentor(offline, 19, config_trusted=True)
    checkpoint = tmp_path / "deeplabv3plus_tiny.pth"
    torch.save({"state_dict": {k.removeprefix("segmentor."): v for k, v in source.state_dict().items()}}, checkpoint)

    published = tmp_path / "deeplabv3plus_r18-d8_cityscapes.py"
    published.write_text(TINY_DEEPLABV3PLUS)
    network, report = build_mmseg_segmentor(published, 6, checkpoint=checkpoint,  # no download attempted
                                            config_trusted=True)
    assert report is not None and report.initialised == []
    torch.testing.assert_close(network.segmentor.decode_head.c1_bottleneck.conv.weight,
                               source.segmentor.decode_head.c1_bottleneck.conv.weight)
    assert network(torch.rand(2, 3, 40, 56)).shape == (2, 6, 40, 56)


@needs_mmseg
def test_unloadable_pretrained_entry_without_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "deeplabv3plus_missing_backbone.py"
    config.write_text(TINY_DEEPLABV3PLUS.replace("open-mmlab://resnet18_v1c", str(tmp_path / "resnet18_v1c.pth")))
    with pytest.raises(ConfigError, match=r"resnet18_v1c\.pth.*could not be loaded.*weights=<checkpoint"):
        build_mmseg_segmentor(config, 6, config_trusted=True)
