"""in_domain's ``spectral_spatial_svm``: the masked neighbourhood mean, its reading rule, saving, C on val."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_tiny_dataset

from hsbench.data import Dataset, Sample
from hsbench.data.transforms import build_transform, collect_labelled_pixels
from hsbench.errors import ConfigError, DataError
from hsbench.evaluation import view_miou
from hsbench.registry import STRATEGIES, lookup
from hsbench.runner import Runner, RunSpec
from hsbench.saved_model import load_run_model
from hsbench.seeding import SeedStreams
from hsbench.spatial_svm import SpectralSpatialSvmLearner, masked_box_mean
from hsbench.splits import Split, make_split
from hsbench.strategy import RunContext, SplitView

SSVM = {"model": "spectral_spatial_svm", "svm_window": 5, "svm_max_pixels": 100_000}


def _ctx(tmp_path) -> RunContext:
    return RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)


def _in_domain(options: dict, card, tmp_path):
    cls = lookup(STRATEGIES, "in_domain")
    return cls({**cls.defaults, **options}, _ctx(tmp_path), card)


def _loop_mean(cube: np.ndarray, mask: np.ndarray | None, radius: int) -> np.ndarray:
    """The definition, pixel by pixel: the mean over the window clipped to the image, of its mask pixels."""
    c, h, w = cube.shape
    out = np.zeros((c, h, w))
    for y in range(h):
        for x in range(w):
            rows, cols = slice(max(y - radius, 0), y + radius + 1), slice(max(x - radius, 0), x + radius + 1)
            keep = np.ones((h, w), bool)[rows, cols] if mask is None else mask[rows, cols]
            if keep.any():
                out[:, y, x] = cube[:, rows, cols][:, keep].astype(np.float64).mean(axis=1)
    return out


@pytest.mark.parametrize("radius", [0, 1, 2, 6])
def test_the_masked_box_mean_equals_a_loop_over_clipped_windows(radius: int) -> None:
    rng = np.random.default_rng(radius)
    cube = (rng.normal(size=(3, 7, 9)) * 10 + 50).astype(np.float32)
    mask = rng.random((7, 9)) < 0.4
    mask[3, 4] = False  # a pixel outside the mask still gets its window's mean (of the mask pixels)
    for m in (mask, None):
        np.testing.assert_allclose(masked_box_mean(cube, m, radius), _loop_mean(cube, m, radius), rtol=1e-6, atol=1e-4)
    # Borders: the corner's window is clipped, so its unmasked mean is that of the in-image block only.
    np.testing.assert_allclose(masked_box_mean(cube, None, 1)[:, 0, 0], cube[:, :2, :2].mean(axis=(1, 2)), rtol=1e-6)


def test_prediction_features_are_the_spectra_and_their_unmasked_window_means(tmp_path) -> None:
    card = make_tiny_dataset(task="scene", num_images=1).card
    learner = _in_domain(SSVM, card, tmp_path).learner
    cube = np.random.default_rng(0).normal(size=(card.num_bands, 10, 11)).astype(np.float32)
    features = learner.pixel_features(cube)
    assert features.shape == (2 * card.num_bands, 10, 11)
    np.testing.assert_array_equal(features[: card.num_bands], cube)
    np.testing.assert_allclose(features[card.num_bands :], _loop_mean(cube, None, 2), rtol=1e-6, atol=1e-5)


def _with_pixel(dataset: Dataset, yx: tuple[int, int], value: float) -> Dataset:
    """``dataset`` with every band of one pixel set to ``value``."""

    def load(sample_id: str) -> Sample:
        sample = dataset.load(sample_id)
        cube = np.array(sample.cube)
        cube[:, yx[0], yx[1]] = value
        return Sample(sample.id, cube, sample.labels)

    return Dataset(dataset.card, dataset.sample_ids, load, fingerprint=dataset.fingerprint + "-edited")


def _training_features(learner, transform, dataset: Dataset, split: Split) -> np.ndarray:
    features, _ = learner.training_pixels(transform, SplitView.of(dataset, split, "train"))
    return features


def test_no_val_or_test_spectrum_enters_a_training_feature(tmp_path) -> None:
    dataset = make_tiny_dataset(task="scene", num_images=1, height=40, width=40, unlabelled_fraction=0.3)
    split = make_split(dataset, "kshot=5", 0)
    (sample_id,) = dataset.sample_ids
    train, test = split.parts["train"][sample_id], split.parts["test"][sample_id]
    readable = split.readable(sample_id)
    learner = _in_domain(SSVM, dataset.card, tmp_path).learner
    pixels, _ = collect_labelled_pixels(SplitView.of(dataset, split, "train"), dataset.card.ignore_index,
                                        max_pixels=10**6, rng=np.random.default_rng(0))
    transform = build_transform("standardize").fit(pixels)
    before = _training_features(learner, transform, dataset, split)
    assert len(before) == train.sum()

    # A train pixel whose 5 x 5 window holds a test pixel and a readable (unlabelled) pixel besides itself.
    def in_window(yx, where):
        y, x = yx
        window = np.zeros_like(where)
        window[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3] = True
        window[y, x] = False
        return np.argwhere(window & where)

    centre = next(yx for yx in np.argwhere(train) if len(in_window(yx, test)) and len(in_window(yx, readable & ~train)))
    test_pixel, readable_pixel = in_window(centre, test)[0], in_window(centre, readable & ~train)[0]
    row = int(np.flatnonzero((np.argwhere(train) == centre).all(axis=1))[0])  # features come in row-major order

    after = _training_features(learner, transform, _with_pixel(dataset, tuple(test_pixel), 1e3), split)
    np.testing.assert_array_equal(after, before)  # a test value 1000 in the window changes nothing
    # The same change on a readable pixel of the window does move the centre's mean: the test above can fail.
    moved = _training_features(learner, transform, _with_pixel(dataset, tuple(readable_pixel), 1e3), split)
    assert not np.allclose(moved[row, dataset.card.num_bands :], before[row, dataset.card.num_bands :])
    np.testing.assert_array_equal(moved[row, : dataset.card.num_bands], before[row, : dataset.card.num_bands])


def test_the_centre_pixel_always_counts_in_its_own_mean(tmp_path) -> None:
    """A train pixel alone in its window (every neighbour unreadable) gets its own spectrum as the mean."""
    dataset = make_tiny_dataset(task="scene", num_images=1, height=16, width=16, unlabelled_fraction=0.0)
    (sample_id,) = dataset.sample_ids
    labels = dataset.load(sample_id).labels
    train = np.zeros_like(labels, dtype=bool)
    train[8, 8] = True
    view = SplitView(dataset, {sample_id: train}, "train", readable={sample_id: np.zeros_like(train)})
    learner = _in_domain(SSVM, dataset.card, tmp_path).learner
    transform = build_transform("raw").fit(np.zeros((1, dataset.card.num_bands)))
    features, y = learner.training_pixels(transform, view)
    assert features.shape == (1, 2 * dataset.card.num_bands) and y.tolist() == [labels[8, 8]]
    np.testing.assert_allclose(features[0, dataset.card.num_bands :], dataset.load(sample_id).cube[:, 8, 8], rtol=1e-6)


def test_spatial_context_is_half_the_window(tmp_path) -> None:
    cls = lookup(STRATEGIES, "in_domain")
    assert cls.spatial_context({**cls.defaults, "model": "spectral_spatial_svm"}) == 2  # default window 5
    assert cls.spatial_context({**cls.defaults, "model": "spectral_spatial_svm", "svm_window": 7}) == 3
    assert cls.spatial_context({**cls.defaults, "model": "spectral_spatial_svm", "svm_window": 1}) == 0
    assert cls.spatial_context({**cls.defaults, "model": "svm", "svm_window": 7}) == 0


@pytest.mark.parametrize("window", [4, 0, -3, 2.5, "5", True, None])
def test_a_bad_window_is_a_one_line_config_error_at_construction(tmp_path, window) -> None:
    card = make_tiny_dataset(task="scene", num_images=1).card
    with pytest.raises(ConfigError, match="svm_window must be a positive odd integer") as error:
        _in_domain({**SSVM, "svm_window": window}, card, tmp_path)
    assert "\n" not in str(error.value)


def test_c_is_selected_on_val_with_the_spatial_features(tmp_path) -> None:
    dataset = make_tiny_dataset(task="scene", num_images=1, height=48, width=48, unlabelled_fraction=0.3)
    split = make_split(dataset, "kshot=10", 0)
    grid = [100.0, 1e-3, 1000.0]  # measured: the middle one wins here (val mIoU 1.0 against 0.91, 0.91)
    strategy = _in_domain({**SSVM, "svm_c_grid": grid}, dataset.card, tmp_path)
    train, val = SplitView.of(dataset, split, "train"), SplitView.of(dataset, split, "val")
    facts = strategy.fit(train, val)
    scores = {float(c): s for c, s in facts["val_by_c"].items()}
    best = max(scores, key=scores.__getitem__)
    assert set(scores) == set(grid) and best == 1e-3 and scores[1e-3] > max(scores[100.0], scores[1000.0])
    assert facts["svm_c"] == best == strategy.learner.svm.C and facts["best_val_miou"] == scores[best]
    assert strategy.learner.svm.shape_fit_[1] == 2 * dataset.card.num_bands  # the SVM saw [spectrum, mean]
    assert view_miou(strategy.predict, val) == scores[best]  # the kept SVM is the one that scored best


def test_a_saved_scene_run_reloads_and_predicts_identically(tmp_path, tiny_registered) -> None:
    runner = Runner(tmp_path, progress=False)
    outcome = runner.run(RunSpec(tiny_registered["scene"], "in_domain", "kshot=10", 0,
                                 {**SSVM, "svm_c_grid": [1.0, 10.0], "svm_max_pixels": 500}))
    assert outcome.status == "completed", outcome.error
    facts = json.loads((outcome.run_dir / "facts.json").read_text())
    restored, stored = load_run_model(outcome.run_dir)
    assert isinstance(restored.learner, SpectralSpatialSvmLearner) and restored.learner.svm_c == facts["svm_c"]
    dataset = runner.dataset(tiny_registered["scene"])
    split = Split.load(outcome.run_dir / "split")
    fitted = lookup(STRATEGIES, "in_domain")(stored.options, _ctx(tmp_path / "refit"), stored.card)
    fitted.fit(SplitView.of(dataset, split, "train"), SplitView.of(dataset, split, "val"))
    for sample in SplitView.of(dataset, split, "test"):
        np.testing.assert_array_equal(restored.predict(sample), fitted.predict(sample))
    with np.load(outcome.run_dir / "confusion.npz") as confusions:
        from hsbench.evaluation import evaluate_view

        reloaded = evaluate_view(restored.predict, SplitView.of(dataset, split, "test")).total()
        np.testing.assert_array_equal(reloaded, confusions["test"])
    # A saved model of another window is refused rather than read with the wrong features.
    other = _in_domain({**stored.options, "svm_window": 3}, stored.card, tmp_path)
    state = restored.model_state()
    with pytest.raises(DataError, match="svm_window=5"):
        other.restore(state)


def test_tiled_prediction_with_the_spatial_context_as_margin_equals_the_whole_image(tmp_path) -> None:
    """``spatial_context`` is what a tiler must add around a tile so that no window is cut short."""
    from hsbench.predict import predict_tiled

    dataset = make_tiny_dataset(task="scene", num_images=1, height=48, width=48, unlabelled_fraction=0.3)
    split = make_split(dataset, "kshot=10", 0)
    options = {**SSVM, "svm_window": 7, "svm_c_grid": [10.0]}
    strategy = _in_domain(options, dataset.card, tmp_path)
    strategy.fit(SplitView.of(dataset, split, "train"), SplitView.of(dataset, split, "val"))
    sample = dataset.load(dataset.sample_ids[0])
    whole = strategy.predict(sample)
    margin = type(strategy).spatial_context(strategy.cfg)
    assert margin == 3
    np.testing.assert_array_equal(predict_tiled(strategy.predict, sample, 16, margin), whole)

    def window_means(tile: Sample) -> np.ndarray:  # the first band's window mean, as integers predict_tiled stitches
        features = strategy.learner.pixel_features(strategy.transform.apply(tile.cube))
        return np.round(features[dataset.card.num_bands] * 1e4).astype(np.int64)

    means = window_means(sample)
    np.testing.assert_array_equal(predict_tiled(window_means, sample, 16, margin), means)
    assert not np.array_equal(predict_tiled(window_means, sample, 16, margin - 1), means)  # the context is not less


def test_transductive_training_reads_whole_scenes_and_marks_the_label(tmp_path) -> None:
    """``transductive=true``: a test value inside a train pixel's window now moves the fitted SVM; the label says so."""
    dataset = make_tiny_dataset(task="scene", num_images=1, height=40, width=40, unlabelled_fraction=0.0)
    split = make_split(dataset, "kshot=5", 0)
    (sample_id,) = dataset.sample_ids
    test = split.parts["test"][sample_id]

    def load(sample_id: str) -> Sample:
        sample = dataset.load(sample_id)
        return Sample(sample.id, np.where(test, np.float32(1e3), sample.cube), sample.labels)

    edited = Dataset(dataset.card, dataset.sample_ids, load, fingerprint=dataset.fingerprint + "-test-edited")

    def support_vectors(data: Dataset, transductive: bool) -> np.ndarray:
        strategy = _in_domain({**SSVM, "svm_c": 10.0, "transductive": transductive}, data.card, tmp_path)
        strategy.fit(SplitView.of(data, split, "train"), SplitView.of(data, split, "val"))
        return strategy.learner.svm.support_vectors_

    np.testing.assert_array_equal(support_vectors(edited, False), support_vectors(dataset, False))
    assert not np.array_equal(support_vectors(edited, True), support_vectors(dataset, True))
    cls = lookup(STRATEGIES, "in_domain")
    assert cls.label({**SSVM, "transductive": True}).endswith("†")
    assert cls.label(SSVM) == "in_domain/spectral_spatial_svm"
