"""Strategy ``in_domain``: train on the target hyperspectral images only.

The HS3-Bench baselines (U-Net, RU-Net, DeepLabV3+ trained from scratch on all bands) and the classic few-shot
baseline, an RBF SVM on standardised pixel spectra. Input statistics (``standardize``, ``pca=n``) are fitted on the
labelled training pixels only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from hsbench.data.dataset import Sample
from hsbench.data.transforms import PixelTransform, build_transform, collect_labelled_pixels
from hsbench.errors import ConfigError
from hsbench.learners import TRAINING_DEFAULTS, DenseNetworkLearner, Learner, SvmLearner, crop_context
from hsbench.registry import MODELS, STRATEGIES, lookup, names
from hsbench.strategy import SplitView, Strategy, StrategySpec

_SMOKE_TRAINING = {"epochs": 8, "lr": 0.005, "batch_size": 4}

# Pixel classifiers are not networks, so they live beside the MODELS registry rather than in it.
PIXEL_CLASSIFIERS: dict[str, type[Learner]] = {"svm": SvmLearner}


@STRATEGIES.register_module(name="in_domain")
class InDomain(Strategy):
    """Train on the target HSI only."""

    name: ClassVar[str] = "in_domain"
    spec: ClassVar[StrategySpec] = StrategySpec(
        description="train on the target HSI only (HS3-Bench U-Net / RU-Net / DeepLabV3+ baselines, RBF SVM)"
    )
    defaults: ClassVar[dict[str, Any]] = {
        "model": "runet",
        "recipe": "hsbench",  # hsbench | hs3bench | cross_domain_2026 (hsbench.recipes; expanded under user options)
        "input": "standardize",
        "model_options": {},
        **TRAINING_DEFAULTS,  # the in_domain training recipe (hsbench.learners)
        # Pixels used to fit input statistics (uniformly subsampled from the labelled train pixels).
        "max_fit_pixels": 200_000,
        # SVM: C chosen on val from svm_c_grid unless svm_c is set.
        "svm_c": None,
        "svm_c_grid": [1.0, 10.0, 100.0],
        "svm_gamma": "scale",
        "svm_max_pixels": 4000,
    }

    smoke_options: ClassVar[list[dict[str, Any]]] = [
        {**_SMOKE_TRAINING, "model": "runet", "model_options": {"base_channels": 8}},
        {**_SMOKE_TRAINING, "model": "unet", "input": "pca=3", "model_options": {"base_channels": 8}},
        {**_SMOKE_TRAINING, "model": "deeplabv3plus", "model_options": {"width_mult": 0.25}},
        {"model": "svm", "input": "standardize", "svm_c_grid": [1.0, 10.0], "svm_max_pixels": 500},
    ]

    def __init__(self, cfg: dict[str, Any], ctx, card) -> None:
        super().__init__(cfg, ctx, card)
        self.transform: PixelTransform = build_transform(str(cfg["input"]))
        self.learner: Learner = self._learner_class(cfg["model"])(cfg, ctx, card)

    @staticmethod
    def _learner_class(model: str) -> type[Learner]:
        if model in PIXEL_CLASSIFIERS:
            return PIXEL_CLASSIFIERS[model]
        if model not in names(MODELS):
            valid = sorted([*names(MODELS), *PIXEL_CLASSIFIERS])
            raise ConfigError(f"in_domain has no model {model!r}; valid models are {', '.join(valid)}")
        return DenseNetworkLearner

    @classmethod
    def label(cls, options: dict[str, Any]) -> str:
        return f"{cls.name}/{options['model']}"

    @classmethod
    def spatial_context(cls, options: Mapping[str, Any]) -> int:
        """SVM: 0 (one spectrum per pixel); U-Net / RU-Net / DeepLabV3+: half the training crop (32 px at 64)."""
        return 0 if options["model"] in PIXEL_CLASSIFIERS else crop_context(options["crop_size"])

    def fit(self, train: SplitView, val: SplitView) -> dict[str, Any]:
        pixels, _ = collect_labelled_pixels(
            train, self.card.ignore_index, max_pixels=int(self.cfg["max_fit_pixels"]), rng=self.ctx.seeds.rng("order")
        )
        self.transform.fit(pixels)
        return self.learner.fit(self.transform, train, val)

    def predict(self, sample: Sample) -> np.ndarray:
        return self.learner.predict(self.transform.apply(sample.cube))

    @classmethod
    def search_space(cls, trial: Any, options: dict[str, Any] | None = None) -> dict[str, Any]:
        model = (options or {}).get("model", cls.defaults["model"])
        if model in PIXEL_CLASSIFIERS:
            return PIXEL_CLASSIFIERS[model].search_space(trial)
        space = DenseNetworkLearner.search_space(trial)
        space["model_options"] = lookup(MODELS, model).search_space(trial)
        return space
