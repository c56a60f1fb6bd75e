"""No transductive leaks: what pretraining and fitted statistics may read of a scene, and ``transductive=true``.

The decisive check poisons a scene's val and test pixels and the guard band around its test pixels (1e6) and
asserts that pretraining output (fitted standardisation, pretrained weights) and trained weights (dense networks
on crops, s2former's DAFT fine-tuning) are byte-identical to the clean scene's; with ``transductive=true``, or
with the blanking switched off, the same poison changes them, so the check can fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_dataset
from scipy import ndimage

from hsbench.data import Dataset, Sample, array_digest
from hsbench.pretraining.spectral_mae import sample_pixels
from hsbench.registry import STRATEGIES, lookup
from hsbench.seeding import SeedStreams
from hsbench.splits import Split, make_split
from hsbench.strategy import TRANSDUCTIVE_MARK, RunContext, SplitView
from hsbench.zoo import Zoo
from strategies.s2former import _SMOKE

POISON = 1e6
RADIUS = 3
SPECS = ("kshot=5,disjoint", "kshot=5", "fraction=0.2")


def _scene() -> Dataset:
    return make_tiny_dataset(task="scene", num_images=1, height=48, width=48, unlabelled_fraction=0.3, seed=3)


def _split(dataset: Dataset, spec: str) -> Split:
    return make_split(dataset, spec, 0, guard=RADIUS, block_size=12)


def _poisoned(dataset: Dataset, split: Split, *, spare_val: bool = False) -> Dataset:
    """The scene with every pixel a strategy may not read without labels set to ``POISON`` (with ``spare_val``:
    only the test pixels and their guard band, which a val view must not show either)."""
    samples = {}
    for sample_id in dataset.sample_ids:
        sample = dataset.load(sample_id)
        readable = split.readable(sample_id)
        if readable is not None and spare_val and (val := split.parts["val"].get(sample_id)) is not None:
            readable = readable | val
        cube = sample.cube if readable is None else np.where(readable[None], sample.cube, np.float32(POISON))
        samples[sample_id] = Sample(sample_id, cube.astype(np.float32), sample.labels)
    fingerprint = array_digest(*(a for s in samples.values() for a in (s.cube, s.labels)))
    return Dataset(dataset.card, list(samples), samples.__getitem__, fingerprint=fingerprint)


@pytest.mark.parametrize("spec", SPECS)
def test_readable_pixels_exclude_val_test_and_the_guard_band(spec: str) -> None:
    dataset = _scene()
    split = _split(dataset, spec)
    guard = RADIUS if "disjoint" in spec else 0
    for sample_id, train in split.parts["train"].items():
        readable = split.readable(sample_id)
        assert readable is not None and not readable.flags.writeable
        test = split.parts["test"][sample_id]
        # Chebyshev distance to the nearest test pixel, computed independently of the split's guard_band.
        distance = ndimage.distance_transform_cdt(~test, metric="chessboard")
        assert distance[readable].min() > guard
        assert not (readable & split.parts["val"][sample_id]).any()
        assert readable[train].all()  # labelled train pixels stay readable
        assert (~readable).sum() < readable.size  # and so does some of the scene
    view = SplitView.of(dataset, split, "train")
    assert all(np.array_equal(view.readable(i), split.readable(i)) for i in view.sample_ids)
    assert all(view.transductive().readable(i) is None for i in view.sample_ids)


def test_segmentation_train_images_are_readable_whole(tiny_dataset) -> None:
    split = make_split(tiny_dataset, "kshot=2", 0)
    assert all(mask is None for mask in split.readable_masks("train").values())


def test_a_view_built_without_its_split_reads_only_its_own_pixels() -> None:
    dataset = _scene()
    split = _split(dataset, "kshot=5")
    bare = SplitView(dataset, split.parts["train"], "train")
    assert all(np.array_equal(bare.readable(i), bare.mask(i)) for i in bare.sample_ids)


def test_sampled_statistics_pixels_ignore_the_poison() -> None:
    dataset = _scene()
    split = _split(dataset, "kshot=5,disjoint")
    clean = sample_pixels(SplitView.of(dataset, split, "train"), 500, np.random.default_rng(0))
    dirty = sample_pixels(SplitView.of(_poisoned(dataset, split), split, "train"), 500, np.random.default_rng(0))
    assert clean.tobytes() == dirty.tobytes() and clean.max() < POISON


def test_ssl_losses_leave_out_blanked_pixels() -> None:
    """A tile of forbidden pixels only (a disjoint split's test block) adds nothing and no NaN; keep=1 is a no-op."""
    from hsbench.models.s2former import S2FormerConfig
    from hsbench.pretraining.s2former_ssl import S2FormerSSL, S2FormerSSLRecipe, ssl_losses

    cfg = S2FormerConfig(dim=16, depth=1, heads=2, grid_bands=16, patch_size=2)
    recipe = S2FormerSSLRecipe(model=cfg.to_dict())
    torch.manual_seed(0)
    model, tiles = S2FormerSSL(cfg), torch.randn(2, 16, 8, 8)
    valid = torch.ones(16, dtype=torch.bool)

    def losses(keep):
        terms = ssl_losses(model, tiles, valid, recipe, torch.Generator().manual_seed(0), keep)
        return {name: value.detach() for name, value in terms.items()}

    none = losses(torch.zeros(2, 1, 8, 8))
    assert all(torch.isfinite(v) for v in none.values())
    assert float(none["spatial"]) == float(none["spectral"]) == float(none["frequency"]) == 0.0
    full, plain = losses(torch.ones(2, 1, 8, 8)), losses(None)
    for name, value in plain.items():
        torch.testing.assert_close(full[name], value)


def _s2former_pretrain(dataset: Dataset, split: Split, zoo: Path, **options):
    cls = lookup(STRATEGIES, "s2former")
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=Path("."), progress=False,
                     zoo=Zoo(zoo))
    strategy = cls({**cls.defaults, **_SMOKE, "tile_size": 8, "pretrain_seed": 0, **options}, ctx, dataset.card)
    strategy.pretrain([SplitView.of(dataset, split, "train")])
    return strategy


