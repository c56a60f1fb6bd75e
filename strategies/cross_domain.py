"""Strategy ``cross_domain``: a spectral foundation model pretrained on remote-sensing spectra, used on proximal scenes.

The pipeline of the 2026 cross-domain study: a per-pixel spectral transformer with wavelength positional encoding
(:class:`hsbench.models.spectral_fm.SpectralFM`), pretrained without labels on a source domain (by default the
aerial ``synthetic_aerial`` set, any registered scene, or a list of datasets whose pixels are pooled with each its
own wavelengths; through the zoo: pretrained once, then reused; or a user's ``weights`` file, e.g. a HyperSL
checkpoint), and a head trained on the target's few labels. The target dataset is never a source (its val and test
pixels would be read; there is no transductive mode here). Two modes:

* ``frozen`` (the study's): features for every pixel of every sample are computed once per (dataset, checkpoint)
  and cached on disk; the head (``runet``, ``unet``, ``deeplabv3plus``, or ``mlp``: the study's pixel-only
  spectral classification) trains on standardised feature maps.
* ``finetune``: the foundation model trains together with the head, at ``fm_lr_scale`` times the head's learning
  rate, on random crops (a per-pixel transformer with gradients is costly on a CPU).

Feature standardisation is fitted on labelled train pixels only. The head's randomness comes from the run's seed
streams; the foundation model's from its recipe seed, so that one zoo artifact serves every run.

The saved model (:meth:`CrossDomain.model_state`) carries the foundation model's weights itself, so it predicts
after the zoo artifact or weights file is gone. Frozen features computed outside the cache are rounded to the
cache's float16, so a restored model (which has no cache) or a cube the cache lacks gets the cached values.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from hsbench.data.dataset import Sample
from hsbench.data.transforms import PixelTransform, collect_labelled_pixels
from hsbench.errors import ConfigError, DataError
from hsbench.features import FeatureCache, FrozenFeatures
from hsbench.finetune import FeatureSegmenter, FinetuneLearner
from hsbench.learners import TRAINING_DEFAULTS, DenseNetworkLearner, Learner, crop_context
from hsbench.models import pixel_mlp  # noqa: F401  (registers the "mlp" head's network)
from hsbench.models.spectral_fm import SIZES, SpectralFM, SpectralFMConfig, fm_config
from hsbench.models.spectral_fm_import import fm_from_artifact, load_weights_file
from hsbench.pretraining.sources import refuse_target_source, source_option_map
from hsbench.pretraining.spectral_mae import SpectralMAERecipe, pretrained_spectral_fm
from hsbench.registry import MODELS, STRATEGIES, lookup
from hsbench.saved_model import ModelState
from hsbench.saved_parts import load_module, module_state, transform_from_state, transform_state
from hsbench.strategy import RunContext, SplitView, Strategy, StrategySpec
from hsbench.zoo import Zoo

HEADS: dict[str, str] = {"runet": "runet", "unet": "unet", "deeplabv3plus": "deeplabv3plus", "mlp": "pixel_mlp"}
"""Head option -> network in ``MODELS``."""

_EXPOSED_RECIPE_FIELDS = {"model", "source", "source_options", "mask_ratio", "epochs", "pixels", "batch_size", "lr",
                          "seed"}
# The rest of the recipe, with its current defaults, so that the run config (and id) records every value used.
_PRETRAIN_OPTIONS = {
    f.name: f.default for f in dataclasses.fields(SpectralMAERecipe) if f.name not in _EXPOSED_RECIPE_FIELDS
}

_SMOKE_FM = {
    "fm_options": {"dim": 16, "depth": 1, "heads": 2},
    "source_options": {"num_images": 3, "height": 16, "width": 16},
    "pretrain_pixels": 512,
    "pretrain_epochs": 2,
    "pretrain_batch_size": 128,
}
_SMOKE_TRAINING = {"epochs": 8, "lr": 0.005, "batch_size": 4}


class _Mode:
    """How the foundation model and the head are trained; one per ``mode`` option."""

    def __init__(self, strategy: CrossDomain) -> None:
        self.cfg, self.ctx, self.card = strategy.cfg, strategy.ctx, strategy.card

    def head_cfg(self) -> dict[str, Any]:
        return {**self.cfg, "model": HEADS[self.cfg["head"]], "model_options": dict(self.cfg["head_options"])}

    def head(self, fm: SpectralFM) -> torch.nn.Module:
        """A fresh head network for ``fm``'s features (what ``fit`` builds; ``restore`` loads weights into it)."""
        return lookup(MODELS, HEADS[self.cfg["head"]])(fm.dim, self.card.num_classes, **dict(self.cfg["head_options"]))

    def fitted_features(self, features: FrozenFeatures, train: SplitView) -> FrozenFeatures:
        """``features`` with its standardisation fitted on labelled train pixels (nothing to fit when raw)."""
        if self.cfg["feature_input"] == "raw":
            return features
        samples = (Sample(s.id, features.raw(s.cube), s.labels) for s in train)
        pixels, _ = collect_labelled_pixels(
            samples, self.card.ignore_index, max_pixels=int(self.cfg["max_fit_pixels"]),
            rng=self.ctx.seeds.rng("order"),
        )
        return features.fit(pixels)

    def fit(self, fm: SpectralFM, checkpoint_hash: str, train: SplitView, val: SplitView) -> dict[str, Any]:
        raise NotImplementedError

    def predict(self, sample: Sample) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> ModelState:
        """The fitted foundation model, feature transform and head (see :meth:`CrossDomain.model_state`)."""
        raise NotImplementedError

    def restore(self, fm: SpectralFM, state: ModelState) -> None:
        """Rebuild what :meth:`state` saved; ``fm`` is a fresh model of the saved configuration."""
        raise NotImplementedError


