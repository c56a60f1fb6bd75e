"""S2Former: spectral grid, network, self-supervised losses, DAFT, ablation flags, end-to-end runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hsbench.data.dataset import Sample
from hsbench.models.s2former import S2FormerConfig, S2FormerEncoder, S2FormerSegmenter
from hsbench.models.s2former_daft import DaftConfig, DaftSegmenter, cosine_alpha_bar
from hsbench.pretraining.s2former_ssl import (
    S2FormerSSL,
    S2FormerSSLRecipe,
    frequency_loss,
    spectral_visibility,
    ssl_losses,
    train_ssl,
)
from hsbench.pretraining.s2former_zoo import domain_tiles, fit_domain
from hsbench.registry import DATASETS, STRATEGIES, lookup
from hsbench.runner import Runner, RunSpec
from hsbench.seeding import SeedStreams
from hsbench.spectral_grid import SpectralGrid, fit_grid_standardizer, resample_cube, resampling_matrix
from hsbench.splits import make_split
from hsbench.strategy import RunContext, SplitView
from strategies.s2former import _SMOKE, ABLATIONS

TINY_MODEL = {"dim": 16, "depth": 1, "heads": 2, "grid_bands": 16, "patch_size": 2}


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HSBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# ------------------------------------------------------------------------------------------------ spectral grid
def test_resampling_ignores_band_order_and_marks_out_of_range_points() -> None:
    grid = SpectralGrid(400.0, 1000.0, 13)  # every 50 nm
    wavelengths = np.array([700.0, 500.0, 900.0, 600.0, 800.0])
    cube = np.random.default_rng(0).random((5, 3, 4)).astype(np.float32)
    order = np.argsort(wavelengths)
    shuffled, valid = resample_cube(cube, wavelengths, grid)
    sorted_result, valid_sorted = resample_cube(cube[order], wavelengths[order], grid)
    np.testing.assert_allclose(shuffled, sorted_result, rtol=1e-6)
    np.testing.assert_array_equal(valid, valid_sorted)
    np.testing.assert_array_equal(grid.wavelengths_nm[valid], [500, 550, 600, 650, 700, 750, 800, 850, 900])
    assert np.all(shuffled[~valid] == 0)


def test_sparse_sensors_interpolate_linearly_and_dense_ones_average() -> None:
    grid = SpectralGrid(400.0, 1000.0, 31)  # every 20 nm
    sparse = np.linspace(450.0, 900.0, 6)  # 90 nm apart
    weights, valid = resampling_matrix(sparse, grid)
    line = 2.0 * sparse + 1.0  # linear interpolation reproduces a linear spectrum exactly
    np.testing.assert_allclose(weights[valid] @ line, 2.0 * grid.wavelengths_nm[valid] + 1.0, rtol=1e-9)
    dense = np.linspace(400.0, 1000.0, 128)
    weights, _ = resampling_matrix(dense, grid)
    assert (weights[15] > 0).sum() >= 7  # about +-20 nm of 4.7 nm bands contribute
    np.testing.assert_allclose(weights.sum(1), 1.0)


def test_grid_standardizer_is_resampling_then_standardisation() -> None:
    rng = np.random.default_rng(1)
    wavelengths = (620.0, 480.0, 550.0, 700.0, 510.0, 660.0, 590.0)  # odd band count, unsorted
    pixels = rng.random((500, 7)) * 3 + 1
    grid = SpectralGrid(400.0, 800.0, 21)
    transform, valid = fit_grid_standardizer(wavelengths, grid, pixels)
    out = transform.apply_pixels(pixels)
    assert np.allclose(out[:, valid].mean(0), 0, atol=1e-5) and np.allclose(out[:, valid].std(0), 1, atol=1e-4)
    assert np.all(out[:, ~valid] == 0)


# ------------------------------------------------------------------------------------------------------ network
@pytest.mark.parametrize(
    ("grid_bands", "group_size", "patch_size", "num_bands", "height", "width"),
    [(15, 3, 2, 7, 17, 23), (16, 4, 3, 5, 11, 31), (9, 1, 1, 3, 5, 7)],
)
def test_segmenter_handles_odd_band_counts_and_sizes(
    grid_bands: int, group_size: int, patch_size: int, num_bands: int, height: int, width: int
) -> None:
    cfg = S2FormerConfig(grid_bands=grid_bands, group_size=group_size, patch_size=patch_size, dim=16, heads=2, depth=1)
    wavelengths = np.linspace(480.0, 870.0, num_bands)[::-1]
    _, valid = resampling_matrix(wavelengths, cfg.grid)
    network = S2FormerSegmenter(S2FormerEncoder(cfg), 5, torch.as_tensor(valid))
    logits = network(torch.randn(2, grid_bands, height, width))
    assert logits.shape == (2, 5, height, width) and torch.isfinite(logits).all()


def test_missing_bands_do_not_influence_the_output() -> None:
    """Grid bands a sensor lacks are masked inside the network, whatever values they carry."""
    cfg = S2FormerConfig(**TINY_MODEL)
    valid = torch.zeros(16)
    valid[4:12] = 1
    network = S2FormerSegmenter(S2FormerEncoder(cfg), 3, valid).eval()
    x = torch.randn(1, 16, 8, 8)
    garbage = x.clone()
    garbage[:, valid == 0] = 100.0
    torch.testing.assert_close(network(x), network(garbage))


# ---------------------------------------------------------------------------------------------- self-supervision
def _recipe(**overrides) -> S2FormerSSLRecipe:
    return S2FormerSSLRecipe(model=S2FormerConfig(**TINY_MODEL).to_dict(), **overrides)


def test_spatial_masking_ratio_is_honoured(monkeypatch) -> None:
    recipe = _recipe(spatial_mask_ratio=0.75)
    model = S2FormerSSL(S2FormerConfig(**TINY_MODEL))
    seen = {}
    original = model.encoder.forward

    def spy(x, band_valid, token_mask=None):
        seen["mask"] = token_mask
        return original(x, band_valid, token_mask)

    monkeypatch.setattr(model.encoder, "forward", spy)
    ssl_losses(model, torch.randn(5, 16, 12, 12), torch.ones(16, dtype=torch.bool), recipe,
               torch.Generator().manual_seed(0))
    per_tile = seen["mask"].flatten(1).sum(1)
    assert per_tile.tolist() == [round(0.75 * 36)] * 5


def test_spectral_masking_hides_the_asked_share_of_groups() -> None:
    domain = torch.zeros(32, dtype=torch.bool)
    domain[8:28] = True  # 5 groups of 4 covered by the sensor
    visible = spectral_visibility(domain, 50, 4, ratio=0.4, window_p=0.0, generator=torch.Generator().manual_seed(0))
    assert visible[:, ~domain].sum() == 0
    assert (visible.view(50, 8, 4).amax(2).sum(1) == 3).all()  # 5 groups, 2 hidden
    windowed = spectral_visibility(domain, 50, 4, ratio=0.0, window_p=1.0, generator=torch.Generator().manual_seed(0))
    groups = windowed.view(50, 8, 4).amax(2)
    assert (groups.sum(1) >= 2).all() and (groups.sum(1) < 5).any()


def test_frequency_loss_is_zero_for_identical_inputs_and_grows_without_high_frequencies() -> None:
    rng = np.random.default_rng(0)
    bands = np.arange(32)
    smooth = np.sin(bands / 6.0)[None] + 0.1 * rng.standard_normal((64, 1))
    spectra = torch.tensor(smooth + 0.3 * np.sin(bands * 2.5)[None], dtype=torch.float32)  # with fine detail
    assert float(frequency_loss(spectra, spectra, 0.25)) == 0.0
    spectrum = torch.fft.rfft(spectra, dim=-1)
    spectrum[:, 8:] = 0
    low_passed = torch.fft.irfft(spectrum, n=32, dim=-1)
    removed = float(frequency_loss(low_passed, spectra, 0.25))
    offset = torch.linalg.vector_norm(low_passed - spectra, dim=1, keepdim=True) / math.sqrt(32)
    shifted = float(frequency_loss(spectra + offset, spectra, 0.25))  # same error energy, at DC only
    assert removed > 0.05 and removed > 10 * shifted


def test_pretraining_loss_falls_on_synthetic_aerial() -> None:
    torch.manual_seed(0)
    source = lookup(DATASETS, "synthetic_aerial").open(num_images=3, height=32, width=32)
    recipe = _recipe(tile_size=16, batch_size=8, lr=3e-3)
    cfg = S2FormerConfig.from_dict(recipe.model)
    transform, valid = fit_domain(source, source.card.wavelengths_nm, cfg, fit_pixels=2000,
                                  rng=np.random.default_rng(0))
    tiles = domain_tiles(source, transform, valid, 16)
    generator = torch.Generator().manual_seed(0)
    facts = train_ssl(S2FormerSSL(cfg), tiles, recipe, steps=60, lr=recipe.lr, generator=generator,
                      device=torch.device("cpu"))
    curve = facts["loss_curve"]
    assert len(curve) == 10 and np.mean(curve[-3:]) < 0.8 * curve[0]


# ------------------------------------------------------------------------------------------------------------ DAFT
def test_daft_noises_the_teacher_less_and_follows_the_student_by_ema() -> None:
    alpha_bar = cosine_alpha_bar(torch.arange(0, 1001), 1000)
    assert float(alpha_bar[0]) == pytest.approx(1.0) and float(alpha_bar[-1]) < 1e-3
    assert bool((alpha_bar[1:] <= alpha_bar[:-1]).all())
    cfg = S2FormerConfig(**TINY_MODEL)
    student = S2FormerSegmenter(S2FormerEncoder(cfg), 3, torch.ones(16))
    daft = DaftSegmenter(student, DaftConfig(total_steps=10, ema_momentum=0.5), torch.Generator().manual_seed(0))
    assert daft.alignment_weight(0) < daft.alignment_weight(2) < daft.alignment_weight(3) == pytest.approx(1.0)
    with torch.no_grad():
        for p in student.encoder.parameters():
            p.add_(1.0)
    before = [t.clone() for t in daft.teacher.parameters()]
    daft.train()
    daft(torch.randn(2, 16, 8, 8))  # step 0: no EMA yet
    out = daft(torch.randn(2, 16, 8, 8))
    for old, new, s in zip(before, daft.teacher.parameters(), student.encoder.parameters(), strict=True):
        torch.testing.assert_close(new, 0.5 * old + 0.5 * s)
    assert out.logits.shape == (2, 3, 8, 8) and out.alignment.requires_grad
    assert isinstance(daft.eval()(torch.randn(1, 16, 8, 8)), torch.Tensor)


# ------------------------------------------------------------------------------------------- strategy and flags
def _strategy(dataset, options: dict, seed: int = 0):
    cls = lookup(STRATEGIES, "s2former")
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(seed), work_dir=Path("."), progress=False)
    return cls({**cls.defaults, **_SMOKE, **options}, ctx, dataset.card)


def _views(dataset, spec: str = "fraction=0.5"):
    parts = make_split(dataset, spec, 0).parts
    return SplitView(dataset, parts["train"], "train"), SplitView(dataset, parts["val"], "val")


def _training_loss(strategy, train: SplitView) -> float:
    """Loss of the built network on one fixed batch, with the strategy's own loss."""
    from hsbench.engine import masked_cross_entropy
    from hsbench.models.s2former_daft import daft_loss

    network = strategy.build_network().train()
    cube, target = (torch.stack(t) for t in zip(*[strategy.training_tiles(train)[i] for i in range(4)], strict=True))
    loss = masked_cross_entropy(255) if strategy.cfg["no_daft"] else daft_loss(255)
    torch.manual_seed(0)
    return float(loss(network(cube), target).detach())


