"""The earthlib spectral-library source: loading, the virtual-sensor simulator, and pretraining on it (issue 17)."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from hsbench.cli import main
from hsbench.errors import ConfigError, HsbenchError
from hsbench.models.spectral_fm import SpectralFM, SpectralFMConfig, fm_config
from hsbench.pretraining import spectral_library
from hsbench.pretraining.sensor_sim import (
    FWHM_TO_SIGMA,
    SensorSimConfig,
    covered,
    draw_sensor,
    mix_spectra,
    simulate_batch,
    srf_matrix,
)
from hsbench.pretraining.spectral_mae import (
    SpectralMAE,
    SpectralMAERecipe,
    _schedule,
    band_view,
    pretrain_spectral_mae,
    pretrain_spectral_mae_simulated,
    pretrained_spectral_fm,
)
from hsbench.runner import Runner, RunSpec
from hsbench.zoo import Zoo

torch.set_num_threads(1)

# CI installs earthlib through the test extra; elsewhere the tests that read the library skip.
requires_earthlib = pytest.mark.skipif(importlib.util.find_spec("earthlib") is None,
                                       reason='needs pip install "hsbench[spectra]"')

MICRO_FM = {"dim": 16, "depth": 1, "heads": 2}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HSBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def library():
    pytest.importorskip("earthlib")
    return spectral_library.load_earthlib()


def test_the_library_loads_with_its_hierarchy_and_provenance(library) -> None:
    assert library.spectra.shape == (7261, 180) and library.spectra.dtype == np.float32
    assert library.wavelengths_nm[0] == 400 and library.wavelengths_nm[-1] == 2450
    assert np.all(np.diff(library.wavelengths_nm) > 0)
    assert set(library.levels) == {"LEVEL_1", "LEVEL_2", "LEVEL_3"} and len(library.levels["LEVEL_3"]) == 7261
    assert "vegetation" in set(library.levels["LEVEL_2"])
    assert library.version == importlib.metadata.version("earthlib") and len(library.spectra_sha256) == 64
    assert not covered(library.wavelengths_nm, np.array([1400.0, 1900.0])).any()  # the water-vapour gaps


def test_pretrain_without_earthlib_is_one_line_and_writes_nothing(monkeypatch, home, capsys) -> None:
    real_import = importlib.import_module

    def fail(name, *args):
        if name.startswith("earthlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    spectral_library.load_earthlib.cache_clear()
    monkeypatch.setattr(importlib, "import_module", fail)
    try:
        with pytest.raises(spectral_library.MissingExtraError, match=r'pip install "hsbench\[spectra\]"') as raised:
            spectral_library.load_earthlib()
        assert isinstance(raised.value, HsbenchError)
        assert main(["pretrain", "spectral_fm", "--source", "earthlib", "--no-progress"]) == 2
    finally:
        spectral_library.load_earthlib.cache_clear()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "hsbench[spectra]"' in err
    assert not list(home.glob("zoo/*/metadata.json"))


def test_importing_hsbench_does_not_import_earthlib() -> None:
    code = "import sys, hsbench, hsbench.pretraining.spectral_mae; print('earthlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_resampling_equals_srf_integration_of_the_interpolated_spectrum() -> None:
    grid = np.arange(400.0, 1001.0, 10.0)
    spectrum = 0.3 + 0.2 * np.sin(grid / 37.0) + 1e-4 * (grid - 400)
    centres, fwhm = np.array([523.0, 700.0, 845.5]), np.array([3.0, 12.0, 30.0])
    bands = srf_matrix(grid, centres, fwhm) @ spectrum
    fine = np.arange(400.0, 1000.0 + 1e-9, 0.005)  # independent: numpy quadrature of SRF x linear interpolant
    for band, centre, width in zip(bands, centres, fwhm):
        srf = np.exp(-0.5 * ((fine - centre) / (width * FWHM_TO_SIGMA)) ** 2)
        assert band == pytest.approx(np.sum(srf * np.interp(fine, grid, spectrum)) / np.sum(srf), abs=1e-7)


def test_a_very_narrow_band_returns_the_grid_value_and_weights_are_normalised() -> None:
    grid = np.arange(400.0, 1001.0, 10.0)
    spectrum = np.random.default_rng(0).random(len(grid))
    # The interpolant's kink at a node leaks E|x - c| / 10 nm of the weight to the neighbours: 4e-6 here.
    weights = srf_matrix(grid, np.array([550.0, 555.0]), np.array([1e-4, 1e-4]))
    assert weights @ spectrum == pytest.approx([spectrum[15], (spectrum[15] + spectrum[16]) / 2], abs=1e-5)
    wide = srf_matrix(grid, np.array([405.0, 700.0]), np.array([30.0, 30.0]))  # truncated at the edge
    assert np.all(wide >= 0) and wide.sum(axis=1) == pytest.approx([1.0, 1.0])


def test_drawn_sensors_respect_every_documented_range(library) -> None:
    config, rng = SensorSimConfig(), np.random.default_rng(3)
    vnir, shuffled, counts = 0, 0, []
    for _ in range(300):
        sensor = draw_sensor(rng, library.wavelengths_nm, config)
        centres = np.sort(sensor.centres_nm)
        counts.append(len(centres))
        assert config.min_bands <= len(centres) <= config.max_bands
        assert 400 <= centres[0] and centres[-1] <= 2450 and covered(library.wavelengths_nm, centres).all()
        assert np.all((config.fwhm_nm[0] <= sensor.fwhm_nm) & (sensor.fwhm_nm <= config.fwhm_nm[1]))
        assert sensor.weights.shape == (len(centres), 180) and np.allclose(sensor.weights.sum(axis=1), 1)
        vnir += centres[-1] <= 1000
        shuffled += not np.all(np.diff(sensor.centres_nm) >= 0)
    assert 100 < vnir < 300 and 50 < shuffled < 250 and min(counts) < 30 and max(counts) > 150


def test_mixtures_stay_within_the_mixed_spectra(library) -> None:
    config = SensorSimConfig()
    mixtures, index, weights = mix_spectra(library.spectra, np.random.default_rng(1), 500, config)
    assert np.allclose(weights.sum(axis=1), 1) and set((weights > 0).sum(axis=1)) == {1, 2, 3}
    for mixture, rows, w in zip(mixtures, index, weights):
        parts = library.spectra[rows[w > 0]]
        assert np.all(mixture >= parts.min(axis=0) - 1e-6) and np.all(mixture <= parts.max(axis=0) + 1e-6)


def test_simulation_is_deterministic_for_a_seed(library) -> None:
    def batches(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [simulate_batch(library.spectra, library.wavelengths_nm, rng, 64, SensorSimConfig())[0]
                for _ in range(3)]

    first, again, other = batches(5), batches(5), batches(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(first, other))
    assert all(np.isfinite(b).all() and b.dtype == np.float32 for b in first)


def test_simulator_options_are_validated() -> None:
    assert SensorSimConfig.from_options({"vnir_probability": 1, "fwhm_nm": [5, 10]}).fwhm_nm == (5.0, 10.0)
    with pytest.raises(ConfigError, match="sensor simulator's options has unknown key"):
        SensorSimConfig.from_options({"num_images": 3})
    with pytest.raises(ConfigError, match="fwhm_nm"):
        SensorSimConfig(fwhm_nm=(30.0, 3.0))
    with pytest.raises(ConfigError, match="outside the library"):
        draw_sensor(np.random.default_rng(0), np.arange(400.0, 1001.0, 10.0),
                    SensorSimConfig(vnir_range_nm=(1500.0, 2000.0), vnir_probability=1.0))


def _reference_pretrain(recipe, pixels, wavelengths_nm):
    """The dataset-source loop as it was before issue 17 (verbatim, CPU, no progress bar): the refactored loop
    must reproduce its weights bit for bit, so every existing zoo artifact stays valid."""
    generator = torch.Generator().manual_seed(recipe.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        mae = SpectralMAE(SpectralFM(SpectralFMConfig.from_dict(recipe.model)), decoder_dim=recipe.decoder_dim,
                          decoder_depth=recipe.decoder_depth, norm_target=recipe.norm_target)
    order = np.argsort(np.asarray(wavelengths_nm), kind="stable")
    spectra = torch.from_numpy(np.ascontiguousarray(pixels[:, order], dtype=np.float32))
    wavelengths = torch.as_tensor(np.asarray(wavelengths_nm, dtype=np.float32)[order])
    steps_per_epoch = math.ceil(len(spectra) / recipe.batch_size)
    optimizer = torch.optim.AdamW(mae.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(recipe.epochs * steps_per_epoch))
    history = []
    mae.train()
    for _ in range(recipe.epochs):
        total = torch.zeros(())
        for batch in torch.randperm(len(spectra), generator=generator).split(recipe.batch_size):
            bands = band_view(spectra.shape[1], recipe.min_bands, recipe.max_band_stride, generator)
            x = spectra[batch][:, bands]
            loss = mae.loss(x, wavelengths[bands], recipe.mask_ratio, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(mae.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.detach().cpu()
        history.append(float(total) / steps_per_epoch)
    return mae.encoder.eval(), history


def test_dataset_pretraining_is_bit_identical_to_the_loop_before_the_library_source() -> None:
    recipe = SpectralMAERecipe(model=fm_config("tiny", MICRO_FM).to_dict(), pixels=300, epochs=2, batch_size=128)
    rng = np.random.default_rng(0)
    wavelengths = rng.permutation(np.linspace(400, 1000, 40))  # unsorted, as HSI-Drive's
    pixels = rng.random((300, 40)).astype(np.float32)
    model, history = pretrain_spectral_mae(recipe, pixels, wavelengths, progress=False)
    reference, reference_history = _reference_pretrain(recipe, pixels, wavelengths)
    assert history == reference_history
    expected = reference.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in model.state_dict().items())


def micro_recipe(**changes) -> SpectralMAERecipe:
    return SpectralMAERecipe(model=fm_config("tiny", MICRO_FM).to_dict(), source="earthlib", pixels=256, epochs=2,
                             batch_size=128, **changes)


def test_pretraining_on_the_library_is_deterministic_for_a_seed(library) -> None:
    def weights(seed: int) -> dict[str, torch.Tensor]:
        recipe = micro_recipe(seed=seed, source_options={"max_bands": 24})
        simulator = SensorSimConfig.from_options(recipe.source_options)
        return pretrain_spectral_mae_simulated(recipe, library, simulator, progress=False)[0].state_dict()

    first, again, other = weights(0), weights(0), weights(1)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(first["global_token"], other["global_token"])


@requires_earthlib
def test_the_zoo_artifact_records_library_version_and_hash(library, tmp_path) -> None:
    zoo = Zoo(tmp_path / "zoo")
    artifact = pretrained_spectral_fm(zoo, micro_recipe(source_options={"max_bands": 40}), progress=False)
    meta = artifact.metadata
    assert meta["library_version"] == library.version and meta["spectra_sha256"] == library.spectra_sha256
    assert meta["simulator"]["max_bands"] == 40 and len(meta["loss_curve"]) == 2
    assert artifact.key == Zoo.artifact_key(micro_recipe(source_options={"max_bands": 40}).to_dict(),
                                            library.fingerprint)
    other = dataclasses.replace(library, spectra_sha256="0" * 64)
    assert other.fingerprint != library.fingerprint
    assert Zoo.artifact_key(micro_recipe().to_dict(), other.fingerprint) != Zoo.artifact_key(
        micro_recipe().to_dict(), library.fingerprint)
    again = pretrained_spectral_fm(zoo, micro_recipe(source_options={"max_bands": 40}), progress=False)
    assert again.key == artifact.key and again.checkpoint_hash == artifact.checkpoint_hash  # reused


@requires_earthlib
def test_cli_pretrain_on_earthlib(home, capsys) -> None:
    argv = ["pretrain", "spectral_fm", "--source", "earthlib", "--size", "tiny", "--epochs", "1", "--pixels", "256",
            "--fm-options", "dim=16", "depth=1", "heads=2", "--source-options", "max_bands=32", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "artifact:" in out and "final loss" in out
    meta = json.loads(next((home / "zoo").glob("*/metadata.json")).read_text())
    assert meta["source"] == "earthlib" and meta["library_version"]


def test_cli_reports_bad_simulator_options_in_one_line(home, capsys) -> None:
    argv = ["pretrain", "spectral_fm", "--source", "earthlib", "--source-options", "num_images=3", "--no-progress"]
    assert main(argv) == 2
    assert "sensor simulator's options has unknown key" in capsys.readouterr().err


@requires_earthlib
def test_cross_domain_runs_with_the_earthlib_source(tmp_path, home) -> None:
    options = {"fm_options": MICRO_FM, "source": "earthlib", "source_options": {"max_bands": 32},
               "pretrain_pixels": 256, "pretrain_epochs": 1, "pretrain_batch_size": 128, "head": "mlp",
               "epochs": 2, "lr": 0.005, "batch_size": 4, "min_steps_per_epoch": 1}
    outcome = Runner(tmp_path / "results", progress=False).run(
        RunSpec("synthetic_drive", "cross_domain", "fraction=0.05", 0, options))
    assert outcome.status == "completed", outcome.error
    facts = json.loads((outcome.run_dir / "facts.json").read_text())
    assert facts["fm_source"].startswith(str(home / "zoo"))


def test_an_unknown_pretraining_source_names_the_library_too(capsys) -> None:
    from hsbench.cli import main

    assert main(["pretrain", "spectral_fm", "--source", "earthlb"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown pretraining source 'earthlb' (did you mean 'earthlib'?)" in err[0]
    assert "synthetic_aerial" in err[0]
