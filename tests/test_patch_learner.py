"""PatchNetworkLearner: patch networks trained on the windows of labelled train pixels only (hsbench.patch_learner)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_tiny_dataset

import hsbench.models  # noqa: F401  (registers the networks)
import strategies  # noqa: F401  (registers in_domain)
from hsbench.data import Dataset, Sample
from hsbench.data.transforms import build_transform, collect_labelled_pixels
from hsbench.engine import hflip_batch
from hsbench.evaluation import view_miou
from hsbench.learners import TRAINING_DEFAULTS, DenseNetworkLearner
from hsbench.metrics import confusion_matrix, miou
from hsbench.models.patch_classifiers import PatchClassifier
from hsbench.models.patches import patches_around
from hsbench.patch_learner import LabelledWindows, PatchNetworkLearner, patch_training_options
from hsbench.registry import MODELS, STRATEGIES, lookup, names
from hsbench.seeding import SeedStreams
from hsbench.splits import make_split
from hsbench.strategy import RunContext, SplitView, blank_unreadable

SMALL = {"cnn1d": {}, "cnn3d": {"patch_size": 3}, "hybridsn": {"patch_size": 9}, "ssrn": {"patch_size": 3}}
PATCH_NETWORKS = sorted(SMALL)


def _scene(loader_edit=None) -> Dataset:
    """A 32x32 scene (30 % unlabelled pixels); ``loader_edit(cube)`` may change the cube every load returns."""
    base = make_tiny_dataset(task="scene", num_images=1, height=32, width=32, unlabelled_fraction=0.3)
    if loader_edit is None:
        return base

    def load(sample_id: str) -> Sample:
        sample = base.load(sample_id)
        cube = sample.cube.copy()
        loader_edit(cube)
        return Sample(sample.id, cube, sample.labels)

    return Dataset(base.card, list(base.sample_ids), load, fingerprint=base.fingerprint)


def _views(dataset: Dataset, spec: str = "kshot=5") -> tuple[SplitView, SplitView, SplitView]:
    split = make_split(dataset, spec, 0)
    return tuple(SplitView.of(dataset, split, part) for part in ("train", "val", "test"))  # type: ignore[return-value]


def _fitted_transform(train: SplitView, spec: str = "standardize"):
    pixels, _ = collect_labelled_pixels(train, train.card.ignore_index, max_pixels=10_000,
                                        rng=np.random.default_rng(0))
    return build_transform(spec, task="scene").fit(pixels)


def _cfg(model: str, **options) -> dict:
    return {**lookup(STRATEGIES, "in_domain").defaults, "model": model, "model_options": SMALL.get(model, {}),
            "epochs": 3, "lr": 0.005, "batch_size": 4, **options}


def _learner(model: str, tmp_path, **options) -> PatchNetworkLearner:
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=tmp_path, progress=False)
    torch.manual_seed(0)
    return PatchNetworkLearner(_cfg(model, **options), ctx, make_tiny_dataset(task="scene").card)


# ------------------------------------------------------------------------------------------ training windows
def test_windows_are_cut_from_the_blanked_transformed_cube() -> None:
    train, _, _ = _views(_scene())
    transform = _fitted_transform(train)
    sample = train.load(train.sample_ids[0])
    rows, cols = np.nonzero(sample.labels != train.card.ignore_index)
    blanked = blank_unreadable(transform.apply(sample.cube), train.readable(sample.id))
    at = (torch.from_numpy(rows), torch.from_numpy(cols))
    expected = patches_around(torch.from_numpy(blanked)[None], 5, *at)
    mask = torch.tensor(train.readable(sample.id), dtype=torch.float32)[None, None]
    readable = patches_around(mask, 5, *at)[:, 0] > 0.5
    assert not bool(readable.all())  # some neighbour is unreadable (the test means something)

    plain = LabelledWindows(train, transform.apply, 5, train.card.ignore_index, centre_fill=False)
    torch.testing.assert_close(torch.stack([w for w, _ in plain]), expected, rtol=0, atol=0)

    windows = LabelledWindows(train, transform.apply, 5, train.card.ignore_index, min_items=64)
    assert windows.num_windows == len(rows) == 20  # kshot=5, 4 classes: the labelled train pixels, nothing else
    assert len(windows) == 80  # repeated whole (4 x 20) to at least 64 items
    got = torch.stack([windows[i][0] for i in range(20)])
    centre = expected[:, :, 2, 2]
    torch.testing.assert_close(got, torch.where(readable[:, None], expected, centre[..., None, None]), rtol=0, atol=0)
    assert [int(windows[i][1].item()) for i in range(20)] == sample.labels[rows, cols].tolist()
    assert windows[0][1].shape == (1, 1)
    torch.testing.assert_close(windows[20][0], windows[0][0])  # repetition is of the same windows


def _test_pixel_inside_a_train_window(dataset: Dataset, radius: int) -> tuple[int, int]:
    split = make_split(dataset, "kshot=5", 0)
    sample_id = dataset.sample_ids[0]
    train, test = split.parts["train"][sample_id], split.parts["test"][sample_id]
    for r, c in zip(*np.nonzero(train), strict=True):
        window = test[max(r - radius, 0) : r + radius + 1, max(c - radius, 0) : c + radius + 1]
        if window.any():
            dr, dc = np.argwhere(window)[0]
            return int(max(r - radius, 0) + dr), int(max(c - radius, 0) + dc)
    raise AssertionError("no test pixel next to a train pixel")


def test_a_test_pixels_spectrum_never_reaches_training(tmp_path) -> None:
    """Poisoning a test pixel inside a train pixel's window changes neither the windows nor the fitted weights."""
    row, col = _test_pixel_inside_a_train_window(_scene(), radius=1)

    def poison(cube: np.ndarray) -> None:
        cube[:, row, col] = 1e4

    clean, poisoned = _scene(), _scene(poison)
    assert not np.array_equal(clean.load(clean.sample_ids[0]).cube, poisoned.load(poisoned.sample_ids[0]).cube)
    fitted = []
    for dataset in (clean, poisoned):
        train, val, _ = _views(dataset)
        transform = _fitted_transform(train)  # fitted on labelled train pixels: the same for both
        windows = LabelledWindows(train, transform.apply, 3, train.card.ignore_index)
        raw = patches_around(torch.from_numpy(transform.apply(train.load(dataset.sample_ids[0]).cube))[None], 3)
        learner = _learner("cnn3d", tmp_path, epochs=2)
        facts = learner.fit(transform, train, val)
        fitted.append((torch.stack([w for w, _ in windows]), raw, learner.model_state().tensors, facts))
    (clean_windows, clean_raw, clean_weights, clean_facts), (bad_windows, bad_raw, bad_weights, bad_facts) = fitted
    assert not torch.equal(clean_raw, bad_raw)  # an unblanked cube would carry the poison into some window
    torch.testing.assert_close(bad_windows, clean_windows, rtol=0, atol=0)
    assert clean_weights.keys() == bad_weights.keys()
    for name, tensor in clean_weights.items():
        torch.testing.assert_close(bad_weights[name], tensor, rtol=0, atol=0, msg=name)
    assert bad_facts["val_history"] == clean_facts["val_history"]  # val hides test pixels as well