def _output_bytes(strategy) -> bytes:
    """Everything pretraining produced: the fitted standardisation, band validity and encoder weights."""
    parts = [strategy.transform.mean, strategy.transform.matrix, strategy.band_valid]
    parts += [strategy.encoder_weights[k].numpy() for k in sorted(strategy.encoder_weights)]
    return b"".join(np.ascontiguousarray(p).tobytes() for p in parts)


@pytest.mark.parametrize("spec", ["kshot=5,disjoint", "kshot=5"])
def test_s2former_pretraining_is_byte_identical_on_a_poisoned_scene(tmp_path, spec: str) -> None:
    dataset = _scene()
    split = _split(dataset, spec)
    poisoned = _poisoned(dataset, split)
    assert _split(poisoned, spec).hash == split.hash and poisoned.fingerprint != dataset.fingerprint
    zoo = tmp_path / "zoo"
    clean = _s2former_pretrain(dataset, split, zoo)
    dirty = _s2former_pretrain(poisoned, split, zoo)
    assert len(list(zoo.glob("*/weights.safetensors"))) == 3  # one source stage, two target stages: no cache hit
    assert _output_bytes(clean) == _output_bytes(dirty)
    assert np.isfinite(clean.transform.mean).all() and clean.transform.mean.max() < 1e3


def test_s2former_transductive_reads_the_poison_and_is_marked(tmp_path) -> None:
    dataset = _scene()
    split = _split(dataset, "kshot=5,disjoint")
    poisoned = _poisoned(dataset, split)
    clean = _s2former_pretrain(dataset, split, tmp_path / "zoo", transductive=True)
    dirty = _s2former_pretrain(poisoned, split, tmp_path / "zoo", transductive=True)
    assert _output_bytes(clean) != _output_bytes(dirty)
    assert dirty.transform.mean.max() > 1e3  # the poison went into the standardisation
    default = _s2former_pretrain(dataset, split, tmp_path / "zoo")
    assert _output_bytes(default) != _output_bytes(clean)  # and the region changes what is read
    cls = lookup(STRATEGIES, "s2former")
    assert cls.label({**cls.defaults, "transductive": True}) == "s2former" + TRANSDUCTIVE_MARK
    assert cls.label({**cls.defaults, "no_daft": True, "transductive": True}) == "s2former/no_daft†"
    assert cls.label(dict(cls.defaults)) == "s2former"


