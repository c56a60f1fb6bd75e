"""in_domain's ``input``: HS3-Bench's pRGB (the fixed RGB adapters) and PCA1 per image (``pca=n,per_image``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_tiny_dataset

from hsbench.adapters.rgb import PCA3, CIERendering, PseudoRGB
from hsbench.data.synthetic_datasets import SyntheticDrive, SyntheticHyko
from hsbench.data.transforms import PerImagePCA, PixelTransform, build_transform
from hsbench.errors import ConfigError, DataError
from hsbench.options import parse_key_values
from hsbench.registry import STRATEGIES, lookup
from hsbench.runner import Runner, RunSpec
from hsbench.seeding import SeedStreams
from hsbench.splits import make_split
from hsbench.strategy import RunContext, SplitView
from strategies.in_domain import build_input

TINY_TRAINING = {"model": "runet", "model_options": {"base_channels": 4}, "epochs": 2, "batch_size": 2,
                 "min_steps_per_epoch": 1}


def _cube(seed: int, bands: int = 8, height: int = 20, width: int = 30) -> np.ndarray:
    """Correlated spectra with an offset far from 0 (so a missing centring would show) and distinct variances."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(height * width, bands)) * np.geomspace(4.0, 0.1, bands)
    pixels = 5.0 + latent @ np.linalg.qr(rng.normal(size=(bands, bands)))[0]
    return pixels.T.reshape(bands, height, width).astype(np.float32)


def _svd_reference(cube: np.ndarray, n: int) -> np.ndarray:
    """Scores of the cube's own top-n components by an SVD of all its centred pixels, signed so that each
    component's largest-magnitude loading is positive (the documented convention)."""
    c, h, w = cube.shape
    pixels = cube.reshape(c, -1).T.astype(np.float64)
    centred = pixels - pixels.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    loadings = vt[:n]
    loadings *= np.sign(loadings[np.arange(n), np.abs(loadings).argmax(axis=1)])[:, None]
    return (centred @ loadings.T).T.reshape(n, h, w)


def _ctx(tmp_path) -> RunContext:
    return RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)


def _in_domain(options: dict, card, tmp_path):
    cls = lookup(STRATEGIES, "in_domain")
    return cls({**cls.defaults, **options}, _ctx(tmp_path), card)


# ------------------------------------------------------------------------------------------ pca=n,per_image
@pytest.mark.parametrize("n", [1, 3])
def test_per_image_pca_equals_an_svd_of_the_image_within_1e4(n: int) -> None:
    cube = _cube(0)
    transform = build_transform(f"pca={n},per_image").fit(cube.reshape(8, -1).T[:50])
    out = transform.apply(cube)
    assert out.shape == (n, 20, 30) and out.dtype == np.float32 and transform.channels(8) == n
    np.testing.assert_allclose(out, _svd_reference(cube, n), rtol=0, atol=1e-4)


def test_per_image_pca_accumulates_over_pixel_blocks(monkeypatch) -> None:
    """Large images are reduced block by block (bounded memory); blocks that do not divide the image still add up."""
    cube = _cube(6)
    whole = build_transform("pca=3,per_image").apply(cube)
    monkeypatch.setattr("hsbench.data.transforms._CHUNK_PIXELS", 7)
    np.testing.assert_allclose(build_transform("pca=3,per_image").apply(cube), whole, rtol=0, atol=1e-5)
    np.testing.assert_allclose(whole, _svd_reference(cube, 3), rtol=0, atol=1e-4)


def test_per_image_pca_matches_scikit_learn_up_to_sign() -> None:
    """The anchor computes ``PCA(n).fit_transform`` per image: same scores; signs differ between sklearn versions."""
    from sklearn.decomposition import PCA

    cube = _cube(1)
    anchor = PCA(2, svd_solver="full").fit_transform(cube.reshape(8, -1).T.astype(np.float64)).T.reshape(2, 20, 30)
    out = build_transform("pca=2,per_image").fit(np.ones((4, 8))).apply(cube)
    np.testing.assert_allclose(np.abs(out), np.abs(anchor), rtol=0, atol=1e-4)