def test_each_ablation_flag_changes_the_computation(home, tiny_dataset) -> None:
    train, _ = _views(tiny_dataset)
    losses = {}
    for flag in ("baseline", "baseline_again", *ABLATIONS):
        strategy = _strategy(tiny_dataset, {flag: True} if flag in ABLATIONS else {})
        strategy.pretrain([train])
        losses[flag] = _training_loss(strategy, train)
    assert losses["baseline"] == losses["baseline_again"]  # every draw is seeded: equal options, equal numbers
    for flag in ABLATIONS:
        assert losses[flag] != losses["baseline"], flag
    assert _strategy(tiny_dataset, {"no_frequency_loss": True}).recipe().frequency_weight == 0.0
    ablated = _strategy(tiny_dataset, {"no_cross_attention": True})
    ablated.pretrain([train])
    names = [name for name, _ in ablated.build_network().named_parameters()]
    assert names and not any("spatial_from_spectral" in n or "spectral_from_spatial" in n for n in names)


def test_pretrain_never_reads_labels(home, tiny_dataset) -> None:
    class Poison:
        def __getattr__(self, name):
            raise AssertionError("pretrain read labels")

        def __array__(self, *args, **kwargs):
            raise AssertionError("pretrain read labels")

    train, _ = _views(tiny_dataset)

    class BlindView(SplitView):
        def load(self, sample_id: str) -> Sample:
            return Sample(sample_id, self.dataset.load(sample_id).cube, Poison())  # type: ignore[arg-type]

    blind = BlindView(train.dataset, train._masks, "train")
    strategy = _strategy(tiny_dataset, {})
    strategy.pretrain([blind])
    assert strategy.encoder_weights is not None
    assert len(list((home / "zoo").glob("*/weights.safetensors"))) == 2  # source stage + target stage
    again = _strategy(tiny_dataset, {})
    again.pretrain([train])  # both stages come from the zoo
    assert len(list((home / "zoo").glob("*/weights.safetensors"))) == 2
    for key, value in strategy.encoder_weights.items():
        torch.testing.assert_close(again.encoder_weights[key], value)


