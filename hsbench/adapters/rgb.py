"""Adapters from hyperspectral cubes to the three channels an RGB-pretrained network expects.

Every adapter is fitted on training pixels only (``fit`` gets the labelled pixels of the train view) and then
applied unchanged to every image, so no statistic depends on validation or test pixels or on the image being
predicted. Outputs are RGB-like images in ``[0, 1]``; the RGB network applies its own pretraining normalisation
(ImageNet mean / std) after that.

* ``prgb``: the card's three pseudo-RGB bands (HS3-Bench's input), each scaled by robust percentiles.
* ``cie``: a true-colour sRGB rendering under D65 (:mod:`hsbench.adapters.colorimetry`), with one exposure
  fitted on training pixels; refused for sensors that miss most of the visible range (e.g. HSI-Drive).
* ``pca3``: the first three principal components of the training pixels, robustly scaled.
* ``learned``: a trainable 1x1 convolution from all bands to three channels, initialised to reproduce ``prgb``
  (without its clipping); the adapter is trained with the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn as nn

from hsbench.adapters.colorimetry import linear_srgb_weights, srgb_encode, visible_coverage
from hsbench.data.card import DatasetCard
from hsbench.data.transforms import build_transform
from hsbench.errors import ConfigError, DataError

if TYPE_CHECKING:
    from hsbench.saved_model import ModelState

__all__ = ["Adapter", "ADAPTERS", "build_adapter", "RobustScaling", "PseudoRGB", "CIERendering", "PCA3", "Learned"]


class RobustScaling:
    """Per-channel affine map of the ``low``-th .. ``high``-th training percentiles onto ``[0, 1]``.

    Percentiles rather than min / max, so a few saturated or dead pixels do not compress every other value.
    """

    def __init__(self, percentiles: tuple[float, float] = (1.0, 99.0)) -> None:
        self.percentiles = percentiles
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, values: np.ndarray) -> RobustScaling:
        """Fit on ``(N, K)`` values."""
        low, high = np.percentile(values, self.percentiles, axis=0)
        span = high - low
        self.offset = low
        self.scale = 1.0 / np.where(span > 1e-12, span, 1.0)  # a constant channel maps to 0, not to inf
        return self

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Scaled ``(N, K)`` values, unclipped."""
        assert self.offset is not None and self.scale is not None, "fit the scaling first"
        return (values - self.offset) * self.scale

    def model_state(self) -> ModelState:
        """The fitted offsets and scales (float64, as fitted) for a saved model."""
        from hsbench.saved_model import ModelState

        return ModelState(ModelState.arrays({"offset": self.offset, "scale": self.scale}),
                          {"percentiles": list(self.percentiles)})

    def restore(self, state: ModelState) -> RobustScaling:
        self.offset, self.scale = _required(state, "offset"), _required(state, "scale")
        return self


def _required(state: ModelState, key: str) -> np.ndarray:
    array = state.array(key)
    if array is None:
        raise DataError(f"the saved model lacks the adapter tensor {key!r}")
    return np.array(array)


class Adapter:
    """Maps a cube ``(C, H, W)`` to the network input; fitted on ``(N, C)`` training pixels.

    The interface matches :class:`hsbench.data.transforms.PixelTransform` (``apply``, ``channels``), so the
    shared training views can use an adapter directly. ``module()`` is the adapter's trainable part, put in front
    of the network (identity for the fixed adapters).

    Args:
        card: the target dataset's card (wavelengths, pseudo-RGB bands).
    """

    name: ClassVar[str] = ""

    def __init__(self, card: DatasetCard) -> None:
        self.card = card
        self.fitted = False

    def fit(self, pixels: np.ndarray) -> Adapter:
        """Fit on labelled training pixels ``(N, C)`` in cube band order."""
        if pixels.ndim != 2 or len(pixels) == 0:
            raise DataError(f"cannot fit the {self.name} adapter: the train split has no labelled pixels")
        self._fit(np.asarray(pixels, dtype=np.float64))
        self.fitted = True
        return self

    def _fit(self, pixels: np.ndarray) -> None:
        raise NotImplementedError

    def apply_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """``(N, C)`` pixels to ``(N, C')`` network inputs."""
        raise NotImplementedError

    def apply(self, cube: np.ndarray) -> np.ndarray:
        """A cube ``(C, H, W)`` to the network input ``(C', H, W)`` float32."""
        if not self.fitted:
            raise RuntimeError(f"the {self.name} adapter must be fitted on training pixels before use")
        c, h, w = cube.shape
        flat = np.asarray(cube, dtype=np.float32).reshape(c, -1).T
        return np.ascontiguousarray(self.apply_pixels(flat).T.reshape(-1, h, w), dtype=np.float32)

    def channels(self, in_channels: int) -> int:
        return 3

    def module(self) -> nn.Module:
        return nn.Identity()

    def describe(self) -> dict[str, Any]:
        """Facts to store with the run."""
        return {"adapter": self.name}

    def model_state(self) -> ModelState:
        """The fitted adapter for a saved model (:mod:`hsbench.saved_model`): its statistics as tensors. A learned
        adapter's trainable part is not in it: it is a module of the network, saved with the network's weights."""
        if not self.fitted:
            raise RuntimeError(f"the {self.name} adapter must be fitted before it is saved")
        state = self._state()
        state.meta["adapter"] = self.name
        return state

    def restore(self, state: ModelState) -> Adapter:
        """The fitted adapter again, from :meth:`model_state` (a state of another adapter is refused)."""
        if state.meta.get("adapter") != self.name:
            raise DataError(f"the saved model holds a {state.meta.get('adapter')!r} adapter, not {self.name!r}")
        self._restore(state)
        self.fitted = True
        return self

    def _state(self) -> ModelState:
        raise NotImplementedError

    def _restore(self, state: ModelState) -> None:
        raise NotImplementedError


