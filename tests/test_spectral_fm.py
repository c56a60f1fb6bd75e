"""The spectral foundation model, its masked pretraining and the HyperSL checkpoint import."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from hsbench.errors import ConfigError
from hsbench.models.spectral_fm import SIZES, SpectralFM, SpectralFMConfig, fm_config
from hsbench.models.spectral_fm_import import HYPERSL_IGNORED, load_weights_file, strip_prefixes
from hsbench.pretraining.spectral_mae import (
    SpectralMAE,
    SpectralMAERecipe,
    band_view,
    pretrain_spectral_mae,
    random_masking,
)

torch.set_num_threads(1)

MICRO = {"dim": 16, "depth": 2, "heads": 2}


def micro_fm(seed: int = 0, **overrides) -> SpectralFM:
    torch.manual_seed(seed)
    return SpectralFM(fm_config("tiny", {**MICRO, **overrides})).eval()


def smooth_spectra(n: int, wavelengths: np.ndarray, seed: int = 0) -> np.ndarray:
    """Random smooth spectra (sums of broad Gaussians), like reflectance."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(400, 1000, size=(n, 3, 1))
    widths = rng.uniform(60, 200, size=(n, 3, 1))
    heights = rng.uniform(0.05, 0.5, size=(n, 3, 1))
    return (heights * np.exp(-0.5 * ((wavelengths[None, None] - centres) / widths) ** 2)).sum(1).astype(np.float32)


def test_sizes_match_the_issue() -> None:
    small = SIZES["small"]
    assert (small.dim, small.depth, small.heads) == (256, 8, 8)
    model = SpectralFM(small)
    assert len(model.encoder_blocks) == 7  # depth - 1 blocks, then transformer_encoder_layer
    assert SIZES["tiny"].dim <= 64


@pytest.mark.parametrize(
    ("size", "dim", "depth", "heads", "expected"),
    [("small", 256, 8, 8, 6_525_184), ("base", 512, 24, 16, 76_464_640), ("large", 1024, 32, 32, 406_266_880),
     ("huge", 2048, 48, 32, 2_429_863_936)],
)
def test_hypersl_sizes_have_the_published_shapes_and_parameter_counts(size, dim, depth, heads, expected) -> None:
    """HyperSLBackbone's four sizes (embedding_dim, encoder_depth, num_heads); counts from the layer shapes:
    per block 12 D^2 + 13 D (qkv, proj, two-layer MLP of ratio 4, two LayerNorms), the embedding 3 D^2 + 39 D
    (three 1 -> D convolutions of kernels 5, 9, 13 and a 3D -> D 1x1 convolution, each with BatchNorm), and the
    global and mask tokens 2 D. Built on the meta device: huge has 2.4 G parameters."""
    cfg = SIZES[size]
    assert (cfg.dim, cfg.depth, cfg.heads, cfg.mlp_ratio) == (dim, depth, heads, 4.0)
    assert depth * (12 * dim**2 + 13 * dim) + 3 * dim**2 + 39 * dim + 2 * dim == expected
    with torch.device("meta"):
        model = SpectralFM(cfg)
    assert model.num_parameters() == expected
    assert len(model.encoder_blocks) == depth - 1