def test_per_image_pca_gives_each_image_its_own_projection() -> None:
    first, second = _cube(2), _cube(3)
    transform = build_transform("pca=2,per_image").fit(first.reshape(8, -1).T)
    out_first, out_second = transform.apply(first), transform.apply(second)
    np.testing.assert_allclose(out_second, _svd_reference(second, 2), rtol=0, atol=1e-4)
    # Projecting the second image on the first image's components (a shared PCA) gives something else.
    centred = second.reshape(8, -1).astype(np.float64) - second.reshape(8, -1).mean(axis=1, keepdims=True)
    _, _, vt = np.linalg.svd(first.reshape(8, -1).T - first.reshape(8, -1).T.mean(axis=0), full_matrices=False)
    shared = (vt[:2] @ centred).reshape(2, 20, 30)
    assert np.abs(np.abs(out_second) - np.abs(shared)).max() > 0.1
    np.testing.assert_array_equal(transform.apply(first), out_first)  # nothing carried over between images


def test_per_image_pca_fits_nothing_on_train_pixels() -> None:
    cube = _cube(4)
    a = build_transform("pca=1,per_image").fit(np.zeros((3, 8)))
    b = build_transform("pca=1,per_image").fit(np.random.default_rng(0).normal(size=(500, 8)) * 100)
    np.testing.assert_array_equal(a.apply(cube), b.apply(cube))
    assert a.state() == {} and a.describe() == {"input_fitted_per_image": True}


def test_per_image_pca_of_a_constant_band_or_image_is_finite() -> None:
    cube = _cube(5)
    cube[3] = 7.0
    out = build_transform("pca=2,per_image").fit(np.ones((2, 8))).apply(cube)
    assert np.isfinite(out).all()
    without = np.delete(cube, 3, axis=0)
    np.testing.assert_allclose(np.abs(out), np.abs(_svd_reference(without, 2)), rtol=0, atol=1e-4)
    flat = build_transform("pca=1,per_image").apply(np.full((4, 5, 6), 3.0, dtype=np.float32))
    np.testing.assert_array_equal(flat, np.zeros((1, 5, 6), dtype=np.float32))


def test_per_image_pca_of_an_image_with_nan_is_a_data_error() -> None:
    cube = _cube(7)
    cube[2, 4, 5] = np.nan
    with pytest.raises(DataError, match="per-image PCA.*NaN"):
        build_transform("pca=1,per_image").apply(cube)


def test_per_image_pca_refuses_more_components_than_bands_and_pooled_pixels() -> None:
    with pytest.raises(ConfigError, match="pca=9,per_image needs at least 9 bands"):
        build_transform("pca=9,per_image").fit(np.ones((10, 8)))
    with pytest.raises(ConfigError, match="pca=9,per_image needs at least 9 bands"):
        build_transform("pca=9,per_image").apply(_cube(0))
    with pytest.raises(ConfigError, match="whole images"):
        build_transform("pca=1,per_image").apply_pixels(np.ones((10, 8)))


@pytest.mark.parametrize("spec", ["pca=1,per-image", "pca=1, per_image", "pca=1,perimage", "pca=,per_image",
                                  "pca=0,per_image"])
def test_misspelt_per_image_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="pca"):
        build_transform(spec)


def test_pca_n_is_still_the_whitened_train_fitted_transform() -> None:
    card = make_tiny_dataset().card
    transform = build_input("pca=3", card)
    assert isinstance(transform, PixelTransform) and transform.kind == "pca" and transform.out_channels == 3
    assert isinstance(build_input("pca=3,per_image", card), PerImagePCA)


def test_per_image_pca_is_refused_on_a_scene(tmp_path) -> None:
    card = make_tiny_dataset(task="scene", num_images=1, height=32, width=32).card
    with pytest.raises(ConfigError, match=r"scene dataset.*val and test pixels.*Use pca=1 \(fitted on the labelled"):
        _in_domain({**TINY_TRAINING, "input": "pca=1,per_image"}, card, tmp_path)
    assert isinstance(_in_domain({**TINY_TRAINING, "input": "pca=1"}, card, tmp_path).transform, PixelTransform)


def test_per_image_pca_is_refused_with_the_svm_and_with_training_crops(tmp_path) -> None:
    card = make_tiny_dataset().card
    with pytest.raises(ConfigError, match="svm classifies pooled pixels"):
        _in_domain({"model": "svm", "input": "pca=1,per_image"}, card, tmp_path)
    with pytest.raises(ConfigError, match="crop_size=auto"):
        _in_domain({**TINY_TRAINING, "input": "pca=1,per_image", "crop_size": 16}, card, tmp_path)