@pytest.mark.parametrize("input_spec", ["standardize", "pca=3"])
def test_in_domain_input_statistics_ignore_the_poison(tmp_path, input_spec: str) -> None:
    """in_domain, cross_domain and cross_modality fit their statistics through ``collect_labelled_pixels`` on the
    train view: labelled train pixels only, so poisoned val and test pixels must not move them either."""
    dataset = _scene()
    split = _split(dataset, "kshot=5")
    cls = lookup(STRATEGIES, "in_domain")
    states = []
    for data in (dataset, _poisoned(dataset, split)):
        ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)
        options = {**cls.defaults, "model": "svm", "input": input_spec, "svm_c": 1.0, "svm_max_pixels": 200}
        strategy = cls(options, ctx, data.card)
        strategy.fit(SplitView.of(data, split, "train"), SplitView.of(data, split, "val"))
        states.append(b"".join(v.tobytes() for _, v in sorted(strategy.transform.state().items())))
    assert states[0] == states[1] and states[0]


def test_a_transductive_run_is_labelled_and_has_its_own_id(tmp_path, tiny_registered) -> None:
    from hsbench.runner import Runner, RunSpec

    runner = Runner(tmp_path / "results", progress=False)
    options = {**_SMOKE, "epochs": 2, "target_pretrain_steps": 2}
    plain = runner.run(RunSpec(tiny_registered["scene"], "s2former", "kshot=5", 0, options))
    marked = runner.run(RunSpec(tiny_registered["scene"], "s2former", "kshot=5", 0, {**options, "transductive": True}))
    assert plain.status == marked.status == "completed", (plain.error, marked.error)
    assert (plain.label, marked.label) == ("s2former", "s2former" + TRANSDUCTIVE_MARK)
    assert plain.run_id != marked.run_id


# ----------------------------------------------------------------------------------- training inputs on scenes
def _state_bytes(module: torch.nn.Module) -> bytes:
    return b"".join(v.detach().cpu().numpy().tobytes() for _, v in sorted(module.state_dict().items()))


def _in_domain_selected(dataset: Dataset, split: Split, tmp_path: Path) -> tuple[dict, bytes]:
    """in_domain/runet's fit facts (best val score and epoch) and its selected weights."""
    cls = lookup(STRATEGIES, "in_domain")
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)
    options = {**cls.defaults, "model": "runet", "model_options": {"base_channels": 4}, "epochs": 2,
               "batch_size": 2, "min_steps_per_epoch": 1, "crop_size": 32}
    strategy = cls(options, ctx, dataset.card)
    torch.manual_seed(0)
    facts = strategy.fit(SplitView.of(dataset, split, "train"), SplitView.of(dataset, split, "val"))
    return facts, _state_bytes(strategy.learner.network)


def _in_domain_weights(dataset: Dataset, split: Split, tmp_path: Path) -> bytes:
    return _in_domain_selected(dataset, split, tmp_path)[1]


def _fixed_selection(monkeypatch, module: str) -> None:
    """A constant val score: predicting a val image of a scene reads its (poisoned) pixels, which is allowed, so
    model selection is taken out and the comparison is about training alone."""
    monkeypatch.setattr(f"{module}.view_miou", lambda *args, **kwargs: 0.0)


def test_dense_training_crops_are_blanked_outside_the_readable_region(tmp_path, monkeypatch) -> None:
    """in_domain/runet (and every learner on TransformedView): poisoned val, test and guard pixels inside the
    training crops change no trained weight nor BatchNorm statistic; without the blanking they do."""
    _fixed_selection(monkeypatch, "hsbench.learners")
    dataset = _scene()
    split = _split(dataset, "kshot=5,disjoint")
    poisoned = _poisoned(dataset, split)
    clean = _in_domain_weights(dataset, split, tmp_path)
    assert clean == _in_domain_weights(poisoned, split, tmp_path)
    monkeypatch.setattr("hsbench.learners.blank_unreadable", lambda cube, readable: cube)
    assert _in_domain_weights(dataset, split, tmp_path) != _in_domain_weights(poisoned, split, tmp_path)


