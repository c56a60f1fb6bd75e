"""HSI -> RGB adapters: colorimetry facts, neutral grey, sensor coverage, fitting on train pixels only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hsbench.adapters import ADAPTERS, build_adapter, cie_cmf, d65_spd, linear_srgb_weights, visible_coverage
from hsbench.data.synthetic_datasets import SyntheticAerial, SyntheticDrive, SyntheticHyko
from hsbench.data.transforms import collect_labelled_pixels
from hsbench.errors import ConfigError
from hsbench.seeding import SeedStreams
from hsbench.strategy import RunContext, SplitView

torch.set_num_threads(1)

# CIE 1931 2-degree colour matching functions as tabulated by the CIE (x-bar, y-bar, z-bar).
CIE_1931_TABLE = {
    440: (0.34828, 0.02300, 1.74706),
    450: (0.33620, 0.03800, 1.77211),
    500: (0.00490, 0.32300, 0.27200),
    555: (0.51205, 1.00000, 0.00575),
    600: (1.06220, 0.63100, 0.00080),
    650: (0.28350, 0.10700, 0.00000),
}


def test_cmf_fit_matches_the_cie_1931_table() -> None:
    for wavelength, expected in CIE_1931_TABLE.items():
        np.testing.assert_allclose(cie_cmf(np.array([wavelength]))[:, 0], expected, atol=0.02)


def test_d65_white_point_chromaticity() -> None:
    grid = np.arange(380.0, 781.0)
    x, y, z = (cie_cmf(grid) * d65_spd(grid)).sum(axis=1)
    # D65 white point of the 2-degree observer: x = 0.3127, y = 0.3290.
    assert x / (x + y + z) == pytest.approx(0.3127, abs=1e-3)
    assert y / (x + y + z) == pytest.approx(0.3290, abs=1e-3)


@pytest.mark.parametrize("card", [SyntheticHyko.card, SyntheticAerial.card], ids=["hyko", "aerial"])
def test_flat_reflectance_renders_neutral_grey(card) -> None:
    adapter = build_adapter("cie", card)
    rng = np.random.default_rng(0)
    adapter.fit(rng.uniform(0.0, 1.0, size=(500, card.num_bands)))
    levels = np.array([0.05, 0.2, 0.5, 0.9])
    rgb = adapter.apply_pixels(np.repeat(levels[:, None], card.num_bands, axis=1))
    np.testing.assert_allclose(rgb, np.repeat(rgb[:, :1], 3, axis=1), atol=1e-9)  # R = G = B
    assert np.all(np.diff(rgb[:, 0]) > 0)  # brighter reflectance, brighter grey


def test_flat_reflectance_is_grey_in_any_band_order() -> None:
    wavelengths = np.random.default_rng(3).permutation(np.linspace(420, 720, 16))
    weights = linear_srgb_weights(tuple(wavelengths))
    np.testing.assert_allclose(weights @ np.full(16, 0.4), [0.4, 0.4, 0.4], atol=1e-12)


def test_long_wavelength_reflectance_renders_red() -> None:
    card = SyntheticAerial.card
    red = (np.asarray(card.wavelengths_nm) >= 610).astype(float)[None]
    adapter = build_adapter("cie", card)
    adapter.exposure = 1.0
    adapter.fitted = True
    r, g, b = adapter.apply_pixels(red)[0]
    assert r > 0.5 and r > 2 * g and r > 2 * b


def test_cie_refuses_sensors_without_the_visible_range() -> None:
    card = SyntheticDrive.card  # HSI-Drive bands: 679-956 nm
    assert visible_coverage(card.wavelengths_nm, card.fwhm_nm).luminance < 0.1
    with pytest.raises(ConfigError, match="400-700 nm.*prgb"):
        build_adapter("cie", card)


def test_visible_sensors_are_accepted() -> None:
    assert visible_coverage(SyntheticHyko.card.wavelengths_nm).luminance > 0.9  # HyKo2-VIS 468-643 nm
    build_adapter("cie", SyntheticHyko.card)


def test_unknown_adapter_and_options_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="adapters are"):
        build_adapter("rgb", SyntheticHyko.card)
    with pytest.raises(ConfigError, match="adapter_options"):
        build_adapter("prgb", SyntheticHyko.card, {"gamma": 2.2})


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_adapter_is_per_pixel_and_bounded(tiny_dataset, name: str) -> None:
    card = dataclasses.replace(tiny_dataset.card, wavelengths_nm=tuple(np.linspace(450, 700, 6)))
    adapter = build_adapter(name, card)
    cube = np.asarray(tiny_dataset.load(tiny_dataset.sample_ids[0]).cube)
    adapter.fit(cube.reshape(6, -1).T)
    out = adapter.apply(cube)
    assert out.dtype == np.float32 and out.shape == (adapter.channels(6), *cube.shape[1:])
    # No per-image statistics: a pixel's output does not depend on the other pixels of the image.
    changed = cube.copy()
    changed[:, 5:, :] *= 10.0
    np.testing.assert_array_equal(adapter.apply(changed)[:, :5], out[:, :5])
    if name != "learned":
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_learned_adapter_starts_as_pseudo_rgb_and_trains(tiny_dataset) -> None:
    card = tiny_dataset.card
    cube = np.asarray(tiny_dataset.load(tiny_dataset.sample_ids[0]).cube)
    pixels = cube.reshape(card.num_bands, -1).T
    learned, prgb = build_adapter("learned", card).fit(pixels), build_adapter("prgb", card).fit(pixels)
    conv = learned.module()
    assert conv.weight.requires_grad and conv.weight.shape == (3, card.num_bands, 1, 1)
    with torch.no_grad():
        mapped = conv(torch.from_numpy(learned.apply(cube))[None])[0].numpy()
    inside = (mapped >= 0) & (mapped <= 1)  # prgb clips; the linear layer does not
    np.testing.assert_allclose(mapped[inside], prgb.apply(cube)[inside], atol=1e-5)


def test_strategy_fits_the_adapter_on_labelled_train_pixels_only(tmp_path, tiny_dataset, monkeypatch) -> None:
    from hsbench.learners import DenseNetworkLearner
    from strategies.cross_modality import CrossModality

    loaded: list[str] = []
    load = tiny_dataset.load
    monkeypatch.setattr(tiny_dataset, "load", lambda sample_id: loaded.append(sample_id) or load(sample_id))
    monkeypatch.setattr(CrossModality, "pretrained_network", lambda self: (torch.nn.Conv2d(3, 4, 1), {}))
    monkeypatch.setattr(DenseNetworkLearner, "fit_network", lambda self, *args, **kwargs: {})

    split = tiny_dataset.card.official()
    train_masks = {i: np.random.default_rng(1).random((24, 32)) < 0.3 for i in split.train}
    train = SplitView(tiny_dataset, train_masks, "train")
    val = SplitView(tiny_dataset, dict.fromkeys(split.val), "val")
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)
    strategy = CrossModality({**CrossModality.defaults, "adapter": "prgb"}, ctx, tiny_dataset.card)
    strategy.fit(train, val)

    assert set(loaded) == set(split.train)  # val and test images were never read
    pixels, _ = collect_labelled_pixels(train, tiny_dataset.card.ignore_index, max_pixels=200_000,
                                        rng=ctx.seeds.rng("order"))
    expected = build_adapter("prgb", tiny_dataset.card).fit(pixels)
    np.testing.assert_allclose(strategy.adapter.scaling.offset, expected.scaling.offset)
    np.testing.assert_allclose(strategy.adapter.scaling.scale, expected.scaling.scale)