class PseudoRGB(Adapter):
    """The card's pseudo-RGB bands (R, G, B in ``card.pseudo_rgb_bands``), robustly scaled and clipped."""

    name = "prgb"

    def __init__(self, card: DatasetCard, *, percentiles: tuple[float, float] = (1.0, 99.0)) -> None:
        super().__init__(card)
        self.bands = list(card.pseudo_rgb_bands)
        self.scaling = RobustScaling(tuple(percentiles))

    def _fit(self, pixels: np.ndarray) -> None:
        self.scaling.fit(pixels[:, self.bands])

    def apply_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return np.clip(self.scaling(pixels[:, self.bands]), 0.0, 1.0)

    def _state(self) -> ModelState:
        state = self.scaling.model_state()
        state.meta["bands"] = list(self.bands)
        return state

    def _restore(self, state: ModelState) -> None:
        self.bands = [int(b) for b in state.meta.get("bands", self.bands)]
        self.scaling.restore(state)

    def describe(self) -> dict[str, Any]:
        wl = [round(self.card.wavelengths_nm[b], 1) for b in self.bands]
        return {"adapter": self.name, "adapter_bands": self.bands, "adapter_wavelengths_nm": wl}


class CIERendering(Adapter):
    """True-colour sRGB under D65 from the CIE 1931 observer; one exposure fitted on training pixels.

    The exposure maps the ``white_percentile``-th percentile of the training pixels' luminance to 1 (an auto
    exposure: reflectance times illumination has no fixed white level). Refused when the bands see less than
    ``min_luminance_coverage`` of the D65 luminance, since the colours would then be invented.

    Args:
        card: target card.
        min_luminance_coverage: smallest accepted fraction of the visible luminance inside the sensor range.
        white_percentile: luminance percentile that becomes white.
    """

    name = "cie"

    def __init__(
        self, card: DatasetCard, *, min_luminance_coverage: float = 0.8, white_percentile: float = 99.0
    ) -> None:
        super().__init__(card)
        self.coverage = visible_coverage(card.wavelengths_nm, card.fwhm_nm)
        if self.coverage.luminance < min_luminance_coverage:
            raise ConfigError(
                f"adapter cie needs a sensor that covers most of 400-700 nm: {card.name}'s bands span "
                f"{min(card.wavelengths_nm):.0f}-{max(card.wavelengths_nm):.0f} nm, which holds "
                f"{100 * self.coverage.luminance:.0f}% of the D65 luminance (at least "
                f"{100 * min_luminance_coverage:.0f}% needed); use adapter=prgb, pca3 or learned"
            )
        self.weights = linear_srgb_weights(card.wavelengths_nm)  # (3, C)
        self.white_percentile = white_percentile
        self.exposure = 1.0

    def linear(self, pixels: np.ndarray) -> np.ndarray:
        """Unexposed linear sRGB ``(N, 3)``."""
        return pixels @ self.weights.T

    def _fit(self, pixels: np.ndarray) -> None:
        luminance = self.linear(pixels) @ np.array([0.2126, 0.7152, 0.0722])  # Rec. 709 / sRGB luma weights
        white = float(np.percentile(luminance, self.white_percentile))
        self.exposure = 1.0 / white if white > 1e-12 else 1.0

    def apply_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return srgb_encode(self.exposure * self.linear(pixels))

    def _state(self) -> ModelState:
        from hsbench.saved_model import ModelState

        # The colour-matching weights too, so the model renders as trained even if the tables change later.
        return ModelState(ModelState.arrays({"weights": self.weights}), {"exposure": float(self.exposure)})

    def _restore(self, state: ModelState) -> None:
        self.weights, self.exposure = _required(state, "weights"), float(state.meta["exposure"])

    def describe(self) -> dict[str, Any]:
        return {"adapter": self.name, "adapter_exposure": self.exposure,
                "adapter_visible_coverage_xyz": list(self.coverage.xyz)}


