"""Recipe presets: a published paper's training recipe as one strategy option, ``recipe=<name>``.

Users arrive with a published table and want to reproduce a row exactly, then change one thing. A preset expands
to the anchor's option values *before* the user's overrides (the user still wins), and the expanded values are what
the run id hashes, so a ``recipe=hs3bench`` run and the same options spelt out are the same run.

Values come from the anchors' public code (facts, not code): HS3-Bench is ``nickstheisen/hyperseg``, the 2026
cross-domain study ``nickstheisen/cross-domain-hsi``. docs/recipes.md tabulates every value with the anchor file it
comes from; a test checks that table against this registry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hsbench.config_files import did_you_mean
from hsbench.data.dataset_spec import dataset_name
from hsbench.errors import ConfigError

__all__ = ["RECIPES", "DEFAULT_RECIPE", "RecipeValues", "recipe_options", "recipe_rows"]

DEFAULT_RECIPE = "hsbench"
"""hsbench's own defaults: the preset that changes nothing."""


@dataclass(frozen=True)
class RecipeValues:
    """One preset's option values for one strategy.

    Attributes:
        values: options for every dataset and model.
        by_dataset: dataset registry name -> options for that dataset only (batch size, precision).
        by_model: value of ``model_key`` -> options for that network only (its architecture options).
        model_key: the option that names the network (``model``, or ``head`` for cross_domain).
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    by_dataset: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    by_model: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    model_key: str = "model"

    def expand(self, defaults: Mapping[str, Any], user: Mapping[str, Any], dataset: str | None) -> dict[str, Any]:
        """The preset's options for this run (the network is the user's choice, else the preset's, else default)."""
        out = dict(self.values)
        model = user.get(self.model_key, out.get(self.model_key, defaults.get(self.model_key)))
        out.update(self.by_model.get(str(model), {}))
        if dataset is not None:  # a spec such as hsi_drive:wavelengths=... counts as its dataset
            out.update(self.by_dataset.get(dataset_name(dataset), {}))
        return out


# HS3-Bench (hyperseg): shared by every strategy that trains a dense network with the in_domain recipe.
_HS3_TRAINING: dict[str, Any] = {
    "epochs": 500,
    "early_stopping_patience": None,
    "lr": 0.001,
    "weight_decay": 0.0,
    "schedule": "constant",
    "grad_clip_norm": None,
    "min_steps_per_epoch": 1,
    "class_weighting": "none",
    "loss_reduction": "all",
    "precision": "fp32",
}
_HS3_DATASETS: dict[str, dict[str, Any]] = {
    "hcv2": {"batch_size": 4, "precision": "fp16"},  # run/conf/dataset/hcv2_hr*.yaml: the halved images
    "hsi_drive": {"batch_size": 32},
    "hyko2": {"batch_size": 16},
}
_HYPERSEG_UNETS: dict[str, dict[str, Any]] = {
    "runet": {"model_options": {"layout": "hyperseg", "base_channels": 64}},
    "unet": {"model_options": {"layout": "hyperseg", "base_channels": 64}},
}

# The 2026 cross-domain study (cross-domain-hsi).
_STUDY_TRAINING: dict[str, Any] = {
    **_HS3_TRAINING,
    "early_stopping_patience": 30,
    "loss_reduction": "labelled",
    "precision": "bf16",
}
_STUDY_DATASETS: dict[str, dict[str, Any]] = {
    "hcv2": {"batch_size": 4},
    "hsi_drive": {"batch_size": 16},
    "hyko2": {"batch_size": 16},
}

RECIPES: dict[str, dict[str, RecipeValues]] = {
    DEFAULT_RECIPE: {"in_domain": RecipeValues(), "cross_domain": RecipeValues(), "cross_modality": RecipeValues()},
    "hs3bench": {
        "in_domain": RecipeValues(
            {**_HS3_TRAINING, "model": "runet", "input": "raw"}, _HS3_DATASETS,
            {**_HYPERSEG_UNETS, "deeplabv3plus": {"model_options": {"decoder": "vainf"}}},
        ),
        "cross_modality": RecipeValues(_HS3_TRAINING, _HS3_DATASETS),
    },
    "cross_domain_2026": {
        "in_domain": RecipeValues({**_STUDY_TRAINING, "model": "runet", "input": "raw"}, _STUDY_DATASETS,
                                  _HYPERSEG_UNETS),
        "cross_domain": RecipeValues(
            {**_STUDY_TRAINING, "head": "runet", "feature_input": "raw"}, _STUDY_DATASETS,
            {m: {"head_options": v["model_options"]} for m, v in _HYPERSEG_UNETS.items()}, model_key="head",
        ),
        "cross_modality": RecipeValues(_STUDY_TRAINING, _STUDY_DATASETS),
    },
}
"""Preset name -> strategy -> its values. A strategy missing from a preset cannot take that preset."""


def recipe_options(
    strategy: str, defaults: Mapping[str, Any], user: Mapping[str, Any], dataset: str | None = None
) -> dict[str, Any]:
    """The option values of the preset named by ``user['recipe']`` (or the default's), to merge under ``user``.

    Strategies without a ``recipe`` option get none. ``dataset`` selects per-dataset values (batch
    size, precision); without it (a suite checking its variants) only the dataset-free values are expanded.
    """
    if "recipe" not in defaults:
        return {}
    name = str(user.get("recipe", defaults["recipe"]))
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}{did_you_mean(name, RECIPES)}; valid: {', '.join(sorted(RECIPES))}")
    presets = RECIPES[name]
    if strategy not in presets:
        offered = sorted(n for n, p in RECIPES.items() if strategy in p)
        raise ConfigError(f"recipe {name!r} has no values for strategy {strategy!r}; its recipes: {', '.join(offered)}")
    return presets[strategy].expand(defaults, user, dataset)


def recipe_rows(name: str, strategy: str) -> Iterator[tuple[str, Any]]:
    """``(row key, value)`` for every value of a preset, as docs/recipes.md names its rows: ``option``,
    ``option [dataset]`` or ``option [model]``."""
    preset = RECIPES[name][strategy]
    yield from preset.values.items()
    for dataset, values in preset.by_dataset.items():
        yield from ((f"{k} [{dataset}]", v) for k, v in values.items())
    for model, values in preset.by_model.items():
        yield from ((f"{k} [{model}]", v) for k, v in values.items())
