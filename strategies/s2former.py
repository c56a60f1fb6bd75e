"""Strategy ``s2former``: self-supervised spectral-spatial pretraining without labels, then few-label transfer.

S2Former (Chao et al., "Cross-Domain Transfer with Self-Supervised Spectral-Spatial Modeling for Hyperspectral
Image Classification"), with every size and schedule chosen by us (``docs/strategies/s2former.md`` says why):

1. ``pretrain``: cubes of every domain are resampled to one wavelength grid and standardised with the domain's
   own statistics. A dual-branch encoder (:mod:`hsbench.models.s2former`) is pretrained on the source domain
   (``synthetic_aerial``, any registered scene, or a list of datasets pooled with each its own grid fit and
   statistics; zoo artifact, shared across runs) by masked spatial and spectral reconstruction with a
   frequency-domain constraint, then briefly on the target's unlabelled training images (a second artifact).
   Labels are never read there; the target's standardisation is fitted on the same unlabelled train images. Of a
   scene only its train region is read (:meth:`hsbench.strategy.SplitView.readable`: val and test pixels and the
   guard band around the test pixels are blanked and left out), unless ``transductive=true`` (label ``s2former†``).
2. ``fit``: a dense head on the encoder, trained on tiles around labelled train pixels with cross-entropy plus
   DAFT (:mod:`hsbench.models.s2former_daft`) through the shared engine, selected on val mIoU. The tiles are
   blanked outside the same readable region, which DAFT's alignment also leaves out (unless transductive).
3. ``predict``: overlapping tiles blended with a Hann window (segmentation) or tile-centre predictions (scenes).

Ablations (each a plain option, so a benchmark matrix produces the ablation table): ``no_cross_attention``
(no cross-attention layers, in pretraining and fine-tuning), ``no_frequency_loss`` (frequency weight 0 in
pretraining), ``no_daft`` (cross-entropy only), ``no_pretrain`` (random initialisation, no self-supervision).
All randomness comes from the run's seed streams (``pretrain_seed`` may pin the source stage to share it
across seeds).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from hsbench import finetune  # noqa: F401  (registers the "adamw_lr_scaled" optimizer)
from hsbench.data.dataset import Sample
from hsbench.data.transforms import PixelTransform
from hsbench.engine import EngineConfig, Trainer
from hsbench.errors import DataError
from hsbench.evaluation import view_miou
from hsbench.learners import engine_config
from hsbench.models.s2former import S2FormerConfig, S2FormerEncoder, S2FormerSegmenter
from hsbench.models.s2former_daft import DaftConfig, DaftSegmenter, daft_loss
from hsbench.pretraining.s2former_ssl import S2FormerSSLRecipe
from hsbench.pretraining.s2former_zoo import (
    TargetStage,
    domain_tiles,
    encoder_state,
    fit_domain,
    pretrained_s2former,
    readable_digest,
)
from hsbench.pretraining.sources import refuse_target_source, source_option_map
from hsbench.registry import STRATEGIES
from hsbench.saved_model import ModelState
from hsbench.saved_parts import load_module, module_state, transform_from_state, transform_state
from hsbench.seeding import SeedStreams
from hsbench.strategy import RunContext, SplitView, Strategy, StrategySpec, blank_unreadable, transductive_label
from hsbench.tiling import TILE_PLANS, LabelledTiles, predict_tiled
from hsbench.zoo import Zoo

__all__ = ["S2Former", "ABLATIONS"]

ABLATIONS = ("no_cross_attention", "no_frequency_loss", "no_daft", "no_pretrain")

_SMOKE = {
    "model_options": {"dim": 16, "depth": 1, "heads": 2, "grid_bands": 16, "patch_size": 2},
    "tile_size": 16,
    "source_options": {"num_images": 3, "height": 32, "width": 32},
    "pretrain_options": {"steps": 8, "batch_size": 4, "fit_pixels": 1000},
    "target_pretrain_steps": 4,
    "epochs": 6,
    "tiles_per_epoch": 16,
    "batch_size": 4,
    "lr": 5e-3,
    "eval_every": 2,
}


def _child_seed(ctx: RunContext | SeedStreams, stream: str, index: int) -> int:
    """An integer seed of the ``index``-th child of a run stream (independent of the stream's other uses)."""
    seeds = ctx if isinstance(ctx, SeedStreams) else ctx.seeds
    child = seeds.sequence(stream).spawn(index + 1)[index]
    return int(child.generate_state(1, dtype=np.uint32)[0])


class _Images:
    """Several split views seen as one image collection (sample ids ``"<view>/<id>"``); cubes only."""

    def __init__(self, views: list[SplitView]) -> None:
        self.views = views
        self.sample_ids = tuple(f"{k}/{i}" for k, view in enumerate(views) for i in view.sample_ids)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def load(self, key: str) -> Sample:
        view, sample_id = self._locate(key)
        return view.load(sample_id)

    def readable(self, key: str) -> np.ndarray | None:
        view, sample_id = self._locate(key)
        return view.readable(sample_id)

    def _locate(self, key: str) -> tuple[SplitView, str]:
        view, _, sample_id = key.partition("/")
        return self.views[int(view)], sample_id


@STRATEGIES.register_module(name="s2former")
class S2Former(Strategy):
    """Self-supervised dual-branch spectral-spatial transformer, DAFT fine-tuning (see the module docstring)."""

    name: ClassVar[str] = "s2former"
    spec: ClassVar[StrategySpec] = StrategySpec(
        description="dual-branch spatial/spectral transformer pretrained without labels (masking, frequency loss) "
        "on the source and the target's unlabelled images, DAFT teacher-student fine-tuning",
        needs_unlabeled=True,
    )
    defaults: ClassVar[dict[str, Any]] = {
        **dict.fromkeys(ABLATIONS, False),
        "model_options": {},  # overrides of S2FormerConfig (grid, group_size, patch_size, dim, depth, heads)
        "tile_size": 32,
        # Source stage (zoo): dataset and overrides of S2FormerSSLRecipe (steps, batch_size, lr, mask ratios,
        # spectral_weight, frequency_weight, frequency_cutoff, consistency_weight, fit_pixels).
        # source: a registered dataset (a prepared scene such as samson: all its pixels, no labels) or a list of them,
        # [samson, jasper_ridge] (pooled; each on its own wavelengths and statistics). Not the target dataset
        # unless transductive=true.
        "source": "synthetic_aerial",
        "source_options": {},  # the source's dataset options; for a list, {source name: its options}
        "pretrain_options": {},
        "pretrain_seed": None,  # None: from the run's seed; an integer shares one source artifact across seeds
        # True: the target stage and the standardisation read whole scenes, val and test pixels included (label †).
        "transductive": False,
        # Target stage: the same objective on the target's unlabelled train images, short and gentler.
        "target_pretrain_steps": 100,
        "target_pretrain_lr": 3e-4,
        "fit_pixels": 50_000,  # target pixels for the grid standardisation
        # Fine-tuning through the shared engine (AdamW, cosine, selection on val mIoU).
        "epochs": 60,  # hyko-like targets still improve at 30 (measured: val mIoU peak at epoch 46)
        "tiles_per_epoch": 64,
        "batch_size": 8,
        "lr": 1e-3,
        "encoder_lr_scale": 0.5,  # pretrained weights take smaller steps than the fresh head
        "weight_decay": 0.01,
        "grad_clip_norm": 1.0,  # none / 0: no clipping
        "precision": "bf16",  # bf16 | fp16 | fp32 autocast on CUDA (hsbench.precision); CPU trains in fp32
        "early_stopping_patience": 8,
        "eval_every": 2,
        "hflip_p": 0.0,
        "daft_options": {},  # overrides of DaftConfig (max_t, teacher_ratio, ema_momentum, alignment_weight, ...)
        "predict_batch_tiles": 16,
    }
    smoke_options: ClassVar[list[dict[str, Any]]] = [
        dict(_SMOKE),
        {**_SMOKE, "no_cross_attention": True, "no_daft": True, "no_frequency_loss": True},
    ]

    def __init__(self, cfg: dict[str, Any], ctx: RunContext, card) -> None:
        super().__init__(cfg, ctx, card)
        model_options = {**dict(cfg["model_options"]), "cross_attention": not cfg["no_cross_attention"]}
        self.model_cfg = S2FormerConfig(**model_options)
        self.tile = int(cfg["tile_size"])
        self.plan = TILE_PLANS[card.task]
        self.transform: PixelTransform | None = None
        self.band_valid: np.ndarray | None = None
        self.encoder_weights: dict[str, torch.Tensor] | None = None
        self.pretrain_facts: dict[str, Any] = {}
        if not cfg["no_pretrain"] and not cfg["transductive"]:
            refuse_target_source(cfg["source"], card.name, strategy=self.name, transductive_option=True)
        source_option_map(cfg["source"], cfg["source_options"])  # a malformed source fails before any data is read

    @classmethod
    def label(cls, options: dict[str, Any]) -> str:
        return transductive_label("/".join([cls.name, *(flag for flag in ABLATIONS if options.get(flag))]), options)

    @classmethod
    def spatial_context(cls, options: Mapping[str, Any]) -> int:
        """Half a tile (16 px at the default 32): training tiles and scene predictions are tile-centred."""
        return int(options["tile_size"]) // 2

    def recipe(self) -> S2FormerSSLRecipe:
        """The source-stage zoo recipe these options ask for."""
        cfg = self.cfg
        overrides = dict(cfg["pretrain_options"])
        if cfg["no_frequency_loss"]:
            overrides["frequency_weight"] = 0.0
        seed = _child_seed(self.ctx, "init", 1) if cfg["pretrain_seed"] is None else int(cfg["pretrain_seed"])
        return S2FormerSSLRecipe(model=self.model_cfg.to_dict(), source=cfg["source"],
                                 source_options=dict(cfg["source_options"]), tile_size=self.tile, seed=seed,
                                 **overrides)

    # -------------------------------------------------------------------------------------------- pretraining
    def pretrain(self, unlabeled: list[SplitView]) -> None:
        """Fit the target's grid standardisation on the unlabelled images, then pretrain (unless ablated).

        Only the views' readable pixels are used (a scene's train region), or whole images when transductive.
        """
        images = _Images([view.transductive() for view in unlabeled] if self.cfg["transductive"] else unlabeled)
        # A fixed pretrain_seed shares the target stage too: seeds whose train images are the same (a full split)
        # then read one zoo artifact, and the grid standardisation they fit is the same.
        shared = self.cfg["pretrain_seed"]
        domain_seeds = self.ctx.seeds if shared is None else SeedStreams(int(shared))
        self.transform, self.band_valid = fit_domain(
            images, self.card.wavelengths_nm, self.model_cfg, fit_pixels=int(self.cfg["fit_pixels"]),
            rng=domain_seeds.rng("order"),
        )
        if self.cfg["no_pretrain"]:
            return
        recipe = self.recipe()
        dataset = unlabeled[0].dataset
        stage = TargetStage(
            dataset=self.card.name, fingerprint=dataset.fingerprint, sample_ids=tuple(sorted(images.sample_ids)),
            readable=readable_digest(images),
            steps=int(self.cfg["target_pretrain_steps"]), lr=float(self.cfg["target_pretrain_lr"]),
            seed=_child_seed(domain_seeds, "init", 2), fit_pixels=int(self.cfg["fit_pixels"]),
        )
        transform, valid = self.transform, self.band_valid
        target = (stage, lambda: domain_tiles(images, transform, valid, self.tile)) if stage.steps > 0 else None
        artifact = pretrained_s2former(
            self.ctx.zoo if self.ctx.zoo is not None else Zoo(), recipe, target=target, device=self.ctx.device,
            progress=self.ctx.progress, data_root=self.ctx.data_root, logger=self.ctx.logger,
        )
        self.encoder_weights = encoder_state(artifact)
        self.pretrain_facts = {"pretrain_artifact": str(artifact.path),
                               "pretrain_weights_sha256": artifact.checkpoint_hash,  # verified by the zoo on open
                               "pretrain_loss_curve": artifact.metadata.get("loss_curve")}

    # ------------------------------------------------------------------------------------------- fine-tuning
    def build_network(self) -> torch.nn.Module:
        """The segmenter (pretrained encoder unless ablated), wrapped for DAFT unless ablated."""
        assert self.band_valid is not None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.ctx.seeds.int_seed("init"))
            encoder = S2FormerEncoder(self.model_cfg)
            if self.encoder_weights is not None:
                encoder.load_state_dict(self.encoder_weights)
            segmenter = S2FormerSegmenter(encoder, self.card.num_classes, torch.as_tensor(self.band_valid))
        for parameter in segmenter.encoder.parameters():
            parameter.lr_scale = float(self.cfg["encoder_lr_scale"])  # read by the adamw_lr_scaled optimizer
        if self.cfg["no_daft"]:
            return segmenter
        steps = int(self.cfg["epochs"]) * math.ceil(int(self.cfg["tiles_per_epoch"]) / int(self.cfg["batch_size"]))
        generator = torch.Generator().manual_seed(_child_seed(self.ctx, "augment", 1))
        return DaftSegmenter(segmenter, DaftConfig(total_steps=steps, **dict(self.cfg["daft_options"])), generator)

    def engine_config(self) -> EngineConfig:
        """The shared recipe with a cosine schedule and the encoder's scaled LR, evaluated every ``eval_every``."""
        recipe = engine_config({**self.cfg, "schedule": "cosine"}, optimizer="adamw_lr_scaled")
        return dataclasses.replace(recipe, eval_every=int(self.cfg["eval_every"]))

    def training_tiles(self, train: SplitView) -> LabelledTiles:
        """Tiles around labelled train pixels, drawn on the run's ``augment`` stream.

        Blanked outside the readable pixels (a scene's train region, unless transductive), so val and test spectra
        reach neither the cross-entropy forward pass nor DAFT, which also gets the masks to leave them out of its
        alignment.
        """
        assert self.transform is not None
        view = train.transductive() if self.cfg["transductive"] else train
        masks = [view.readable(i) for i in view.sample_ids]
        images = [(torch.from_numpy(blank_unreadable(self.transform.apply(s.cube), mask)),
                   torch.as_tensor(np.array(s.labels, np.int64))) for s, mask in zip(view, masks, strict=True)]
        readable = None
        if not self.cfg["no_daft"] and any(m is not None for m in masks):
            readable = [torch.ones(labels.shape, dtype=torch.bool) if m is None else torch.from_numpy(np.array(m))
                        for (_, labels), m in zip(images, masks, strict=True)]
        rng = np.random.default_rng(_child_seed(self.ctx, "augment", 0))
        return LabelledTiles(images, tile=self.tile, jitter=self.plan.jitter, length=int(self.cfg["tiles_per_epoch"]),
                             ignore_index=self.card.ignore_index, rng=rng, readable=readable)

    def fit(self, train: SplitView, val: SplitView) -> dict[str, Any]:
        if self.transform is None:  # called without the runner's pretrain phase
            self.pretrain([train])
        self.network = self.build_network().to(self.ctx.device)
        loss_fn = None if self.cfg["no_daft"] else daft_loss(self.card.ignore_index)
        trainer = Trainer(self.network, self.engine_config(), self.ctx, ignore_index=self.card.ignore_index,
                          loss_fn=loss_fn)
        result = trainer.fit(self.training_tiles(train), evaluate=lambda _model: view_miou(self.predict, val))
        curve = result.curve()
        seconds = curve["epoch_seconds"]
        return {
            **self.pretrain_facts,
            "best_val_miou": result.best_score,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_reason": result.stopped_reason,
            "seconds_per_epoch": float(np.median(seconds)) if seconds else None,
            "parameters": sum(p.numel() for p in self.network.parameters() if p.requires_grad),
            **curve,
        }

    @torch.no_grad()
    def predict(self, sample: Sample) -> np.ndarray:
        assert self.transform is not None
        was_training = self.network.training
        self.network.eval()
        cube = torch.from_numpy(self.transform.apply(sample.cube)).to(self.ctx.device)
        logits = predict_tiled(self.network, cube, tile=self.tile, plan=self.plan,
                               batch_size=int(self.cfg["predict_batch_tiles"]))
        self.network.train(was_training)
        return logits.argmax(0).cpu().numpy().astype(np.int64)

    def model_state(self) -> ModelState:
        """What ``predict`` uses: the student segmenter (encoder + head; DAFT's EMA teacher only trains), the
        domain's grid standardisation and band validity. Tile settings are options, kept with the model."""
        assert self.transform is not None and self.band_valid is not None, "fit first"
        network = self.network.student if isinstance(self.network, DaftSegmenter) else self.network
        state = ModelState.nest(network=module_state(network), transform=transform_state(self.transform))
        state.tensors["band_valid"] = torch.from_numpy(np.array(self.band_valid, dtype=bool))
        state.meta.update(model_config=self.model_cfg.to_dict(), tile_size=self.tile, tile_plan=self.card.task,
                          channels_last=self.engine_config().channels_last)  # the layout predict ran in
        return state

    def restore(self, state: ModelState) -> None:
        band_valid = state.array("band_valid")
        if band_valid is None:
            raise DataError("s2former model without band_valid: not a model saved by this strategy")
        self.transform = transform_from_state(state.part("transform"))
        self.band_valid = np.array(band_valid, dtype=bool)
        segmenter = S2FormerSegmenter(S2FormerEncoder(self.model_cfg), self.card.num_classes,
                                      torch.as_tensor(self.band_valid))
        segmenter = segmenter.to(self.ctx.device)
        if state.meta.get("channels_last"):  # the engine trained (and the run predicted) in NHWC: same floats
            segmenter = segmenter.to(memory_format=torch.channels_last)
        self.network = load_module(segmenter, state.part("network"))

    @classmethod
    def search_space(cls, trial: Any, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Fine-tuning recipe; the DAFT weight too unless DAFT is ablated."""
        space: dict[str, Any] = {
            "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-4, 1e-1, log=True),
            "encoder_lr_scale": trial.suggest_float("encoder_lr_scale", 0.05, 1.0, log=True),
        }
        if not {**cls.defaults, **(options or {})}["no_daft"]:
            weight = trial.suggest_float("daft_alignment_weight", 0.1, 3.0, log=True)
            space["daft_options"] = {"alignment_weight": weight}
        return space
