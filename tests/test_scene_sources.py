"""Cross-scene pretraining sources: ``source=`` a registered scene or a list of datasets (unlabelled pixels only).

Covers :mod:`hsbench.pretraining.sources` and its use by ``s2former`` (source stage) and ``cross_domain`` (spectral
FM): list parsing, unchanged zoo keys of single sources, order in the key, per-source options and wavelengths,
the refusal of the target as a source, bit-identical single-source pretraining, and real (prepared) scene sources.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_dataset

from hsbench.data import Dataset, DatasetProvider
from hsbench.errors import ConfigError, DataError
from hsbench.models.s2former import S2FormerConfig
from hsbench.models.spectral_fm import fm_config
from hsbench.options import parse_key_values
from hsbench.pretraining import s2former_ssl, s2former_zoo
from hsbench.pretraining.s2former_ssl import PooledTiles, S2FormerSSLRecipe, TileSource
from hsbench.pretraining.s2former_zoo import domain_tiles, fit_domain, pretrained_s2former
from hsbench.pretraining.sources import open_sources, sources_fingerprint
from hsbench.pretraining.spectral_mae import (
    SpectralMAE,
    SpectralMAERecipe,
    _fresh_mae,
    _train,
    band_view,
    pretrain_spectral_mae,
    pretrained_spectral_fm,
    sample_pixels,
)
from hsbench.registry import DATASETS, lookup
from hsbench.runner import Runner, RunSpec
from hsbench.seeding import SeedStreams
from hsbench.splits import make_split
from hsbench.strategy import RunContext, SplitView, resolve_strategy
from hsbench.zoo import Zoo

MICRO_FM = fm_config("tiny", {"dim": 16, "depth": 1, "heads": 2}).to_dict()
MICRO_S2 = S2FormerConfig(dim=16, depth=1, heads=2, grid_bands=16, patch_size=2)
SINGLE_SOURCE_KEYS = {"s2former": "db0aa4b1192294215d1af358", "cross_domain": "5541f4abb324d19020703fc4"}
"""Zoo keys (recipe at default options, run seed 0, source fingerprint ``"fp"``) from before lists existed: a
single source must keep reusing the artifacts it already has."""


def _strategy(name: str, options: dict, card=None, *, data_root: Path | None = None):
    cls, resolved = resolve_strategy(name, options)
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=Path("."), progress=False,
                     data_root=data_root)
    return cls(resolved, ctx, card if card is not None else make_tiny_dataset().card)


def _register(name: str, dataset: Dataset, opened: list | None = None) -> None:
    class Provider(DatasetProvider):
        card = dataset.card

        @classmethod
        def open(cls, *, data_root=None, **options):
            if opened is not None:
                opened.append((name, options))
            return dataset

    DATASETS.register_module(name=name, module=Provider, force=True)


def _source(name: str, low: float, high: float, bands: int, *, scale: float = 1.0, offset: float = 0.0,
            seed: int = 0) -> Dataset:
    """A one-image scene of ``bands`` bands over ``low``..``high`` nm, values ``scale * x + offset``."""
    base = make_tiny_dataset(task="scene", num_images=1, height=24, width=24, num_bands=bands, seed=seed)
    card = dataclasses.replace(base.card, name=name,
                               wavelengths_nm=tuple(float(w) for w in np.linspace(low, high, bands)))

    def load(sample_id: str):
        sample = base.load(sample_id)
        return dataclasses.replace(sample, cube=(sample.cube * scale + offset).astype(np.float32))

    return Dataset(card, base.sample_ids, load, fingerprint=f"{name}-{base.fingerprint}")


@pytest.fixture
def two_sources():
    """Two registered scene sources of different sensors and radiometry: ``src_vis`` (8 bands, 420-640 nm) and
    ``src_nir`` (10 bands, 660-980 nm, values x10 + 5); the second element records every ``open`` call."""
    opened: list = []
    datasets = {"src_vis": _source("src_vis", 420, 640, 8), "src_nir": _source("src_nir", 660, 980, 10, scale=10,
                                                                                offset=5, seed=1)}
    for name, dataset in datasets.items():
        _register(name, dataset, opened)
    yield datasets, opened
    for name in datasets:
        DATASETS.module_dict.pop(name, None)


def _write_fake_samson(raw: Path, seed: int = 0) -> None:
    """A Samson-layout file (95 x 95 px, 156 bands, v7.3) with random values, for ``hsbench prepare samson``."""
    from test_scene_datasets import save_mat73

    rng = np.random.default_rng(seed)
    cube = rng.uniform(0, 1, (95, 95, 156))
    save_mat73(raw / "Samson_UPCGIT.mat", {"Y": np.ascontiguousarray(cube.reshape(95 * 95, -1, order="F").T),
                                           "S_GT": rng.dirichlet(np.ones(3), size=(95, 95))})


@pytest.fixture
def prepared_samson(tmp_path) -> Path:
    """A data root holding a prepared (fake) ``samson`` scene."""
    from hsbench.data.prepared import prepare_dataset

    raw = tmp_path / "raw_samson"
    raw.mkdir()
    _write_fake_samson(raw)
    prepare_dataset(lookup(DATASETS, "samson"), raw, tmp_path / "data", progress=False)
    return tmp_path / "data"


# ------------------------------------------------------------------------------------------------ the option
def test_a_list_of_sources_is_a_yaml_list_on_the_command_line() -> None:
    options = parse_key_values(["source=[samson,jasper_ridge]"])  # --cfg-options, like svm_c_grid=[10]
    assert options["source"] == ["samson", "jasper_ridge"]
    for name in ("s2former", "cross_domain"):
        assert _strategy(name, options).recipe().source == ["samson", "jasper_ridge"]
        with pytest.raises(ConfigError, match=r"source=\[samson,jasper_ridge\]"):
            _strategy(name, {"source": "samson, jasper_ridge"})  # a comma string is not silently one name
        with pytest.raises(ConfigError, match="more than once"):
            _strategy(name, {"source": ["samson", "samson"]})


def test_single_source_recipes_keep_their_zoo_keys() -> None:
    for name, key in SINGLE_SOURCE_KEYS.items():
        for source in ("synthetic_aerial", ["synthetic_aerial"]):  # a one-element list is the plain name
            recipe = _strategy(name, {"source": source}).recipe().to_dict()
            assert recipe["source"] == "synthetic_aerial" and recipe["source_options"] == {}
            assert Zoo.artifact_key(recipe, "fp") == key, (name, source)


def test_list_order_is_part_of_the_key_and_the_fingerprint(two_sources) -> None:
    datasets, _ = two_sources
    forward = open_sources(["src_vis", "src_nir"], {})
    backward = open_sources(["src_nir", "src_vis"], {})
    single = open_sources("src_vis", {})
    assert sources_fingerprint(single) == datasets["src_vis"].fingerprint  # a single source: its own, as before
    fingerprints = {sources_fingerprint(forward), sources_fingerprint(backward), sources_fingerprint(single)}
    assert len(fingerprints) == 3
    for name in ("s2former", "cross_domain"):
        keys = {Zoo.artifact_key(_strategy(name, {"source": s}).recipe().to_dict(), "fp")
                for s in (["src_vis", "src_nir"], ["src_nir", "src_vis"], "src_vis")}
        assert len(keys) == 3, name


def test_source_options_map_each_source_of_a_list(two_sources) -> None:
    _, opened = two_sources
    recipe = _strategy("cross_domain", {"source": ["src_vis", "src_nir"],
                                        "source_options": {"src_nir": {"num_images": 2}}}).recipe()
    assert recipe.source_options == {"src_nir": {"num_images": 2}}
    open_sources(recipe.source, recipe.source_options)
    assert opened == [("src_vis", {}), ("src_nir", {"num_images": 2})]
    opened.clear()
    open_sources("src_vis", {"num_images": 2})  # a single source: its options, as before
    assert opened == [("src_vis", {"num_images": 2})]
    for name in ("s2former", "cross_domain"):
        with pytest.raises(ConfigError, match="maps a source name to that source's options"):
            _strategy(name, {"source": ["src_vis", "src_nir"], "source_options": {"num_images": 2}})


# ----------------------------------------------------------------------------------- the target is no source
def test_the_target_as_a_source_is_refused_before_any_data_is_read() -> None:
    card = make_tiny_dataset(task="scene").card  # named tiny_scene
    source = ["synthetic_aerial", "tiny_scene"]
    with pytest.raises(ConfigError, match="source 'tiny_scene' is the target dataset: pretraining would read its "
                                          "val and test pixels; set transductive=true"):
        _strategy("s2former", {"source": source}, card)
    _strategy("s2former", {"source": source, "transductive": True}, card)  # reads whole scenes anyway (†)
    _strategy("s2former", {"source": source, "no_pretrain": True}, card)  # no source is read
    with pytest.raises(ConfigError, match="source 'tiny_scene' is the target dataset") as refused:
        _strategy("cross_domain", {"source": "tiny_scene"}, card)
    assert "transductive" not in str(refused.value)  # cross_domain has no transductive mode to offer
    _strategy("cross_domain", {"source": "tiny_scene", "weights": "fm.safetensors"}, card)  # no zoo pretraining


def test_a_run_with_the_target_as_a_source_stops_with_the_refusal(tmp_path, tiny_registered, monkeypatch) -> None:
    from strategies.s2former import _SMOKE

    monkeypatch.setenv("HSBENCH_HOME", str(tmp_path / "home"))
    scene = tiny_registered["scene"]
    spec = RunSpec(scene, "s2former", "kshot=10", 0, {**_SMOKE, "source": ["synthetic_aerial", scene]})
    with pytest.raises(ConfigError, match="is the target dataset"):  # a configuration error stops the command
        Runner(tmp_path / "results", progress=False).run(spec)
    assert not list((tmp_path / "home").glob("zoo/*/weights.safetensors"))  # refused before any pretraining


# --------------------------------------------------------------------------------------- spectral FM pooling
def _reference_pretrain(recipe: SpectralMAERecipe, pixels: np.ndarray, wavelengths_nm: np.ndarray):
    """The one-source loop as it was before sources could be pooled (kept here as the reference)."""
    generator = torch.Generator().manual_seed(recipe.seed)
    mae = _fresh_mae(recipe, torch.device("cpu"))
    order = np.argsort(np.asarray(wavelengths_nm), kind="stable")
    spectra = torch.from_numpy(np.ascontiguousarray(pixels[:, order], dtype=np.float32))
    wavelengths = torch.as_tensor(np.asarray(wavelengths_nm, dtype=np.float32)[order])

    def epoch_batches():
        for batch in torch.randperm(len(spectra), generator=generator).split(recipe.batch_size):
            bands = band_view(spectra.shape[1], recipe.min_bands, recipe.max_band_stride, generator)
            yield spectra[batch][:, bands], wavelengths[bands]

    history = _train(mae, recipe, generator, epoch_batches, math.ceil(len(spectra) / recipe.batch_size),
                     torch.device("cpu"), False)
    return mae.encoder.eval(), history


def _micro_recipe(**overrides) -> SpectralMAERecipe:
    return SpectralMAERecipe(**{"model": MICRO_FM, "epochs": 2, "pixels": 300, "batch_size": 64, "min_bands": 4,
                                **overrides})


def test_one_source_pretrains_bit_identically_to_before() -> None:
    rng = np.random.default_rng(0)
    pixels, wavelengths = rng.uniform(0, 1, (300, 12)).astype(np.float32), np.linspace(900, 400, 12)  # unsorted
    recipe = _micro_recipe()
    reference, reference_history = _reference_pretrain(recipe, pixels, wavelengths)
    for args in ((pixels, wavelengths), ([pixels], [wavelengths])):  # an array, and a list of one source
        model, history = pretrain_spectral_mae(recipe, *args, progress=False)
        assert history == reference_history
        for key, value in reference.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key


def test_every_batch_comes_from_one_source_with_its_own_wavelengths(monkeypatch) -> None:
    seen: list[tuple[float, ...]] = []
    forward = SpectralMAE.forward

    def recording(self, spectra, wavelengths_nm, keep):
        seen.append(tuple(wavelengths_nm.tolist()))
        return forward(self, spectra, wavelengths_nm, keep)

    monkeypatch.setattr(SpectralMAE, "forward", recording)
    rng = np.random.default_rng(0)
    vis, nir = np.linspace(420, 640, 6), np.linspace(980, 660, 9)  # the second in reverse band order
    groups = [rng.uniform(0, 1, (100, 6)), rng.uniform(0, 1, (150, 9))]
    recipe = _micro_recipe(epochs=1, batch_size=32, seed=1)
    _, history = pretrain_spectral_mae(recipe, groups, [vis, nir], progress=False)
    assert len(seen) == math.ceil(100 / 32) + math.ceil(150 / 32) and len(history) == 1
    from_vis = [set(w) <= set(np.float32(vis).tolist()) for w in seen]
    from_nir = [set(w) <= set(np.float32(nir).tolist()) for w in seen]
    assert all(a != b for a, b in zip(from_vis, from_nir, strict=True))  # each batch: exactly one source's bands
    assert sum(from_vis) == 4 and sum(from_nir) == 5
    assert all(list(w) == sorted(w) for w in seen)  # each source's bands wavelength-sorted
    assert from_vis not in (sorted(from_vis), sorted(from_vis, reverse=True))  # batches interleave across sources


def test_pooled_spectral_fm_takes_equal_shares_and_is_stored_once(tmp_path, two_sources) -> None:
    datasets, _ = two_sources
    zoo = Zoo(tmp_path / "zoo")
    recipe = _micro_recipe(source=["src_vis", "src_nir"], epochs=1, pixels=400)
    artifact = pretrained_spectral_fm(zoo, recipe, progress=False)
    assert artifact.metadata["source"] == ["src_vis", "src_nir"]
    assert artifact.metadata["source_pixels"] == {"src_vis": 200, "src_nir": 200}
    assert artifact.metadata["source_fingerprint"] == sources_fingerprint(open_sources(recipe.source, {}))
    again = pretrained_spectral_fm(zoo, _micro_recipe(source=["src_vis", "src_nir"], epochs=1, pixels=400),
                                   progress=False)
    assert again.path == artifact.path and len(zoo.artifacts()) == 1
    swapped = pretrained_spectral_fm(zoo, _micro_recipe(source=["src_nir", "src_vis"], epochs=1, pixels=400),
                                     progress=False)
    assert swapped.path != artifact.path and len(zoo.artifacts()) == 2


# ------------------------------------------------------------------------------------------ S2Former pooling
def test_s2former_fits_each_source_on_its_own_grid_and_statistics(tmp_path, two_sources, monkeypatch) -> None:
    datasets, _ = two_sources
    captured, seen_valid = [], []
    train_ssl, ssl_losses = s2former_zoo.train_ssl, s2former_ssl.ssl_losses

    def capture(model, source, *args, **kwargs):
        captured.append(source)
        return train_ssl(model, source, *args, **kwargs)

    def record(model, tiles, domain_valid, *args, **kwargs):
        seen_valid.append(tuple(domain_valid.tolist()))
        return ssl_losses(model, tiles, domain_valid, *args, **kwargs)

    monkeypatch.setattr(s2former_zoo, "train_ssl", capture)
    monkeypatch.setattr(s2former_ssl, "ssl_losses", record)
    recipe = S2FormerSSLRecipe(model=MICRO_S2.to_dict(), source=["src_vis", "src_nir"], tile_size=16, steps=8,
                               batch_size=2, fit_pixels=10_000)
    artifact = pretrained_s2former(Zoo(tmp_path / "zoo"), recipe)
    assert artifact.metadata["recipe"]["source"] == ["src_vis", "src_nir"]
    (pooled,) = captured
    assert isinstance(pooled, PooledTiles) and len(pooled.domains) == 2
    for domain, dataset in zip(pooled.domains, datasets.values(), strict=True):
        _, valid = fit_domain(dataset, dataset.card.wavelengths_nm, MICRO_S2, fit_pixels=10_000,
                              rng=np.random.default_rng(0))
        np.testing.assert_array_equal(domain.band_valid.numpy(), valid)  # its own sensor's grid coverage
        cube = domain.cubes[0][torch.as_tensor(valid)][:, :24, :24]  # standardised with its own statistics
        assert abs(float(cube.mean())) < 1e-3 and abs(float(cube.std()) - 1) < 0.2
    coverages = {tuple(d.band_valid.tolist()) for d in pooled.domains}
    assert len(coverages) == 2 and set(seen_valid) == coverages  # batches of both sources, each with its bands


def test_tile_source_draw_is_its_sample_plus_its_band_validity() -> None:
    cubes = [np.random.default_rng(0).normal(size=(16, 20, 20)).astype(np.float32)]
    valid = np.arange(16) < 10
    source = TileSource(cubes, valid, 8)
    tiles, keep, band_valid = source.draw(3, torch.Generator().manual_seed(1))
    reference, reference_keep = source.sample(3, torch.Generator().manual_seed(1))
    assert torch.equal(tiles, reference) and keep is None and reference_keep is None
    assert torch.equal(band_valid, torch.as_tensor(valid))


# ---------------------------------------------------------------------------------------------- scene sources
def test_a_prepared_95x95_scene_is_a_source_of_all_its_pixels(prepared_samson, two_sources) -> None:
    (samson,) = open_sources("samson", {}, data_root=prepared_samson)
    assert samson.dataset.card.task == "scene"
    pixels = sample_pixels(samson.dataset, 20_000, np.random.default_rng(0))
    assert pixels.shape == (95 * 95, 156)  # every pixel (labels unread), no repetition
    transform, valid = fit_domain(samson.dataset, samson.dataset.card.wavelengths_nm, MICRO_S2, fit_pixels=5000,
                                  rng=np.random.default_rng(0))
    for tile in (32, 128):  # a tile larger than the scene: the scene is padded
        tiles, keep = domain_tiles(samson.dataset, transform, valid, tile).sample(2, torch.Generator().manual_seed(0))
        assert tiles.shape == (2, MICRO_S2.grid_bands, tile, tile) and keep is None
    artifact = pretrained_spectral_fm(Zoo(prepared_samson.parent / "zoo"),
                                      _micro_recipe(source=["samson", "src_vis"], epochs=1, pixels=200),
                                      data_root=prepared_samson, progress=False)
    assert artifact.metadata["source_pixels"] == {"samson": 100, "src_vis": 100}


def test_an_unprepared_scene_source_asks_to_be_prepared_under_the_runs_data_root(tmp_path, two_sources) -> None:
    empty = tmp_path / "empty_root"
    strategy = _strategy("cross_domain", {"source": ["src_vis", "samson"], "fm_options": {"dim": 16}},
                         data_root=empty)
    with pytest.raises(DataError, match=f"'samson' is not prepared under {empty}"):
        strategy.foundation_model()
    dataset = make_tiny_dataset()
    parts = make_split(dataset, "fraction=0.5", 0).parts
    strategy = _strategy("s2former", {"source": "samson", "model_options": MICRO_S2.to_dict(), "tile_size": 16},
                         dataset.card, data_root=empty)
    with pytest.raises(DataError, match=f"hsbench prepare samson --raw .* --data-root {empty}"):
        strategy.pretrain([SplitView(dataset, parts["train"], "train")])