class _Frozen(_Mode):
    """Cached features of the frozen model; a head trained on them."""

    def fit(self, fm: SpectralFM, checkpoint_hash: str, train: SplitView, val: SplitView) -> dict[str, Any]:
        dataset = train.dataset
        cache = FeatureCache(checkpoint_hash=checkpoint_hash, dataset_fingerprint=dataset.fingerprint,
                             wavelengths_nm=self.card.wavelengths_nm)
        features = self.frozen_features(fm, cache)
        stats = cache.build(dataset, features.extract, progress=self.ctx.progress)
        self.ctx.logger.info("features: %s in %.1f s (%s)", "cache hit" if stats["feature_cache_hit"] else
                             "extracted", stats["feature_seconds"], cache.folder)
        self.features = self.fitted_features(features, train)
        self.learner: Learner = DenseNetworkLearner(self.head_cfg(), self.ctx, self.card)
        facts = {**stats, **self.learner.fit(self.features, train, val)}
        return {**facts, "feature_cubes_computed": features.computed}

    def frozen_features(self, fm: SpectralFM, cache: FeatureCache | None) -> FrozenFeatures:
        """Features rounded as the cache stores them, so a cube outside the cache (a val cube with hidden test
        pixels, another dataset, a restored model with no cache) gets exactly the values the cache would give."""
        return FrozenFeatures(fm, self.card.wavelengths_nm, cache=cache, device=self.ctx.device,
                              batch_pixels=int(self.cfg["feature_batch_pixels"]), transform=self.cfg["feature_input"],
                              as_cached=True)

    def predict(self, sample: Sample) -> np.ndarray:
        return self.learner.predict(self.features.apply(sample.cube))

    def state(self) -> ModelState:
        return ModelState.nest(fm=module_state(self.features.model), standardize=transform_state(
            self.features.standardize), head=self.learner.model_state())

    def restore(self, fm: SpectralFM, state: ModelState) -> None:
        fm = load_module(fm, state.part("fm")).to(self.ctx.device)
        self.features = self.frozen_features(fm, None)  # no cache: features come from the model's own FM
        self.features.standardize = transform_from_state(state.part("standardize"))
        self.learner = DenseNetworkLearner(self.head_cfg(), self.ctx, self.card)
        self.learner.restore_network(self.head(fm), state.part("head"))  # in the memory layout of training