def _s2former_finetuned(dataset: Dataset, split: Split, tmp_path: Path, **options):
    strategy = _s2former_pretrain(dataset, split, tmp_path / "zoo", no_pretrain=True, epochs=2, eval_every=1,
                                  **options)
    strategy.fit(SplitView.of(dataset, split, "train"), SplitView.of(dataset, split, "val"))
    return strategy


def test_s2former_daft_finetuning_is_byte_identical_on_a_poisoned_scene(tmp_path, monkeypatch) -> None:
    _fixed_selection(monkeypatch, "strategies.s2former")
    dataset = _scene()
    split = _split(dataset, "kshot=5,disjoint")
    poisoned = _poisoned(dataset, split)
    clean = _s2former_finetuned(dataset, split, tmp_path)
    assert clean.network.__class__.__name__ == "DaftSegmenter"  # student and EMA teacher both compared
    assert _state_bytes(clean.network) == _state_bytes(_s2former_finetuned(poisoned, split, tmp_path).network)
    # The tiles carry the readable mask to DAFT's alignment; without DAFT, or transductive, they do not.
    assert len(clean.training_tiles(SplitView.of(dataset, split, "train"))[0]) == 3
    for options in ({"no_daft": True}, {"transductive": True}):
        strategy = _s2former_pretrain(dataset, split, tmp_path / "zoo", no_pretrain=True, **options)
        assert len(strategy.training_tiles(SplitView.of(dataset, split, "train"))[0]) == 2
    monkeypatch.setattr("strategies.s2former.blank_unreadable", lambda cube, readable: cube)
    leaky = _s2former_finetuned(poisoned, split, tmp_path)
    assert _state_bytes(leaky.network) != _state_bytes(_s2former_finetuned(dataset, split, tmp_path).network)


def test_daft_alignment_ignores_forbidden_pixels() -> None:
    """Poison outside ``readable`` leaves the alignment unchanged; a tile of forbidden pixels only adds 0."""
    from hsbench.models.s2former import S2FormerConfig, S2FormerEncoder, S2FormerSegmenter
    from hsbench.models.s2former_daft import DaftConfig, DaftSegmenter

    torch.manual_seed(0)
    cfg = S2FormerConfig(dim=16, depth=1, heads=2, grid_bands=16, patch_size=2)
    student = S2FormerSegmenter(S2FormerEncoder(cfg), 3, torch.ones(16, dtype=torch.bool))
    x = torch.randn(2, 16, 8, 8)
    readable = torch.zeros(2, 8, 8, dtype=torch.bool)
    readable[0, :5, :3] = True  # part of one tile; the second tile is forbidden whole

    def alignment(cube: torch.Tensor, mask: torch.Tensor | None) -> float:
        daft = DaftSegmenter(student, DaftConfig(total_steps=1), torch.Generator().manual_seed(0))
        return float(daft.alignment(cube, mask).detach())

    dirty = torch.where(readable[:, None], x, torch.tensor(POISON))
    assert alignment(x, readable) == alignment(dirty, readable) > 0
    assert alignment(x, None) != alignment(dirty, None)
    assert alignment(x, torch.zeros_like(readable)) == 0.0