def test_end_to_end_on_synthetic_drive(home, tmp_path) -> None:
    outcome = Runner(tmp_path / "results", progress=False).run(
        RunSpec("synthetic_drive", "s2former", "fraction=0.1", 0, {**_SMOKE, "epochs": 2})
    )
    assert outcome.status == "completed", outcome.error
    assert 0.0 <= outcome.test_metrics["miou"] <= 1.0
    assert (outcome.run_dir / "facts.json").read_text().count("pretrain_artifact") == 1


def test_end_to_end_on_a_kshot_scene(home, tmp_path, tiny_registered) -> None:
    outcome = Runner(tmp_path / "results", progress=False).run(
        RunSpec(tiny_registered["scene"], "s2former", "kshot=10", 0, dict(_SMOKE))
    )
    assert outcome.status == "completed", outcome.error
    assert outcome.test_metrics["oa"] > 0.3


def test_a_fixed_pretrain_seed_shares_the_target_stage_across_run_seeds(home, tiny_dataset) -> None:
    """Same train images and ``pretrain_seed``: one source and one target-stage artifact for every run seed, and
    the same grid standardisation; without it, each run seed pretrains its own target stage."""
    train, _ = _views(tiny_dataset)
    shared = [_strategy(tiny_dataset, {"pretrain_seed": 0}, seed=seed) for seed in (0, 1)]
    for strategy in shared:
        strategy.pretrain([train])
    assert len(list((home / "zoo").glob("*/weights.safetensors"))) == 2  # source + one target stage
    assert shared[0].pretrain_facts["pretrain_artifact"] == shared[1].pretrain_facts["pretrain_artifact"]
    np.testing.assert_array_equal(shared[0].transform.mean, shared[1].transform.mean)
    own = [_strategy(tiny_dataset, {}, seed=seed) for seed in (0, 1)]
    for strategy in own:
        strategy.pretrain([train])
    assert own[0].pretrain_facts["pretrain_artifact"] != own[1].pretrain_facts["pretrain_artifact"]
