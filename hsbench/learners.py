"""Learners: fit a classifier on transformed cubes of a train view, select on val, predict dense labels.

Strategies compose a learner with whatever produces the input channels (raw bands, PCA, frozen foundation-model
features). Two families: dense networks from ``MODELS`` trained by the engine, and per-pixel classifiers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.svm import SVC

from hsbench.config_files import require_choice
from hsbench.data.card import DatasetCard
from hsbench.data.transforms import PixelTransform, collect_labelled_pixels
from hsbench.engine import EngineConfig, Trainer
from hsbench.evaluation import view_miou
from hsbench.losses import CLASS_WEIGHTINGS, LOSS_REDUCTIONS, LossFn, class_weights, cross_entropy, label_histogram
from hsbench.precision import check_precision
from hsbench.registry import MODELS, lookup
from hsbench.strategy import RunContext, SplitView, blank_unreadable, readable_mask

if TYPE_CHECKING:
    from hsbench.saved_model import ModelState

__all__ = ["Learner", "DenseNetworkLearner", "SvmLearner", "TransformedView", "TRAINING_DEFAULTS", "engine_config",
           "svc_from_state", "svc_state", "training_loss"]


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing memory with ``array`` when it is writable and contiguous, else with a copy of it."""
    return torch.from_numpy(np.require(array, requirements=["C", "W"]))