# ------------------------------------------------------------------------------------- model selection on scenes
def test_a_val_view_of_a_scene_hides_test_and_guard_pixels(tiny_dataset) -> None:
    """Test and guard pixels become the per-band mean of the rest; val and readable pixels keep their values;
    transductive and segmentation val views hand out the images unchanged."""
    dataset = _scene()
    split = _split(dataset, "kshot=5,disjoint")
    poisoned = _poisoned(dataset, split, spare_val=True)
    sample_id = dataset.sample_ids[0]
    clean, dirty = (SplitView.of(d, split, "val").load(sample_id) for d in (dataset, poisoned))
    assert clean.cube.tobytes() == dirty.cube.tobytes() and dirty.cube.max() < POISON
    shown = split.readable(sample_id) | split.parts["val"][sample_id]
    raw = dataset.load(sample_id).cube
    assert np.array_equal(clean.cube[:, shown], raw[:, shown]) and not shown.all()
    np.testing.assert_allclose(clean.cube[:, ~shown], raw[:, shown].mean(axis=1)[:, None].repeat((~shown).sum(), 1),
                               rtol=1e-6)
    assert SplitView.of(poisoned, split, "val").transductive().load(sample_id).cube.max() == POISON
    seg_split = make_split(tiny_dataset, "kshot=2", 0)
    for sample_id in seg_split.parts["val"]:
        assert SplitView.of(tiny_dataset, seg_split, "val").load(sample_id).cube is tiny_dataset.load(sample_id).cube



def test_model_selection_ignores_poisoned_test_and_guard_pixels(tmp_path) -> None:
    """Predicting the val pixels of a scene (early stopping, best epoch) reads no test or guard value."""
    dataset = _scene()
    split = _split(dataset, "kshot=5,disjoint")
    clean = _in_domain_selected(dataset, split, tmp_path)
    dirty = _in_domain_selected(_poisoned(dataset, split, spare_val=True), split, tmp_path)
    assert clean[0]["best_val_miou"] == dirty[0]["best_val_miou"] and clean[0]["best_epoch"] == dirty[0]["best_epoch"]
    assert clean[1] == dirty[1]


def test_stored_val_metrics_ignore_poisoned_test_and_guard_pixels(tmp_path) -> None:
    """The runner's final val evaluation (and so a sweep's objective) gets the same hiding as the strategy."""
    from conftest import register_tiny_provider

    from hsbench.registry import DATASETS
    from hsbench.runner import Runner, RunSpec

    clean_provider = register_tiny_provider("tiny_scene_clean", task="scene", num_images=1, height=48, width=48,
                                            unlabelled_fraction=0.3, seed=3)
    runner = Runner(tmp_path / "results", progress=False)
    options = {"model": "runet", "model_options": {"base_channels": 4}, "epochs": 2, "batch_size": 2,
               "min_steps_per_epoch": 1, "crop_size": 32}
    spec = "kshot=5,disjoint,guard=3"
    try:
        clean = runner.run(RunSpec("tiny_scene_clean", "in_domain", spec, 0, options))
        split = Split.load(clean.run_dir / "split")
        poisoned = _poisoned(clean_provider.open(), split, spare_val=True)
        DATASETS.register_module(name="tiny_scene_poisoned", module=type("Poisoned", (clean_provider,), {
            "open": classmethod(lambda cls, **kwargs: poisoned)}), force=True)
        dirty = runner.run(RunSpec("tiny_scene_poisoned", "in_domain", spec, 0, options))
    finally:
        for name in ("tiny_scene_clean", "tiny_scene_poisoned"):
            DATASETS.module_dict.pop(name, None)
    assert clean.status == dirty.status == "completed", (clean.error, dirty.error)
    assert Split.load(dirty.run_dir / "split").hash == split.hash and clean.run_id != dirty.run_id
    val = [json.loads((o.run_dir / "metrics.json").read_text())["val"] for o in (clean, dirty)]
    assert val[0] == val[1]


def test_only_a_transductive_run_gets_whole_val_scenes(tmp_path, tiny_registered) -> None:
    """The runner's val view (the strategy's and the final evaluation's) hides test pixels unless transductive."""
    from hsbench.runner import Runner, RunSpec, _PhaseTimer

    runner = Runner(tmp_path / "results", progress=False)
    for transductive in (False, True):
        spec = RunSpec(tiny_registered["scene"], "s2former", "kshot=5", 0, {"transductive": transductive})
        prepared = runner._prepare(spec, _PhaseTimer())
        sample_id = prepared.dataset.sample_ids[0]
        whole = prepared.dataset.load(sample_id).cube
        assert np.array_equal(prepared.view("val").load(sample_id).cube, whole) == transductive
        assert np.array_equal(prepared.view("test").load(sample_id).cube, whole)  # predicting test reads it