class PCA3(Adapter):
    """The first three principal components of the training pixels, robustly scaled and clipped to ``[0, 1]``."""

    name = "pca3"

    def __init__(self, card: DatasetCard, *, percentiles: tuple[float, float] = (1.0, 99.0)) -> None:
        super().__init__(card)
        self.pca = build_transform("pca=3")
        self.scaling = RobustScaling(tuple(percentiles))

    def _fit(self, pixels: np.ndarray) -> None:
        self.pca.fit(pixels)
        self.scaling.fit(self.pca.apply_pixels(pixels))

    def apply_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return np.clip(self.scaling(self.pca.apply_pixels(pixels)), 0.0, 1.0)

    def _state(self) -> ModelState:
        from hsbench.saved_model import ModelState
        from hsbench.saved_parts import transform_state

        return ModelState.nest(pca=transform_state(self.pca), scaling=self.scaling.model_state())

    def _restore(self, state: ModelState) -> None:
        from hsbench.saved_parts import transform_from_state

        self.pca = transform_from_state(state.part("pca"))
        self.scaling.restore(state.part("scaling"))


class Learned(Adapter):
    """A trainable 1x1 convolution from all bands to three channels, initialised to ``prgb``'s linear part.

    The cube reaches the network unchanged (``apply`` only casts); the convolution is ``module()``, trained
    with the network. Starting from the pseudo-RGB mapping means the pretrained network first sees the images
    it would see with ``prgb``, and the adapter departs from them only where the gradient says so.
    """

    name = "learned"

    def __init__(self, card: DatasetCard, *, percentiles: tuple[float, float] = (1.0, 99.0)) -> None:
        super().__init__(card)
        self.prgb = PseudoRGB(card, percentiles=percentiles)
        self._module: nn.Conv2d | None = None

    def _fit(self, pixels: np.ndarray) -> None:
        self.prgb.fit(pixels)
        scaling = self.prgb.scaling
        assert scaling.offset is not None and scaling.scale is not None
        weight = np.zeros((3, self.card.num_bands))
        weight[np.arange(3), self.prgb.bands] = scaling.scale
        conv = nn.Conv2d(self.card.num_bands, 3, kernel_size=1)
        with torch.no_grad():
            conv.weight.copy_(torch.as_tensor(weight, dtype=torch.float32)[:, :, None, None])
            conv.bias.copy_(torch.as_tensor(-scaling.offset * scaling.scale, dtype=torch.float32))
        self._module = conv

    def apply_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return pixels.astype(np.float32, copy=False)

    def channels(self, in_channels: int) -> int:
        return in_channels

    def module(self) -> nn.Module:
        if self._module is None:
            raise RuntimeError("fit the learned adapter before asking for its module")
        return self._module

    def _state(self) -> ModelState:
        return self.prgb._state()  # the convolution's trained weights are saved with the network

    def _restore(self, state: ModelState) -> None:
        self.prgb._restore(state)
        self.prgb.fitted = True
        self._module = nn.Conv2d(self.card.num_bands, 3, kernel_size=1)  # the network's saved weights fill it

    def describe(self) -> dict[str, Any]:
        return {**self.prgb.describe(), "adapter": self.name}


ADAPTERS: dict[str, type[Adapter]] = {cls.name: cls for cls in (PseudoRGB, CIERendering, PCA3, Learned)}
"""Adapters by name."""


def build_adapter(name: str, card: DatasetCard, options: dict[str, Any] | None = None) -> Adapter:
    """An unfitted adapter; fails early (before any data is read) when the card cannot support it."""
    if name not in ADAPTERS:
        raise ConfigError(f"unknown adapter {name!r}; adapters are {', '.join(ADAPTERS)}")
    try:
        return ADAPTERS[name](card, **dict(options or {}))
    except TypeError as exc:
        raise ConfigError(f"adapter {name}: bad adapter_options {options}: {exc}") from None