def test_band_permutation_with_its_wavelengths_gives_the_same_features() -> None:
    model = micro_fm()
    wavelengths = torch.tensor([888.5, 897.7, 879.1, 869.1, 956.1, 796.0, 807.6, 783.8, 770.6, 679.1])
    spectra = torch.rand(32, len(wavelengths))
    permutation = torch.randperm(len(wavelengths), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        reference = model(spectra, wavelengths)
        permuted = model(spectra[:, permutation], wavelengths[permutation])
        wrong = model(spectra[:, permutation], wavelengths)  # bands moved without their wavelengths
    torch.testing.assert_close(permuted, reference, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(wrong, reference, atol=1e-3)


@pytest.mark.parametrize("num_bands", [1, 6, 25, 128])
def test_any_band_count_and_spacing(num_bands: int) -> None:
    model = micro_fm()
    wavelengths = torch.sort(torch.rand(num_bands) * 600 + 400).values
    with torch.no_grad():
        out = model(torch.rand(5, num_bands), wavelengths)
    assert out.shape == (5, model.dim) and torch.isfinite(out).all()


def test_eval_features_do_not_depend_on_the_batch() -> None:
    model = micro_fm()
    wavelengths, spectra = torch.linspace(450, 900, 6), torch.rand(10, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(spectra, wavelengths)[3:4], model(spectra[3:4], wavelengths))


def test_config_validation_and_overrides() -> None:
    assert fm_config("tiny", {"dim": 32}).dim == 32
    with pytest.raises(ConfigError, match="sizes are"):
        fm_config("gigantic")
    with pytest.raises(ConfigError, match="unknown spectral FM options"):
        fm_config("tiny", {"width": 3})
    with pytest.raises(ConfigError, match="divisible"):
        SpectralFMConfig(dim=30, heads=4)


@pytest.mark.parametrize(("length", "ratio"), [(128, 0.9), (25, 0.9), (6, 0.5), (4, 0.99)])
def test_masking_ratio_is_honoured(length: int, ratio: float) -> None:
    keep, masked = random_masking(64, length, ratio, torch.Generator().manual_seed(0))
    expected = min(max(round(length * ratio), 1), length - 1)
    assert (masked.sum(1) == expected).all()
    assert keep.shape == (64, length - expected)
    assert not masked.gather(1, keep).any()  # kept tokens are exactly the unmasked ones
    assert masked.any(0).all()  # every position gets masked for some pixel: the draw is random


@pytest.mark.parametrize("norm_target", [False, True])
def test_loss_counts_masked_bands_only(monkeypatch, norm_target: bool) -> None:
    mae = SpectralMAE(micro_fm(), decoder_dim=16, norm_target=norm_target)
    spectra = torch.rand(8, 20) * 3 + 1
    captured = {}

    def perfect_where_masked(x, wavelengths, keep):
        prediction = (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-6) if norm_target else x.clone()
        prediction.scatter_(1, keep, 100.0)  # visible bands badly wrong: must not count
        captured["keep"] = keep
        return prediction

    monkeypatch.setattr(mae, "forward", perfect_where_masked)
    loss = mae.loss(spectra, torch.linspace(400, 1000, 20), 0.75, torch.Generator().manual_seed(0))
    assert float(loss) == pytest.approx(0.0, abs=1e-10) and captured["keep"].shape == (8, 5)


def test_band_views_are_strided_windows() -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        view = band_view(128, 12, 3, generator)
        steps = view.diff().unique()
        assert len(view) >= 12 and len(steps) == 1 and 1 <= int(steps) <= 3
    assert torch.equal(band_view(10, 10, 1, generator), torch.arange(10))


def test_pretraining_loss_decreases_on_a_short_run() -> None:
    wavelengths = np.linspace(400, 1000, 64)
    pixels = smooth_spectra(1024, wavelengths)
    recipe = SpectralMAERecipe(model=fm_config("tiny", MICRO).to_dict(), epochs=6, pixels=1024, batch_size=64,
                               lr=1e-2, min_bands=16)
    model, history = pretrain_spectral_mae(recipe, pixels, wavelengths, progress=False)
    assert len(history) == 6 and history[-1] < 0.7 * history[0]
    assert not model.training
    again, history_again = pretrain_spectral_mae(recipe, pixels, wavelengths, progress=False)
    assert history_again == history  # the recipe seed makes pretraining reproducible
    torch.testing.assert_close(again.state_dict(), model.state_dict())


def hypersl_checkpoint(model: SpectralFM) -> dict:
    """A checkpoint in HyperSL's layout: ``{"model": ...}``, ``module.`` prefixes, decoder parts, extras."""
    dim = model.dim
    state = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    state["module.pe"] = torch.zeros(1, 500, dim)
    state["module.corss_attn.qkv.weight"] = torch.randn(dim, dim)
    state["module.decoder_blocks.0.norm1.weight"] = torch.ones(dim)
    state["module.norm1.weight"] = torch.ones(dim)
    state["module.norm2.bias"] = torch.zeros(dim)
    state["module.decoder_layer.0.weight"] = torch.randn(1, dim, 3)
    state["module.projection_head.weight"] = torch.randn(3, dim)  # unknown to both: must be reported
    state["module.encoder_blocks.0.mlp.fc1.bias"] = torch.zeros(7)  # wrong shape: must be reported
    return {"model": state, "epoch": 99, "optimizer": {"lr": torch.tensor(1e-4)}}


def test_hypersl_checkpoint_round_trip_onto_the_small_model(tmp_path, caplog) -> None:
    torch.manual_seed(1)
    source = SpectralFM(SpectralFMConfig.from_dict({**SIZES["small"].to_dict(), "final_block": "hypersl"}))
    path = tmp_path / "hypersl.pth"
    torch.save(hypersl_checkpoint(source), path)
    with pytest.raises(ConfigError, match=r"loads only in part .*encoder_blocks.0.mlp.fc1.bias.*"
                                          r"unexpected: projection_head.weight; set strict=false"):
        load_weights_file(path)  # a partial load needs the user's explicit strict=false
    with caplog.at_level(logging.WARNING, logger="hsbench"):
        model, report, checkpoint_hash = load_weights_file(path, strict=False)
    assert model.cfg.dim == 256 and model.cfg.final_block == "hypersl"
    assert report.unexpected == ["projection_head.weight"]
    assert report.mismatched == ["encoder_blocks.0.mlp.fc1.bias: (7,) vs (1024,)"]
    assert report.missing == []
    assert set(report.ignored) == {"pe", "corss_attn.qkv.weight", "decoder_blocks.0.norm1.weight", "norm1.weight",
                                   "norm2.bias", "decoder_layer.0.weight"}
    assert "projection_head.weight" in caplog.text
    expected = source.state_dict()
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], expected[k]) for k in report.loaded)
    assert len(report.loaded) == len(expected) - 1
    # With the one mismatched tensor restored, the imported model computes what the original computes.
    model.encoder_blocks[0].mlp.fc1.bias.data.copy_(source.encoder_blocks[0].mlp.fc1.bias)
    wavelengths, spectra = torch.linspace(680, 950, 25), torch.rand(16, 25)
    with torch.no_grad():
        torch.testing.assert_close(model(spectra, wavelengths), source.eval()(spectra, wavelengths))
    assert len(checkpoint_hash) == 64


def test_import_of_a_checkpoint_of_other_width_says_how_to_fit_it(tmp_path) -> None:
    path = tmp_path / "other.pt"
    torch.save(hypersl_checkpoint(micro_fm()), path)
    with pytest.raises(ConfigError, match="dim 16 and 2 blocks"):
        load_weights_file(path)
    model, report, _ = load_weights_file(path, fm_config("tiny", MICRO), strict=False)
    assert report.loaded and model.cfg.dim == 16


def test_prefix_stripping_and_ignored_decoder_keys() -> None:
    state = strip_prefixes({"module.module.a": torch.zeros(1), "b": torch.zeros(1)})
    assert set(state) == {"a", "b"}
    assert "decoder_blocks." in HYPERSL_IGNORED and "norm1." in HYPERSL_IGNORED