class Learner:
    """Fits on ``transform(cube)`` of the train view; predicts ``(H, W)`` labels from a transformed cube."""

    def __init__(self, cfg: dict[str, Any], ctx: RunContext, card: DatasetCard) -> None:
        self.cfg, self.ctx, self.card = cfg, ctx, card

    def fit(self, transform: PixelTransform, train: SplitView, val: SplitView) -> dict[str, Any]:
        raise NotImplementedError

    def predict(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def model_state(self) -> ModelState:
        """The fitted classifier as tensors and JSON facts (:mod:`hsbench.saved_model`), nothing pickled."""
        raise NotImplementedError

    def restore(self, transform: PixelTransform, state: ModelState) -> None:
        """Rebuild the fitted classifier from :meth:`model_state`; ``transform`` is the restored input map."""
        raise NotImplementedError

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {}

    @classmethod
    def spatial_context(cls, cfg: Mapping[str, Any]) -> int:
        """How far (pixels) beyond a labelled pixel its prediction reads: a disjoint split's guard band must be
        at least this wide (:meth:`hsbench.strategy.Strategy.spatial_context`)."""
        raise NotImplementedError


class TransformedView(torch.utils.data.Dataset):
    """Torch dataset of ``(transformed cube, labels)`` pairs of a view for training.

    Transformed samples are kept in memory up to a byte budget (beyond it they are re-read and re-transformed,
    so large datasets never sit in memory). With few labelled images an epoch would be one or two optimiser
    steps, so the view is repeated to at least ``min_items`` items per epoch. With ``crop_size`` each item is a
    random square crop (needed for scene datasets: one large image with sparse labels), drawn from ``rng``.

    Every item is blanked outside the view's readable pixels after the transform (:func:`blank_unreadable`): a
    scene's val and test pixels and the guard band sit inside the crops, and their spectra would otherwise enter
    the forward pass, BatchNorm statistics and the features of nearby train pixels. Train images of segmentation
    datasets are readable whole, so nothing changes there; a transductive run passes ``view.transductive()``.
    """

    def __init__(
        self,
        view: SplitView,
        transform: Callable[[np.ndarray], np.ndarray],
        *,
        out_channels: int,
        min_items: int = 0,
        crop_size: int | None = None,
        rng: np.random.Generator | None = None,
        cache_bytes: int = 2**30,
    ) -> None:
        self.view, self.transform, self.ids = view, transform, list(view.sample_ids)
        self.out_channels = out_channels  # sizes the cache budget; the transform's own channels(num_bands)
        self.length = max(len(self.ids), min_items)
        self.crop_size, self.rng = crop_size, rng or np.random.default_rng(0)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._budget = cache_bytes

    def __len__(self) -> int:
        return self.length

    def _window(self, h: int, w: int) -> tuple[slice, slice]:
        if self.crop_size is None:
            return slice(0, h), slice(0, w)
        size_h, size_w = min(self.crop_size, h), min(self.crop_size, w)
        top = int(self.rng.integers(0, h - size_h + 1))
        left = int(self.rng.integers(0, w - size_w + 1))
        return slice(top, top + size_h), slice(left, left + size_w)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index %= len(self.ids)
        item = self._cache.get(index)
        if item is None:
            sample = self.view.load(self.ids[index])
            size = sample.labels.size * (self.out_channels * 4 + 8)
            if size > self._budget:
                # Too large to keep: crop the (memory-mapped) raw cube first, so only the crop is read and
                # transformed.
                rows, cols = self._window(*sample.labels.shape)
                readable = readable_mask(self.view, sample.id)
                cube = self.transform(np.asarray(sample.cube[:, rows, cols]))
                cube = blank_unreadable(cube, None if readable is None else readable[rows, cols])
                return _tensor(cube), _tensor(sample.labels[rows, cols])
            cube = blank_unreadable(self.transform(sample.cube), readable_mask(self.view, sample.id))
            item = self._cache[index] = _tensor(cube), _tensor(sample.labels)
            self._budget -= size
        rows, cols = self._window(*item[1].shape)
        return item[0][:, rows, cols], item[1][rows, cols]


SCENE_CROP_SIZE = 64
"""Side of the random training crops that ``crop_size="auto"`` gives on scene datasets."""


def resolve_crop_size(option: int | str | None, card: DatasetCard) -> int | None:
    """``auto``: full images for segmentation datasets, 64-pixel crops for scene datasets."""
    if option == "auto":
        return SCENE_CROP_SIZE if card.task == "scene" else None
    return None if option is None else int(option)


def crop_context(option: int | str | None) -> int:
    """Spatial context on a scene of a dense network trained on ``crop_size=option`` crops: half the crop side.

    ``None`` (whole images) has no bound a guard band could meet, so it counts as the ``auto`` crop.
    """
    size = SCENE_CROP_SIZE if option in ("auto", None) else int(option)
    return size // 2


TRAINING_DEFAULTS: dict[str, Any] = {
    # The HS3-Bench recipe (AdamW, lr 1e-3, no weight decay, best val J_M) with epochs cut for CPU.
    "epochs": 40,
    "batch_size": 8,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "schedule": "cosine",
    "grad_clip_norm": 1.0,  # none / 0: no clipping (HS3-Bench has none)
    "early_stopping_patience": 15,
    "hflip_p": None,  # None: the network's recipe (RU-Net 0.1, others 0.0)
    # With few labelled images an epoch is repeated to at least this many optimiser steps.
    "min_steps_per_epoch": 4,
    "crop_size": "auto",  # full images for segmentation datasets, 64-pixel crops for scenes
    # Loss and precision (hsbench.losses, hsbench.precision). HS3-Bench: class_weighting none (ins / isns
    # offered), loss_reduction all, precision fp32 (fp16 on HCV2), grad_clip_norm none.
    "class_weighting": "none",  # none | ins | isns, from the labelled train pixels
    "loss_reduction": "labelled",  # labelled | all (the mean over every pixel, ignored ones included)
    "precision": "bf16",  # bf16 | fp16 | fp32 autocast on CUDA; CPU trains in fp32
}
"""Training options shared by every strategy that trains a dense network (merge into ``Strategy.defaults``)."""


def _option(cfg: dict[str, Any], name: str) -> Any:
    """``cfg[name]``, or its shared default for recipes that predate the option (e.g. synthetic RGB pretraining)."""
    return cfg.get(name, TRAINING_DEFAULTS[name])


def grad_clip(value: Any) -> float | None:
    """``grad_clip_norm`` as the engine takes it: ``None``, ``0`` and ``"none"`` all disable clipping."""
    if value is None or value == 0 or (isinstance(value, str) and value.lower() == "none"):
        return None
    return float(value)


def engine_config(cfg: dict[str, Any], *, hflip_default: float = 0.0, optimizer: str = "adamw") -> EngineConfig:
    """The engine recipe of the :data:`TRAINING_DEFAULTS` options (``hflip_p`` None -> ``hflip_default``)."""
    hflip = cfg["hflip_p"]
    return EngineConfig(
        epochs=int(cfg["epochs"]),
        batch_size=int(cfg["batch_size"]),
        lr=float(cfg["lr"]),
        weight_decay=float(cfg["weight_decay"]),
        schedule=str(cfg["schedule"]),
        grad_clip_norm=grad_clip(cfg["grad_clip_norm"]),
        early_stopping_patience=cfg["early_stopping_patience"],
        hflip_p=float(hflip_default if hflip is None else hflip),
        optimizer=optimizer,
        precision=str(_option(cfg, "precision")),
    )


def check_loss_options(cfg: dict[str, Any]) -> tuple[str, str]:
    """``class_weighting`` and ``loss_reduction``, checked (with ``precision``) before any data is read."""
    check_precision(str(_option(cfg, "precision")))
    return (require_choice("class_weighting", _option(cfg, "class_weighting"), CLASS_WEIGHTINGS),
            require_choice("loss_reduction", _option(cfg, "loss_reduction"), LOSS_REDUCTIONS))


def training_loss(cfg: dict[str, Any], train: SplitView, card: DatasetCard) -> LossFn:
    """The cross-entropy of the ``class_weighting`` and ``loss_reduction`` options.

    Class weights count the labelled pixels of the train view only (``SplitView.load`` already sets every pixel
    outside the train part to the ignore index), read once before training, without augmentation or crops.
    """
    weighting, reduction = check_loss_options(cfg)
    weights = None
    if CLASS_WEIGHTINGS[weighting] is not None:
        histogram = label_histogram((train.load(i).labels for i in train.sample_ids), card.num_classes)
        weights = class_weights(weighting, histogram)
    return cross_entropy(card.ignore_index, weights, reduction)


class DenseNetworkLearner(Learner):
    """A segmentation network from ``MODELS`` trained by the engine with model selection on val mIoU."""

    @classmethod
    def spatial_context(cls, cfg: Mapping[str, Any]) -> int:
        """Half the training crop (32 px at 64)."""
        return crop_context(cfg["crop_size"])

    def __init__(self, cfg: dict[str, Any], ctx: RunContext, card: DatasetCard) -> None:
        super().__init__(cfg, ctx, card)
        check_loss_options(cfg)  # a misspelt option fails at construction, not after the data is loaded

    def _build(self, transform: PixelTransform) -> torch.nn.Module:
        model_cls = lookup(MODELS, self.cfg["model"])
        options = dict(self.cfg["model_options"])
        return model_cls(transform.channels(self.card.num_bands), self.card.num_classes, **options)

    def fit(self, transform: PixelTransform, train: SplitView, val: SplitView) -> dict[str, Any]:
        hflip = getattr(lookup(MODELS, self.cfg["model"]), "recipe_hflip_p", 0.0)
        return self.fit_network(self._build(transform), transform, train, val, hflip_default=hflip)

    def model_state(self) -> ModelState:
        """The selected (best val) weights, as the engine left them loaded after ``fit``; the memory layout they
        were trained and evaluated in goes to the JSON facts, so a restored network computes the same floats."""
        from hsbench.saved_parts import module_state

        state = module_state(self.network)
        state.meta["channels_last"] = bool(getattr(self, "channels_last", False))
        return state

    def restore(self, transform: PixelTransform, state: ModelState) -> None:
        self.restore_network(self._build(transform), state)

    def restore_network(self, network: torch.nn.Module, state: ModelState) -> None:
        """Load ``state`` (:meth:`model_state`) into ``network``, an untrained copy of the fitted architecture, on
        the context's device and in the memory layout of training; in eval mode, as ``predict`` uses it."""
        from hsbench.saved_parts import load_module

        self.channels_last = bool(state.meta.get("channels_last", False))
        network = network.to(self.ctx.device)
        if self.channels_last:
            network = network.to(memory_format=torch.channels_last)
        self.network = load_module(network, state)

    def fit_network(
        self,
        network: torch.nn.Module,
        transform: Any,
        train: SplitView,
        val: SplitView,
        *,
        hflip_default: float = 0.0,
        optimizer: str = "adamw",
    ) -> dict[str, Any]:
        """Train ``network`` (its frozen parameters stay as they are) on ``transform(cube)``; facts to store."""
        self.network = network.to(self.ctx.device)
        cfg = engine_config(self.cfg, hflip_default=hflip_default, optimizer=optimizer)
        self.channels_last = cfg.channels_last  # the layout the selected weights were evaluated in (model_state)
        trainer = Trainer(self.network, cfg, self.ctx, ignore_index=self.card.ignore_index,
                          loss_fn=training_loss(self.cfg, train, self.card))
        result = trainer.fit(
            TransformedView(
                train,
                transform.apply,
                out_channels=transform.channels(self.card.num_bands),
                min_items=int(self.cfg["min_steps_per_epoch"]) * cfg.batch_size,
                crop_size=resolve_crop_size(self.cfg["crop_size"], self.card),
                rng=self.ctx.seeds.rng("augment"),
            ),
            evaluate=lambda _model: view_miou(lambda s: self.predict(transform.apply(s.cube)), val),
        )
        return {
            "best_val_miou": result.best_score,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_reason": result.stopped_reason,
            "parameters": sum(p.numel() for p in self.network.parameters()),
            "trainable_parameters": sum(p.numel() for p in self.network.parameters() if p.requires_grad),
            **result.curve(),
        }

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        was_training = self.network.training
        self.network.eval()
        x = _tensor(features)[None].to(self.ctx.device)
        logits = self.network(x)
        self.network.train(was_training)
        return logits.argmax(1)[0].cpu().numpy().astype(np.int64)

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [4, 8, 16]),
        }


