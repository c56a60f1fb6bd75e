"""Input transforms are fitted on training pixels only and behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from hsbench.data.transforms import build_transform, collect_labelled_pixels
from hsbench.errors import ConfigError


def test_standardize_gives_zero_mean_unit_variance_on_fit_pixels() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.normal([1.0, -2.0, 5.0], [0.5, 2.0, 0.1], size=(5000, 3))
    t = build_transform("standardize").fit(pixels)
    out = t.apply_pixels(pixels)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-4)


def test_standardize_constant_band_is_not_divided_by_zero() -> None:
    pixels = np.column_stack([np.ones(100), np.arange(100.0)])
    out = build_transform("standardize").fit(pixels).apply_pixels(pixels)
    assert np.isfinite(out).all() and np.allclose(out[:, 0], 0)


def test_pca_projects_to_whitened_components_and_cube_shape() -> None:
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(2000, 2)) * [3.0, 1.0]
    pixels = latent @ rng.normal(size=(2, 6)) + 0.01 * rng.normal(size=(2000, 6))
    t = build_transform("pca=2").fit(pixels)
    out = t.apply_pixels(pixels)
    np.testing.assert_allclose(np.cov(out.T), np.eye(2), atol=0.05)
    cube = pixels[:20].T.reshape(6, 4, 5).astype(np.float32)
    assert t.apply(cube).shape == (2, 4, 5)
    np.testing.assert_allclose(t.apply(cube).reshape(2, -1).T, out[:20], rtol=1e-4, atol=1e-4)


def test_raw_is_identity() -> None:
    cube = np.random.default_rng(2).random((4, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(build_transform("raw").fit(cube.reshape(4, -1).T).apply(cube), cube)


@pytest.mark.parametrize("spec", ["pca", "pca=0", "pca=x", "zscore", "raw=3"])
def test_bad_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        build_transform(spec)


def test_pca_with_more_components_than_bands_is_refused() -> None:
    with pytest.raises(ConfigError, match="pca=9"):
        build_transform("pca=9").fit(np.random.default_rng(0).random((50, 4)))


def test_collect_labelled_pixels_skips_ignored_and_subsamples(tiny_dataset) -> None:
    samples = [tiny_dataset.load(i) for i in tiny_dataset.sample_ids[:3]]
    x, y = collect_labelled_pixels(samples, 255, max_pixels=10**9, rng=np.random.default_rng(0))
    assert len(y) == sum(int((s.labels != 255).sum()) for s in samples)
    assert (y != 255).all() and x.shape == (len(y), 6)
    xs, ys = collect_labelled_pixels(samples, 255, max_pixels=100, rng=np.random.default_rng(0))
    assert xs.shape == (100, 6) and len(ys) == 100