# ------------------------------------------------------------------------------------------ fit / val / predict
@pytest.mark.parametrize("model", PATCH_NETWORKS)
def test_val_score_fills_hidden_positions_like_training_and_is_the_dense_score_where_nothing_is_hidden(
    tmp_path, model: str
) -> None:
    train, val, test = _views(_scene())
    transform = _fitted_transform(train)
    learner = _learner(model, tmp_path)
    facts = learner.fit(transform, train, val)
    network, size = learner.network, learner.network.patch_size
    assert facts["best_val_miou"] == learner.val_miou(transform, val)  # the selected weights are loaded after fit
    # Nothing hidden (a transductive val view, a test view): the dense score the runner stores.
    for view in (val.transductive(), test):
        assert learner.val_miou(transform, view) == view_miou(lambda s: learner.predict(transform.apply(s.cube)), view)
    # The scene's val view hides its test pixels: each val window takes the centre spectrum there, as in training.
    (sample_id,) = val.sample_ids
    sample = val.load(sample_id)
    rows, cols = (torch.from_numpy(a) for a in np.nonzero(sample.labels != val.card.ignore_index))
    windows = patches_around(torch.from_numpy(transform.apply(sample.cube))[None], size, rows, cols)
    visible = torch.from_numpy(val.visible(sample_id).astype(np.float32))[None, None]
    known = patches_around(visible, size, rows, cols)[:, 0] > 0.5
    centre = windows[:, :, size // 2, size // 2]
    filled = torch.where(known[:, None], windows, centre[:, :, None, None])
    network.eval()
    with torch.no_grad():
        predicted = network.classify(filled).argmax(1).numpy()
    k = val.card.num_classes
    expected = miou(confusion_matrix(sample.labels[rows.numpy(), cols.numpy()], predicted, k))
    assert learner.val_miou(transform, val) == pytest.approx(expected, abs=0)
    if size > 1:
        assert not known.all()  # the test exercises the fill


def test_a_segmentation_dataset_of_several_images_trains_and_scores_like_the_dense_val(tmp_path) -> None:
    dataset = make_tiny_dataset()
    train, val, _ = _views(dataset, "fraction=0.5")
    assert len(train.sample_ids) > 1 and len(val.sample_ids) > 1
    transform = _fitted_transform(train)
    learner = _learner("cnn3d", tmp_path)
    facts = learner.fit(transform, train, val)
    assert facts["train_windows"] == train.labelled_pixel_count()
    assert facts["best_val_miou"] == view_miou(lambda s: learner.predict(transform.apply(s.cube)), val)


def test_fit_never_runs_the_dense_forward(tmp_path, monkeypatch) -> None:
    """Training and model selection classify labelled windows only (the speed of the learner)."""
    train, val, _ = _views(_scene())
    transform = _fitted_transform(train)
    learner = _learner("cnn3d", tmp_path)

    def dense(*_args, **_kwargs):
        raise AssertionError("dense forward during fit")

    monkeypatch.setattr(PatchClassifier, "forward", dense)
    facts = learner.fit(transform, train, val)
    assert facts["epochs_run"] == 3 and facts["train_windows"] == 20 and facts["patch_size"] == 3
    assert set(facts) >= {"best_val_miou", "best_epoch", "stopped_reason", "parameters", "val_history",
                          "epoch_seconds"}


def test_min_steps_per_epoch_repeats_a_tiny_set(tmp_path) -> None:
    train, val, _ = _views(_scene(), "kshot=1")
    transform = _fitted_transform(train)
    steps = []
    learner = _learner("cnn1d", tmp_path, epochs=1, batch_size=4, min_steps_per_epoch=5)
    original = torch.optim.AdamW.step

    def count(self, *args, **kwargs):
        steps.append(1)
        return original(self, *args, **kwargs)

    torch.optim.AdamW.step = count
    try:
        facts = learner.fit(transform, train, val)
    finally:
        torch.optim.AdamW.step = original
    assert facts["train_windows"] == 4 and len(steps) == 5  # 4 windows repeated to 20 items = 5 batches of 4


@pytest.mark.parametrize("model", ["cnn3d", "ssrn"])
def test_fit_predict_and_restore_give_identical_predictions(tmp_path, model: str) -> None:
    dataset = _scene()
    train, val, test = _views(dataset)
    transform = _fitted_transform(train)
    learner = _learner(model, tmp_path, epochs=4)
    learner.fit(transform, train, val)
    features = transform.apply(test.load(dataset.sample_ids[0]).cube)
    labels = learner.predict(features)
    assert labels.shape == (32, 32) and labels.dtype == np.int64
    assert len(np.unique(labels)) > 1  # not a constant map
    restored = _learner(model, tmp_path / "other")
    torch.manual_seed(123)  # a different initialisation, overwritten by the state
    restored.restore(transform, learner.model_state())
    np.testing.assert_array_equal(restored.predict(features), labels)


def test_flipped_windows_keep_the_centre_pixel_and_the_target() -> None:
    windows = torch.randn(6, 4, 5, 5)
    target = torch.arange(6).reshape(6, 1, 1)
    flipped, flipped_target = hflip_batch(windows, target, 1.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(flipped[..., 2], windows[..., 2])  # the centre column stays
    torch.testing.assert_close(flipped[..., 0], windows[..., 4])
    torch.testing.assert_close(flipped_target, target)


# ------------------------------------------------------------------------------------------ context and routing
def test_spatial_context_is_half_the_window() -> None:
    defaults = lookup(STRATEGIES, "in_domain").defaults
    assert PatchNetworkLearner.spatial_context({**defaults, "model": "cnn1d"}) == 0
    assert PatchNetworkLearner.spatial_context({**defaults, "model": "cnn3d"}) == 2  # default patch 5
    assert PatchNetworkLearner.spatial_context({**defaults, "model": "ssrn"}) == 3  # default patch 7
    assert PatchNetworkLearner.spatial_context({**defaults, "model": "hybridsn"}) == 12  # default patch 25
    assert PatchNetworkLearner.spatial_context({**defaults, "model": "ssrn", "model_options": {"patch_size": 9}}) == 4
    in_domain = lookup(STRATEGIES, "in_domain")
    assert in_domain.spatial_context({**defaults, "model": "hybridsn", "model_options": {"patch_size": 11}}) == 5


def test_in_domain_routes_every_patch_network_to_the_patch_learner() -> None:
    in_domain = lookup(STRATEGIES, "in_domain")
    patch = [n for n in names(MODELS) if issubclass(lookup(MODELS, n), PatchClassifier)]
    assert set(PATCH_NETWORKS) <= set(patch)
    for name in patch:
        assert in_domain._learner_class(name) is PatchNetworkLearner
    assert in_domain._learner_class("runet") is DenseNetworkLearner
    assert any(issubclass(lookup(MODELS, o["model"]), PatchClassifier)
               for o in in_domain.smoke_options if o.get("model") in names(MODELS))


def test_a_network_recipe_fills_only_options_left_at_their_default(monkeypatch) -> None:
    monkeypatch.setattr(lookup(MODELS, "cnn3d"), "recipe_training", {"epochs": 7, "lr": 0.01}, raising=False)
    defaults = lookup(STRATEGIES, "in_domain").defaults
    options = patch_training_options({**defaults, "model": "cnn3d", "lr": 0.002})
    assert options["epochs"] == 7  # the shared default gave way to the network's recipe
    assert options["lr"] == 0.002  # the user's value wins
    assert options["batch_size"] == TRAINING_DEFAULTS["batch_size"]