class _Finetune(_Mode):
    """The foundation model and the head trained together."""

    def fit(self, fm: SpectralFM, checkpoint_hash: str, train: SplitView, val: SplitView) -> dict[str, Any]:
        features = FrozenFeatures(fm, self.card.wavelengths_nm, batch_pixels=int(self.cfg["feature_batch_pixels"]),
                                  device=self.ctx.device, transform=self.cfg["feature_input"])
        self.learner = FinetuneLearner(self.head_cfg(), self.ctx, self.card)
        return self.learner.fit_with(fm, self.fitted_features(features, train).standardize, train, val)

    def predict(self, sample: Sample) -> np.ndarray:
        return self.learner.predict(np.asarray(sample.cube, dtype=np.float32))

    def state(self) -> ModelState:
        # The whole FeatureSegmenter: fm.*, head.*, its band wavelengths and the feature standardisation buffers.
        return ModelState.nest(network=self.learner.model_state())

    def restore(self, fm: SpectralFM, state: ModelState) -> None:
        placeholder = PixelTransform("standardize", mean=np.zeros(fm.dim), matrix=np.eye(fm.dim))  # loaded over
        network = FeatureSegmenter(fm, self.head(fm), self.card.wavelengths_nm, placeholder,
                                   eval_batch_pixels=int(self.cfg["feature_batch_pixels"]))
        self.learner = FinetuneLearner(self.head_cfg(), self.ctx, self.card)
        self.learner.restore_network(network, state.part("network"))


MODES: dict[str, type[_Mode]] = {"frozen": _Frozen, "finetune": _Finetune}
FEATURE_INPUTS: dict[str, str] = {"standardize": "fitted on labelled train pixels", "raw": "as the model outputs them"}
"""How frozen features enter the head (``feature_input``)."""


