"""Strategy ``cross_modality``: bridge hyperspectral cubes into RGB-pretrained networks.

HS3-Bench's best numbers come from turning HSI into three channels and reusing RGB pretraining: DeepLabV3+ with an
ImageNet MobileNetV2 fine-tuned on pseudo-RGB (DL3+(BB)), or a Cityscapes-pretrained DeepLabV3+ frozen except the
classifier (DL3+(PT)); DINOv2 is the modern version of the same bet. The strategy composes three choices:

* ``adapter`` (:mod:`hsbench.adapters`): ``prgb``, ``cie``, ``pca3`` or ``learned``, fitted on labelled train
  pixels only;
* ``backbone`` (:data:`hsbench.models.rgb_backbones.RGB_BACKBONES`): ``deeplabv3plus_mnv2``,
  ``deeplabv3plus_r50`` / ``_r101``, ``dinov2``, ``segformer`` or ``mmseg``, with ``weights`` from a file / folder,
  or, when none are given, pretrained once on RGB renderings of the labelled ``synthetic_aerial`` source and kept in
  the zoo (:mod:`hsbench.pretraining.synthetic_rgb`); such runs are labelled ``+synthetic-rgb-pretraining``;
* ``mode``: ``bb`` fine-tunes everything; ``pt`` freezes everything but the classifier (the frozen part runs in eval
  mode: stored BatchNorm statistics, no dropout). A ``learned`` adapter is not part of the pretrained network and
  trains in both modes.

The classifier is always re-initialised for the target's classes. A weights file that loads only in part
(network tensors its layout should fill but it lacks, or tensors the network has no place for) is refused with
the keys listed unless ``strict=false``; a file whose layout covers only the encoder (an ImageNet MobileNetV2) is
not partial. A network whose non-classifier weights the file does not cover is refused in ``pt`` mode (it would
freeze random layers) and reported in ``bb`` mode. Zoo artifacts are hsbench's own and always load strictly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn

import hsbench.finetune  # noqa: F401  (registers the "adamw_lr_scaled" optimizer)
from hsbench.adapters import Adapter, build_adapter
from hsbench.data.dataset import Sample
from hsbench.data.transforms import collect_labelled_pixels
from hsbench.errors import ConfigError, DataError
from hsbench.learners import TRAINING_DEFAULTS, DenseNetworkLearner, crop_context
from hsbench.models.rgb_backbones import RGBBackboneSpec, WeightReport, load_matching, rgb_backbone
from hsbench.options import merge_options
from hsbench.pretraining.synthetic_rgb import SyntheticRGBRecipe, pretrained_rgb_network
from hsbench.registry import STRATEGIES
from hsbench.saved_model import ModelState
from hsbench.strategy import RunContext, SplitView, Strategy, StrategySpec
from hsbench.zoo import Zoo, check_user_file

__all__ = ["CrossModality", "MODES", "SYNTHETIC_PRETRAINING", "AdaptedNetwork"]

SYNTHETIC_PRETRAINING = "synthetic RGB pretraining"
"""What runs without user weights report next to the strategy name."""
RENDERING_OF_ADAPTER = {"prgb": "prgb", "cie": "cie", "pca3": "pca3", "learned": "prgb"}
"""How the synthetic source is rendered for each adapter (``learned`` starts as ``prgb``)."""

# Smallest runs whose pretraining still teaches the frozen layers something (pt needs informative features).
_SMOKE = {
    "pretrain_source_options": {"num_images": 10, "height": 32, "width": 32},
    "pretrain_epochs": 20, "pretrain_batch_size": 4, "pretrain_lr": 0.005,
    "backbone_options": {"width_mult": 0.25, "aspp_channels": 16},
    "epochs": 8, "lr": 0.005, "batch_size": 4,
}


def _train_everything(network: nn.Module, spec: RGBBackboneSpec) -> None:
    for parameter in network.parameters():
        parameter.requires_grad_(True)


def _train_classifier_only(network: nn.Module, spec: RGBBackboneSpec) -> None:
    for name, parameter in network.named_parameters():
        parameter.requires_grad_(spec.is_classifier(name))


MODES = {"bb": _train_everything, "pt": _train_classifier_only}
"""Freezing by mode: HS3-Bench's BB (fine-tune the whole backbone) and PT (train the classifier only)."""