# ------------------------------------------------------------------------------------------------ adapters
@pytest.mark.parametrize(("spec", "cls"), [("prgb", PseudoRGB), ("cie", CIERendering), ("pca3", PCA3)])
def test_rgb_adapter_names_build_the_adapter(spec: str, cls: type) -> None:
    adapter = build_input(spec, SyntheticHyko.card)  # a visible-range sensor, so cie is allowed
    assert type(adapter) is cls and adapter.channels(SyntheticHyko.card.num_bands) == 3


def test_learned_adapter_is_refused_pointing_to_cross_modality() -> None:
    with pytest.raises(ConfigError, match="trainable.*cross_modality"):
        build_input("learned", SyntheticDrive.card)


def test_an_adapter_takes_no_argument() -> None:
    with pytest.raises(ConfigError, match="prgb adapter takes no argument"):
        build_input("prgb=2", SyntheticDrive.card)


def test_unknown_input_lists_every_valid_value() -> None:
    with pytest.raises(ConfigError) as caught:
        build_input("hsi", SyntheticDrive.card)
    listed = str(caught.value).split("valid inputs are ", 1)[1].split(", ")
    assert listed == ["raw", "standardize", "pca=n", "pca=n,per_image", "prgb", "cie", "pca3"]


def test_the_cli_spelling_reaches_in_domain_unchanged() -> None:
    assert parse_key_values(["input=pca=1,per_image"]) == {"input": "pca=1,per_image"}


# --------------------------------------------------------------------------------------- round trips (runet)
@pytest.mark.parametrize(("spec", "channels"), [("pca=1,per_image", 1), ("pca=2,per_image", 2), ("prgb", 3)])
def test_in_domain_runet_trains_and_predicts_on_the_new_inputs(tmp_path, spec: str, channels: int) -> None:
    dataset = SyntheticDrive.open()
    split = make_split(dataset, "fraction=0.05", 0)
    strategy = _in_domain({**TINY_TRAINING, "input": spec}, dataset.card, tmp_path)
    torch.manual_seed(0)
    facts = strategy.fit(SplitView.of(dataset, split, "train"), SplitView.of(dataset, split, "val"))
    assert facts["epochs_run"] == 2
    first_conv = next(m for m in strategy.learner.network.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == channels
    seen: list[torch.Tensor] = []
    hook = strategy.learner.network.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    sample = dataset.load(next(iter(split.parts["test"])))
    prediction = strategy.predict(sample)
    hook.remove()
    assert prediction.shape == sample.labels.shape
    np.testing.assert_array_equal(seen[0][0].numpy(), strategy.transform.apply(sample.cube))
    assert seen[0].shape[1] == channels
    if spec.endswith("per_image"):
        np.testing.assert_allclose(seen[0][0].numpy(), _svd_reference(sample.cube, channels), rtol=0, atol=1e-3)
        assert facts["input_fitted_per_image"] is True
    else:
        assert facts["adapter"] == "prgb"


def test_runner_end_to_end_with_per_image_pca(tmp_path) -> None:
    options = {**TINY_TRAINING, **parse_key_values(["input=pca=1,per_image"])}
    outcome = Runner(tmp_path / "results", progress=False).run(
        RunSpec("synthetic_drive", "in_domain", "fraction=0.05", 0, options))
    assert outcome.status == "completed", outcome.error
    facts = json.loads((outcome.run_dir / "facts.json").read_text())
    assert facts["input_fitted_per_image"] is True and 0.0 <= outcome.test_metrics["miou"] <= 1.0


def test_labels_name_the_input_when_it_changes_what_the_network_sees() -> None:
    from hsbench.strategy import resolve_strategy

    def label(options):
        cls, resolved = resolve_strategy("in_domain", options)
        return cls.label(resolved)

    assert label({"model": "runet"}) == label({"model": "runet", "input": "raw"}) == "in_domain/runet"
    assert label({"model": "runet", "input": "pca=1,per_image"}) == "in_domain/runet/pca=1,per_image"
    assert label({"model": "deeplabv3plus", "input": "prgb"}) == "in_domain/deeplabv3plus/prgb"


def test_sweep_space_of_a_resnet_deeplab_suggests_no_width_multiplier() -> None:
    import optuna

    from strategies.in_domain import InDomain

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    resnet = InDomain.search_space(study.ask(), {"model": "deeplabv3plus",
                                                 "model_options": {"backbone": "resnet101"}})
    mobilenet = InDomain.search_space(study.ask(), {"model": "deeplabv3plus"})
    assert "width_mult" not in resnet["model_options"] and "aspp_channels" in resnet["model_options"]
    assert mobilenet["model_options"]["width_mult"] in (0.5, 0.75, 1.0)