@STRATEGIES.register_module(name="cross_domain")
class CrossDomain(Strategy):
    """Transfer a spectral foundation model pretrained on a remote-sensing source domain."""

    name: ClassVar[str] = "cross_domain"
    spec: ClassVar[StrategySpec] = StrategySpec(
        description="spectral foundation model pretrained on remote-sensing spectra (zoo or a weights file); "
        "frozen cached features + RU-Net / DeepLabV3+ / MLP head, or fine-tuned with the head"
    )
    defaults: ClassVar[dict[str, Any]] = {
        "recipe": "hsbench",  # hsbench | hs3bench | cross_domain_2026 (hsbench.recipes; expanded under user options)
        "mode": "frozen",  # frozen | finetune
        "head": "runet",  # runet | unet | deeplabv3plus | mlp
        "head_options": {},
        # Foundation model: a size preset, overrides of it, and where the weights come from.
        "fm_size": "tiny",  # tiny (CPU) | HyperSL's small (256-d, 8 blocks) | base | large | huge
        "fm_options": {},
        "weights": None,  # None: the zoo (pretrained on `source` once); else a .safetensors or HyperSL .pt file
        "weights_trusted": False,  # allow torch.load to unpickle non-tensor objects of a trusted checkpoint
        "weights_sha256": None,  # the weights file's expected SHA-256; another file is refused
        "strict": True,  # false: run with a partly matching weights file (unmatched tensors stay initial)
        # Zoo pretraining recipe (masked band modelling); about 2 minutes on one CPU core for `tiny`.
        # source: a registered dataset (a prepared scene such as samson: all its pixels, no labels), a list of them
        # ([samson, jasper_ridge]: equal pixel shares, each with its own wavelengths), or earthlib (hsbench[spectra]:
        # virtual sensors). Never the target dataset.
        "source": "synthetic_aerial",
        "source_options": {},  # the dataset's options; for a list {source name: options}; earthlib: SensorSimConfig
        "mask_ratio": 0.9,
        "pretrain_epochs": 6,
        "pretrain_pixels": 32_768,
        "pretrain_batch_size": 256,
        "pretrain_lr": 1e-3,
        "pretrain_seed": 0,
        "pretrain_options": _PRETRAIN_OPTIONS,  # weight_decay, decoder, norm_target, band views
        "feature_batch_pixels": 8192,
        "feature_input": "standardize",  # standardize | raw (the 2026 study feeds frozen features raw)
        **TRAINING_DEFAULTS,  # the in_domain training recipe (hsbench.learners)
        "max_fit_pixels": 200_000,
        # Fine-tuning: the FM learns at fm_lr_scale x lr, on random crops, validated every few epochs.
        "fm_lr_scale": 0.1,
        "finetune_crop_size": 32,
        "finetune_eval_every": 5,
    }
    smoke_options: ClassVar[list[dict[str, Any]]] = [
        {**_SMOKE_FM, **_SMOKE_TRAINING, "head": "runet", "head_options": {"base_channels": 8}},
        {**_SMOKE_FM, **_SMOKE_TRAINING, "head": "mlp"},
        {**_SMOKE_FM, **_SMOKE_TRAINING, "mode": "finetune", "head": "mlp", "epochs": 6, "finetune_crop_size": 16,
         "finetune_eval_every": 3},
    ]

    def __init__(self, cfg: dict[str, Any], ctx: RunContext, card) -> None:
        super().__init__(cfg, ctx, card)
        _check_choice("mode", cfg["mode"], MODES)
        _check_choice("head", cfg["head"], HEADS)
        _check_choice("feature_input", cfg["feature_input"], FEATURE_INPUTS)
        if not cfg["weights"]:  # the zoo pretrains on the source: never on the target (it has no transductive mode)
            refuse_target_source(cfg["source"], card.name, strategy=self.name, transductive_option=False)
        source_option_map(cfg["source"], cfg["source_options"])  # a malformed source fails before any data is read
        self.fm_config = fm_config(str(cfg["fm_size"]), dict(cfg["fm_options"]))
        self.mode = MODES[cfg["mode"]](self)

    @classmethod
    def label(cls, options: dict[str, Any]) -> str:
        suffix = "" if options["mode"] == "frozen" else f"/{options['mode']}"
        return f"{cls.name}/{options['head']}{suffix}"

    @classmethod
    def spatial_context(cls, options: Mapping[str, Any]) -> int:
        """The FM reads one spectrum per pixel, so the head decides: 0 for ``mlp``, else half its training crop
        (``finetune_crop_size`` when fine-tuning, ``crop_size`` on frozen features)."""
        if options["head"] == "mlp":
            return 0
        return crop_context(options["finetune_crop_size" if options["mode"] == "finetune" else "crop_size"])

    def recipe(self) -> SpectralMAERecipe:
        """The zoo recipe these options ask for."""
        cfg = self.cfg
        return SpectralMAERecipe(
            model=self.fm_config.to_dict(), source=cfg["source"], source_options=dict(cfg["source_options"]),
            mask_ratio=float(cfg["mask_ratio"]), epochs=int(cfg["pretrain_epochs"]),
            pixels=int(cfg["pretrain_pixels"]), batch_size=int(cfg["pretrain_batch_size"]),
            lr=float(cfg["pretrain_lr"]), seed=int(cfg["pretrain_seed"]), **_pretrain_options(cfg["pretrain_options"]),
        )

    def foundation_model(self) -> tuple[SpectralFM, str, dict[str, Any]]:
        """The model, its checkpoint hash and facts about where it came from."""
        start = time.perf_counter()
        if self.cfg["weights"]:
            model, report, checkpoint_hash = load_weights_file(
                Path(str(self.cfg["weights"])), self.fm_config, trusted=bool(self.cfg["weights_trusted"]),
                strict=bool(self.cfg["strict"]), expected_sha256=self.cfg["weights_sha256"],
            )
            facts = {"fm_source": str(self.cfg["weights"]), "fm_import": report.summary(),
                     "fm_unmatched_keys": report.unmatched, "fm_weights_sha256": report.file_sha256}
        else:
            zoo = self.ctx.zoo if self.ctx.zoo is not None else Zoo()
            artifact = pretrained_spectral_fm(zoo, self.recipe(), device=self.ctx.device, progress=self.ctx.progress,
                                              data_root=self.ctx.data_root, logger=self.ctx.logger)
            model, checkpoint_hash = fm_from_artifact(artifact), artifact.checkpoint_hash  # verified on open
            facts = {"fm_source": str(artifact.path), "fm_pretrain_loss": artifact.metadata["loss_curve"][-1],
                     "fm_weights_sha256": checkpoint_hash}
        facts.update(fm_seconds=time.perf_counter() - start, fm_checkpoint_hash=checkpoint_hash,
                     fm_parameters=model.num_parameters())
        return model.to(self.ctx.device), checkpoint_hash, facts

    def fit(self, train: SplitView, val: SplitView) -> dict[str, Any]:
        model, checkpoint_hash, facts = self.foundation_model()
        self.fm_facts = {"fm_config": model.cfg.to_dict(), "fm_checkpoint_hash": checkpoint_hash,
                         "fm_source": facts["fm_source"]}
        return {**facts, **self.mode.fit(model, checkpoint_hash, train, val)}

    def predict(self, sample: Sample) -> np.ndarray:
        return self.mode.predict(sample)

    def model_state(self) -> ModelState:
        """The foundation model's weights (self-contained: the zoo artifact or weights file is not needed again),
        the fitted feature standardisation and the head; fine-tuned, the whole FM + head network.

        Parts: frozen ``fm``, ``standardize``, ``head``; finetune ``network`` (``network.fm.*``, ``network.head.*``).
        The meta records the FM's configuration and its source checkpoint's hash (the feature cache key).
        """
        state = self.mode.state()
        state.meta.update(mode=self.cfg["mode"], **self.fm_facts)
        return state

    def restore(self, state: ModelState) -> None:
        if state.meta.get("mode") != self.cfg["mode"]:
            raise DataError(f"cross_domain model of mode {state.meta.get('mode')!r}, options say {self.cfg['mode']!r}")
        self.fm_facts = {k: state.meta[k] for k in ("fm_config", "fm_checkpoint_hash", "fm_source")}
        self.mode.restore(SpectralFM(SpectralFMConfig.from_dict(dict(state.meta["fm_config"]))), state)

    @classmethod
    def search_space(cls, trial: Any, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Head recipe and head options; in ``finetune`` mode also the FM's learning-rate scale and crop size."""
        options = {**cls.defaults, **(options or {})}
        space = DenseNetworkLearner.search_space(trial)
        space["head_options"] = lookup(MODELS, HEADS[options["head"]]).search_space(trial, options["head_options"])
        if options["mode"] == "finetune":
            space["fm_lr_scale"] = trial.suggest_float("fm_lr_scale", 0.01, 1.0, log=True)
            space["finetune_crop_size"] = trial.suggest_categorical("finetune_crop_size", [24, 32, 48])
        return space


def _pretrain_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - set(_PRETRAIN_OPTIONS)
    if unknown:
        raise ConfigError(f"cross_domain pretrain_options has unknown keys {sorted(unknown)}; "
                          f"valid keys are {', '.join(sorted(_PRETRAIN_OPTIONS))}")
    return dict(options)


def _check_choice(option: str, value: Any, valid: dict[str, Any]) -> None:
    if value not in valid:
        raise ConfigError(f"cross_domain option {option}={value!r}: valid values are {', '.join(valid)}")


__all__ = ["CrossDomain", "HEADS", "MODES", "SIZES"]