class AdaptedNetwork(nn.Module):
    """The adapter's trainable part (identity for fixed adapters) in front of the RGB network.

    In training mode, every sub-network whose parameters are all frozen stays in eval mode: frozen layers must
    compute the features they were pretrained to compute, with their stored BatchNorm statistics (not the few
    target images' batch statistics) and without dropout.
    """

    def __init__(self, adapter: nn.Module, network: nn.Module) -> None:
        super().__init__()
        self.adapter, self.network = adapter, network

    def train(self, mode: bool = True) -> AdaptedNetwork:
        super().train(mode)
        for module in self.network.modules():
            parameters = list(module.parameters())
            if parameters and not any(p.requires_grad for p in parameters):
                module.eval()
        return self

    def forward(self, cube: torch.Tensor) -> torch.Tensor:
        return self.network(self.adapter(cube))


@STRATEGIES.register_module(name="cross_modality")
class CrossModality(Strategy):
    """HSI -> three channels -> an RGB-pretrained network, fine-tuned (bb) or frozen but its classifier (pt)."""

    name: ClassVar[str] = "cross_modality"
    spec: ClassVar[StrategySpec] = StrategySpec(
        description="HSI to 3 channels (prgb / cie / pca3 / learned) into an RGB-pretrained DeepLabV3+ MobileNetV2, "
        "DINOv2, SegFormer or mmseg network (HS3-Bench DL3+(BB) / DL3+(PT)); synthetic RGB pretraining by default"
    )
    defaults: ClassVar[dict[str, Any]] = {
        "recipe": "hsbench",  # hsbench | hs3bench | cross_domain_2026 (hsbench.recipes; expanded under user options)
        "backbone": "deeplabv3plus_mnv2",  # deeplabv3plus_mnv2 | _r50 | _r101 | dinov2 | segformer | mmseg
        "backbone_options": {},
        "adapter": "prgb",  # prgb | cie | pca3 | learned
        "adapter_options": {},
        "mode": "bb",  # bb: fine-tune everything | pt: train the classifier only
        "weights": None,  # None: synthetic RGB pretraining (zoo); else a weights file / folder / cached HF model id
        "weights_trusted": False,  # allow torch.load to unpickle non-tensor objects of a trusted checkpoint
        "weights_sha256": None,  # the weights file's expected SHA-256; another file is refused
        "strict": True,  # false: run with a weights file that loads only in part (the rest stays random)
        "backbone_lr_scale": 1.0,  # bb: pretrained parameters learn at this multiple of lr
        # Synthetic RGB pretraining (only when weights is None); once per recipe, then reused from the zoo.
        "pretrain_source": "synthetic_aerial",
        "pretrain_source_options": {},
        "pretrain_epochs": 30,
        "pretrain_batch_size": 8,
        "pretrain_lr": 1e-3,
        "pretrain_seed": 0,
        **TRAINING_DEFAULTS,  # the in_domain training recipe (hsbench.learners)
        "max_fit_pixels": 200_000,
    }
    smoke_options: ClassVar[list[dict[str, Any]]] = [
        {**_SMOKE, "adapter": "prgb", "mode": "bb"},
        {**_SMOKE, "adapter": "cie", "mode": "pt", "lr": 0.05},  # a linear classifier alone takes a larger step
        {**_SMOKE, "adapter": "learned", "mode": "bb"},
    ]

    def __init__(self, cfg: dict[str, Any], ctx: RunContext, card) -> None:
        super().__init__(cfg, ctx, card)
        if cfg["mode"] not in MODES:
            raise ConfigError(f"cross_modality mode={cfg['mode']!r}: valid modes are {', '.join(MODES)}")
        self.backbone = rgb_backbone(str(cfg["backbone"]))
        self.backbone_options = merge_options(
            self.backbone.default_options, dict(cfg["backbone_options"]), owner=f"backbone {self.backbone.name!r}"
        )
        self.adapter: Adapter = build_adapter(str(cfg["adapter"]), card, dict(cfg["adapter_options"]))
        self.learner = DenseNetworkLearner(cfg, ctx, card)  # trains the network this strategy builds

    @classmethod
    def label(cls, options: dict[str, Any]) -> str:
        base = f"{cls.name}/{options['backbone']}/{options['mode']}/{options['adapter']}"
        return base if options["weights"] else f"{base}+synthetic-rgb-pretraining"

    @classmethod
    def spatial_context(cls, options: Mapping[str, Any]) -> int:
        """Half the training crop (32 px at the scene default of 64): every backbone is a dense network on crops."""
        return crop_context(options["crop_size"])

    def recipe(self) -> SyntheticRGBRecipe:
        """The zoo recipe of the synthetic RGB pretraining these options ask for."""
        cfg = self.cfg
        return SyntheticRGBRecipe(
            backbone=self.backbone.name, backbone_options=self.backbone_options,
            rendering=RENDERING_OF_ADAPTER[str(cfg["adapter"])], source=str(cfg["pretrain_source"]),
            source_options=dict(cfg["pretrain_source_options"]), epochs=int(cfg["pretrain_epochs"]),
            batch_size=int(cfg["pretrain_batch_size"]), lr=float(cfg["pretrain_lr"]), seed=int(cfg["pretrain_seed"]),
        )

    def _from_weights(self) -> tuple[nn.Module, WeightReport, dict[str, Any]]:
        weights = str(self.cfg["weights"])
        facts: dict[str, Any] = {"pretraining": f"weights {weights}"}
        path = Path(weights).expanduser()
        if path.is_file():
            facts["weights_sha256"] = check_user_file(path, self.cfg["weights_sha256"])
        elif self.cfg["weights_sha256"]:
            raise ConfigError(f"weights_sha256 checks a weights file, but {weights} is not a file")
        network, report = self.backbone.from_weights(
            weights, self.card.num_classes, self.backbone_options, bool(self.cfg["weights_trusted"])
        )
        if report.partial and self.cfg["strict"]:
            raise ConfigError(f"weights {weights} ({report.layout}) load only in part: {report.listing()}; "
                              "set strict=false to train with those layers left random")
        return network, report, facts

    def _from_zoo(self) -> tuple[nn.Module, WeightReport, dict[str, Any]]:
        zoo = self.ctx.zoo if self.ctx.zoo is not None else Zoo()
        artifact = pretrained_rgb_network(zoo, self.recipe(), device=self.ctx.device, progress=self.ctx.progress,
                                          logger=self.ctx.logger)
        network = self.backbone.build(self.card.num_classes, self.backbone_options)
        report = load_matching(network, artifact.state_dict(), skip=self.backbone.classifier,
                               source=str(artifact.path), layout="hsbench_zoo")
        if report.initialised or report.unused:  # hsbench's own artifact: anything but an exact fit is an error
            raise DataError(f"zoo artifact {artifact.path} does not fit the {self.backbone.name} network: "
                            f"{report.listing()}")
        return network, report, {
            "pretraining": f"{SYNTHETIC_PRETRAINING} ({artifact.metadata['source']}, "
                           f"{artifact.metadata['rendering']['adapter']} rendering)",
            "pretraining_artifact": artifact.key,
            "pretraining_weights_sha256": artifact.checkpoint_hash,  # verified when the zoo opened it
            "pretraining_source_val_miou": artifact.metadata["source_val_miou"],
        }

    def pretrained_network(self) -> tuple[nn.Module, dict[str, Any]]:
        """The RGB network with pretrained weights and a fresh classifier, and facts on where the weights came from.

        The fresh classifier draws from the run's ``init`` stream, whether or not pretraining ran first.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.ctx.seeds.int_seed("init"))
            network, report, facts = self._from_weights() if self.cfg["weights"] else self._from_zoo()
        if report.loaded == 0:
            raise ConfigError(f"weights {report.source} gave no tensor to the {self.backbone.name} network")
        if report.initialised and self.cfg["mode"] == "pt":
            raise ConfigError(
                f"mode pt trains only the classifier, but weights {report.source} do not cover "
                f"{', '.join(report.summary()['weights_random_modules'])}: they would stay random and frozen; "
                "use mode=bb or a full segmentation checkpoint"
            )
        if report.initialised:
            self.ctx.logger.warning("randomly initialised (not in the weights): %s",
                                    ", ".join(report.summary()["weights_random_modules"]))
        return network, {**facts, **report.summary()}

    def fit(self, train: SplitView, val: SplitView) -> dict[str, Any]:
        pixels, _ = collect_labelled_pixels(
            train, self.card.ignore_index, max_pixels=int(self.cfg["max_fit_pixels"]), rng=self.ctx.seeds.rng("order")
        )
        self.adapter.fit(pixels)
        network, facts = self.pretrained_network()
        MODES[self.cfg["mode"]](network, self.backbone)
        optimizer = "adamw"
        scale = float(self.cfg["backbone_lr_scale"])
        if self.cfg["mode"] == "bb" and scale != 1.0:
            for name, parameter in network.named_parameters():
                parameter.lr_scale = 1.0 if self.backbone.is_classifier(name) else scale
            optimizer = "adamw_lr_scaled"
        model = AdaptedNetwork(self.adapter.module(), network)
        facts.update(self.adapter.describe())
        return {**facts, **self.learner.fit_network(model, self.adapter, train, val, optimizer=optimizer)}

    def predict(self, sample: Sample) -> np.ndarray:
        return self.learner.predict(self.adapter.apply(sample.cube))

    def model_state(self) -> ModelState:
        """The fitted adapter's statistics and the selected weights of adapter module + RGB network."""
        return ModelState.nest(adapter=self.adapter.model_state(), network=self.learner.model_state())

    def restore(self, state: ModelState) -> None:
        self.adapter.restore(state.part("adapter"))
        weights = state.part("network")
        network = self._architecture({key.removeprefix("network."): t for key, t in weights.tensors.items()
                                      if key.startswith("network.")})
        MODES[self.cfg["mode"]](network, self.backbone)  # frozen as trained (predict runs in eval mode anyway)
        self.learner.restore_network(AdaptedNetwork(self.adapter.module(), network), weights)

    def _architecture(self, saved: Mapping[str, torch.Tensor]) -> nn.Module:
        """An untrained network of the saved weights' layout: built from the options (the zoo's path, and a user
        file whose layout implies no other option), else from the run's weights file (whose layout may fix
        options; the file must still be there)."""
        with torch.random.fork_rng(devices=[]):
            network = self.backbone.build(self.card.num_classes, self.backbone_options)
            shapes = {key: tuple(t.shape) for key, t in network.state_dict().items()}
            if shapes != {key: tuple(t.shape) for key, t in saved.items()} and self.cfg["weights"]:
                network = self._from_weights()[0]
        return network

    @classmethod
    def search_space(cls, trial: Any, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """The training recipe; in ``bb`` mode also the pretrained layers' learning-rate scale."""
        options = {**cls.defaults, **(options or {})}
        space = DenseNetworkLearner.search_space(trial)
        if options["mode"] == "bb":
            space["backbone_lr_scale"] = trial.suggest_float("backbone_lr_scale", 0.01, 1.0, log=True)
        return space