class SvmLearner(Learner):
    """RBF SVM on (standardised) pixel spectra; C chosen on val mIoU unless fixed."""

    @classmethod
    def spatial_context(cls, cfg: Mapping[str, Any]) -> int:
        """0: one spectrum per pixel."""
        return 0

    def fit(self, transform: PixelTransform, train: SplitView, val: SplitView) -> dict[str, Any]:
        features, labels = self.training_pixels(transform, train)
        grid = [self.cfg["svm_c"]] if self.cfg["svm_c"] is not None else list(self.cfg["svm_c_grid"])
        scores: dict[float, float] = {}
        best: tuple[float, SVC] | None = None
        for c in grid:
            self.svm = SVC(C=float(c), kernel="rbf", gamma=self.cfg["svm_gamma"], random_state=0)
            self.svm.fit(features, labels)
            scores[float(c)] = view_miou(lambda s: self.predict(transform.apply(s.cube)), val)
            if best is None or scores[float(c)] > scores[best[0]]:
                best = (float(c), self.svm)
        assert best is not None
        self.svm, self.svm_c = best[1], best[0]
        self.ctx.logger.info("svm: val mIoU by C %s -> C=%g", scores, best[0])
        return {"best_val_miou": scores[best[0]], "svm_c": best[0], "train_pixels": len(labels), "val_by_c": scores}

    def training_pixels(self, transform: PixelTransform, train: SplitView) -> tuple[np.ndarray, np.ndarray]:
        """The SVM's ``(N, F)`` training features and ``(N,)`` labels: at most ``svm_max_pixels`` labelled train
        pixels (uniformly subsampled with the ``order`` stream), here each pixel's transformed spectrum."""
        pixels, labels = collect_labelled_pixels(
            train, self.card.ignore_index, max_pixels=int(self.cfg["svm_max_pixels"]), rng=self.ctx.seeds.rng("order")
        )
        return transform.apply_pixels(pixels), labels

    def pixel_features(self, features: np.ndarray) -> np.ndarray:
        """``(F, H, W)`` SVM features of every pixel of a transformed ``(C', H, W)`` cube whose pixels are all
        readable (a predicted image): here the transformed spectra themselves."""
        return features

    def predict(self, features: np.ndarray) -> np.ndarray:
        features = self.pixel_features(features)
        c, h, w = features.shape
        flat = features.reshape(c, -1).T
        out = np.concatenate([self.svm.predict(chunk) for chunk in np.array_split(flat, max(1, len(flat) // 50_000))])
        return out.reshape(h, w).astype(np.int64)

    def model_state(self) -> ModelState:
        state = svc_state(self.svm)
        state.meta["selected_c"] = self.svm_c
        return state

    def restore(self, transform: PixelTransform, state: ModelState) -> None:
        self.svm, self.svm_c = svc_from_state(state), float(state.meta["selected_c"])

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {"svm_c": trial.suggest_float("svm_c", 0.1, 1000.0, log=True)}


def svc_state(svm: SVC) -> ModelState:
    """A fitted scikit-learn ``SVC`` without pickle: every fitted array (support vectors, dual coefficients,
    intercepts, class counts, classes, the resolved gamma...) as a tensor, every other attribute as JSON.

    All of the estimator's attributes are kept, not a chosen few, so the rebuilt SVC (:func:`svc_from_state`) runs
    libsvm's ``predict`` on exactly the fitted inputs. An attribute of another type is refused rather than dropped.
    """
    from hsbench.saved_model import ModelState

    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, str] = {}  # NumPy scalars (the resolved _gamma): 0-d tensors, and their dtype
    attributes: dict[str, Any] = {}
    tuples: list[str] = []
    for name, value in vars(svm).items():
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise TypeError(f"SVC attribute {name} is an object array; it cannot be saved without pickle")
            arrays[name] = np.array(value, copy=True)  # own memory: _dual_coef_ may be dual_coef_ itself
        elif isinstance(value, np.generic):
            arrays[name], scalars[name] = np.array(value), value.dtype.str
        elif isinstance(value, tuple):
            attributes[name], tuples = list(value), [*tuples, name]
        elif value is None or isinstance(value, bool | int | float | str):
            attributes[name] = value
        else:
            raise TypeError(f"SVC attribute {name} ({type(value).__name__}) cannot be saved without pickle")
    meta = {"attributes": attributes, "tuples": tuples, "scalars": scalars, "sklearn": _sklearn_version()}
    return ModelState(ModelState.arrays(arrays), meta)


def svc_from_state(state: ModelState) -> SVC:
    """The ``SVC`` of :func:`svc_state`, with its fitted attributes set (``predict`` answers as the fitted one)."""
    meta = state.meta
    svm = SVC()
    for name, value in meta["attributes"].items():
        setattr(svm, name, tuple(value) if name in meta["tuples"] else value)
    for name, tensor in state.tensors.items():
        array = tensor.numpy().copy()
        setattr(svm, name, array.reshape(())[()] if name in meta["scalars"] else array)
    return svm


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__
