"""Splits: spec parsing, determinism, nesting, disjointness, the spatial guard band, coverage and the files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import IGNORE, make_tiny_dataset  # tests/ is on sys.path (see conftest.py)
from scipy import ndimage

from hsbench.data import Dataset, DatasetCard, Sample
from hsbench.errors import ConfigError, DataError
from hsbench.splits import PARTS, Split, SplitSpec, make_split, parse_split_spec

REAL_SCENES = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "scene_gt"


# --- helpers --------------------------------------------------------------------------------------------------


def scene_from_labels(labels: np.ndarray, num_classes: int, name: str = "scene") -> Dataset:
    """A one-image scene dataset over a label map, with a cheap one-band cube (splits only read labels)."""
    card = DatasetCard(
        name=name,
        task="scene",
        wavelengths_nm=(550.0,),
        class_names=tuple(f"c{k}" for k in range(num_classes)),
        palette=((0, 0, 0),) * num_classes,
        ignore_index=IGNORE,
        pseudo_rgb_bands=(0, 0, 0),
    )
    sample = Sample("scene", np.zeros((1, *labels.shape), dtype=np.float32), labels.astype(np.int64))
    return Dataset(card, ["scene"], lambda _: sample, fingerprint=name)


def only(split: Split, part: str) -> np.ndarray:
    """The mask of a one-image scene split's part."""
    (mask,) = split.parts[part].values()
    return mask


def pixel_masks(split: Split, dataset: Dataset) -> dict[str, dict[str, np.ndarray]]:
    """Every part as explicit bool masks (``None`` expanded to the image's labelled pixels)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for part in PARTS:
        out[part] = {}
        for sample_id, mask in split.parts[part].items():
            labelled = dataset.load(sample_id).labels != dataset.card.ignore_index
            out[part][sample_id] = labelled if mask is None else mask
    return out


def direct_coverage(split: Split, dataset: Dataset) -> dict[str, list[int]]:
    k = dataset.card.num_classes
    counts = {}
    for part, masks in pixel_masks(split, dataset).items():
        total = np.zeros(k, dtype=np.int64)
        for sample_id, mask in masks.items():
            total += np.bincount(dataset.load(sample_id).labels[mask], minlength=k)[:k]
        counts[part] = total.tolist()
    return counts


def class_counts(dataset: Dataset, ids: tuple[str, ...] | list[str]) -> np.ndarray:
    k = dataset.card.num_classes
    total = np.zeros(k, dtype=np.int64)
    for sample_id in ids:
        labels = dataset.load(sample_id).labels
        total += np.bincount(labels[labels != IGNORE], minlength=k)
    return total


def chebyshev_gap(train_val: np.ndarray, test: np.ndarray) -> float:
    """Smallest Chebyshev distance from a test pixel to a train/val pixel (inf when either is empty)."""
    if not train_val.any() or not test.any():
        return math.inf
    return float(ndimage.distance_transform_cdt(~train_val, metric="chessboard")[test].min())


def masks_equal(a: Split, b: Split) -> bool:
    for part in PARTS:
        if list(a.parts[part]) != list(b.parts[part]):
            return False
        for sample_id, mask in a.parts[part].items():
            other = b.parts[part][sample_id]
            if (mask is None) != (other is None) or (mask is not None and not np.array_equal(mask, other)):
                return False
    return True


@pytest.fixture(scope="module")
def segmentation() -> Dataset:
    return make_tiny_dataset(num_images=12, height=16, width=16)


@pytest.fixture(scope="module")
def scene() -> Dataset:
    return make_tiny_dataset(task="scene", num_images=1, height=96, width=96, unlabelled_fraction=0.3)


@pytest.fixture(scope="module")
def multi_scene() -> Dataset:
    return make_tiny_dataset(task="scene", num_images=3, height=48, width=40, unlabelled_fraction=0.3, seed=3)


CASES = [
    ("segmentation", "official"),
    ("segmentation", "fraction=0.5"),
    ("segmentation", "kshot=3"),
    ("scene", "fraction=0.1"),
    ("scene", "kshot=5"),
    ("scene", "kshot=5,disjoint,guard=4"),
    ("multi_scene", "kshot=4"),
    ("multi_scene", "kshot=4,disjoint,guard=4"),
]


# --- spec parsing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["official", "official:hcv2_2024", "fraction=0.1", "fraction=1.0", "kshot=5", "kshot=5,disjoint"]
)
def test_spec_round_trips(text: str) -> None:
    spec = parse_split_spec(text)
    assert str(spec) == text
    assert parse_split_spec(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (" KShot = 5 , Disjoint ", "kshot=5,disjoint"),
        ("fraction=1", "fraction=1.0"),
        ("Official : HCV2", "official:HCV2"),
    ],
)
def test_spec_is_normalised(text: str, canonical: str) -> None:
    assert str(parse_split_spec(text)) == canonical


def test_spec_fields() -> None:
    assert parse_split_spec("kshot=5,disjoint") == SplitSpec("kshot", k=5, disjoint=True)
    assert parse_split_spec("official:v2") == SplitSpec("official", name="v2")
    assert parse_split_spec("fraction=0.05").fraction == 0.05


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("", "empty"),
        ("fraction=0", r"\(0, 1\]"),
        ("fraction=1.5", r"\(0, 1\]"),
        ("fraction=nan", r"\(0, 1\]"),
        ("fraction=ten", "not a number"),
        ("kshot=0", ">= 1"),
        ("kshot=2.5", "whole number"),
        ("random=3", "official, official:NAME"),
        ("kshot=5,fast", "unknown split option"),
        ("kshot=5,disjoint,disjoint", "twice"),
        ("fraction=0.1,disjoint", "only applies to kshot"),
        ("official:", "needs a split name"),
        ("officially", "cannot read"),
    ],
)
def test_spec_errors_say_what_to_write(text: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=hint):
        parse_split_spec(text)


# --- dataset / spec mismatches --------------------------------------------------------------------------------


def test_official_on_scene_is_a_config_error(scene: Dataset) -> None:
    with pytest.raises(ConfigError, match="no official split"):
        make_split(scene, "official", 0)


def test_disjoint_on_segmentation_is_a_config_error(segmentation: Dataset) -> None:
    with pytest.raises(ConfigError, match="disjoint"):
        make_split(segmentation, "kshot=3,disjoint", 0)


def test_scene_fraction_one_leaves_no_test_and_fails(scene: Dataset) -> None:
    with pytest.raises(ConfigError, match="no test pixels"):
        make_split(scene, "fraction=1.0", 0)


def test_bad_options_are_config_errors(scene: Dataset) -> None:
    with pytest.raises(ConfigError, match="guard"):
        make_split(scene, "kshot=5,disjoint", 0, guard=-1)
    with pytest.raises(ConfigError, match="guard band"):
        make_split(scene, "kshot=5,disjoint", 0)  # no silent default: the runner passes one
    with pytest.raises(ConfigError, match="block_size"):
        make_split(scene, "kshot=5,disjoint", 0, guard=4, block_size=0)


def test_official_list_overlap_is_a_data_error() -> None:
    ds = make_tiny_dataset(num_images=4, height=8, width=8)
    official = ds.card.official()
    broken = type(official)(official.train, official.val, official.train[:1])
    card = DatasetCard(**{**ds.card.__dict__, "official_splits": {"official": broken}})
    with pytest.raises(DataError, match="both"):
        make_split(Dataset(card, ds.sample_ids, ds.load, fingerprint="x"), "official", 0)


# --- determinism ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "spec"), CASES)
def test_same_seed_same_split_other_seed_other_split(name: str, spec: str, request: pytest.FixtureRequest) -> None:
    dataset = request.getfixturevalue(name)
    a, b = make_split(dataset, spec, 7), make_split(dataset, spec, 7)
    assert a.hash == b.hash and masks_equal(a, b)
    if spec != "official":
        c = make_split(dataset, spec, 8)
        assert c.hash != a.hash and not masks_equal(a, c)


def test_hash_depends_on_spec_and_seed_not_only_on_masks(segmentation: Dataset) -> None:
    assert make_split(segmentation, "official", 0).hash != make_split(segmentation, "official", 1).hash


# --- nesting --------------------------------------------------------------------------------------------------


def test_image_fractions_are_nested_and_full_fraction_is_official_train() -> None:
    ds = make_tiny_dataset(num_images=200, height=8, width=8)
    official = ds.card.official()
    assert len(official.train) == 100
    previous: set[str] = set()
    for p in (0.01, 0.05, 0.1, 0.5, 1.0):
        split = make_split(ds, f"fraction={p}", 3)
        train = set(split.parts["train"])
        assert len(train) == math.ceil(p * 100)
        assert previous <= train
        assert all(m is None for part in PARTS for m in split.parts[part].values())
        assert tuple(split.parts["val"]) == official.val and tuple(split.parts["test"]) == official.test
        previous = train
    assert previous == set(official.train)
    assert set(make_split(ds, "fraction=0.1", 4).parts["train"]) != set(
        make_split(ds, "fraction=0.1", 3).parts["train"]
    )


def test_tiny_fraction_still_gives_one_image(segmentation: Dataset) -> None:
    assert len(make_split(segmentation, "fraction=0.001", 0).parts["train"]) == 1


def test_scene_fractions_are_nested_with_fixed_val(scene: Dataset) -> None:
    splits = [make_split(scene, f"fraction={p}", 5) for p in (0.01, 0.05, 0.1, 0.5)]
    for small, large in zip(splits, splits[1:]):
        assert not (only(small, "train") & ~only(large, "train")).any()
        assert np.array_equal(only(small, "val"), only(large, "val"))
    total = class_counts(scene, scene.sample_ids)
    for split, p in zip(splits, (0.01, 0.05, 0.1, 0.5)):
        expected = np.maximum(1, np.ceil(np.round(p * total, 9)))
        assert split.coverage["train"] == expected.astype(int).tolist()


def test_kshot_train_is_nested_across_k(scene: Dataset) -> None:
    for disjoint in ("", ",disjoint,guard=4"):
        small = only(make_split(scene, f"kshot=3{disjoint}", 2), "train")
        large = only(make_split(scene, f"kshot=10{disjoint}", 2), "train")
        assert not (small & ~large).any()


# --- partition invariants -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "spec"), CASES)
def test_no_pixel_in_two_parts_and_no_ignore_pixels(name: str, spec: str, request: pytest.FixtureRequest) -> None:
    dataset = request.getfixturevalue(name)
    split = make_split(dataset, spec, 0)
    masks = pixel_masks(split, dataset)
    for sample_id in dataset.sample_ids:
        labels = dataset.load(sample_id).labels
        stacked = [masks[part][sample_id] for part in PARTS if sample_id in masks[part]]
        if stacked:
            assert (np.sum(stacked, axis=0) <= 1).all()
            assert not (np.any(stacked, axis=0) & (labels == IGNORE)).any()
    for part in PARTS:
        for mask in split.parts[part].values():
            assert mask is None or (mask.dtype == bool and not mask.flags.writeable and mask.any())


@pytest.mark.parametrize(("name", "spec"), CASES)
def test_coverage_matches_a_direct_count(name: str, spec: str, request: pytest.FixtureRequest) -> None:
    dataset = request.getfixturevalue(name)
    split = make_split(dataset, spec, 1)
    assert split.coverage == direct_coverage(split, dataset)


@pytest.mark.parametrize(("name", "k"), [("scene", 5), ("multi_scene", 4), ("segmentation", 3)])
def test_kshot_gives_k_train_pixels_per_class(name: str, k: int, request: pytest.FixtureRequest) -> None:
    dataset = request.getfixturevalue(name)
    split = make_split(dataset, f"kshot={k}", 0)
    pool = dataset.card.official().train if name == "segmentation" else dataset.sample_ids
    assert split.coverage["train"] == np.minimum(k, class_counts(dataset, pool)).tolist()
    if name == "segmentation":
        official = dataset.card.official()
        assert set(split.parts["train"]) <= set(official.train)
        assert tuple(split.parts["val"]) == official.val and tuple(split.parts["test"]) == official.test


def test_kshot_cap_half_takes_half_of_a_small_class_and_reports_it() -> None:
    labels = np.full((30, 30), IGNORE, dtype=np.int64)
    labels[:10, :] = 0
    labels[20:, :] = 1
    labels[15, 3:5] = 2  # two pixels only
    split = make_split(scene_from_labels(labels, 3), "kshot=5,cap=half", 0)
    assert split.coverage["train"] == [5, 5, 1]
    assert split.coverage["test"][2] == 1 and split.excluded == ()
    assert split.short_classes() == [2]
    assert split.missing_classes("val") == [2]
    warnings = split.coverage_warnings(["a", "b", "c"])
    assert any("class 2 (c) has only 1" in w for w in warnings)
    assert any("class 2 (c) has no val" in w for w in warnings)


def test_missing_class_is_listed() -> None:
    labels = np.zeros((20, 20), dtype=np.int64)
    labels[10:] = 1
    split = make_split(scene_from_labels(labels, 3), "kshot=2", 0)
    assert split.missing_classes("train") == [2]


# --- spatially disjoint ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("radius", "block"), [(4, None), (2, 7), (0, 5), (3, 40)])
def test_disjoint_test_pixels_are_beyond_the_patch_radius(scene: Dataset, radius: int, block: int | None) -> None:
    split = make_split(scene, "kshot=5,disjoint", 0, guard=radius, block_size=block)
    train_val = only(split, "train") | only(split, "val")
    assert chebyshev_gap(train_val, only(split, "test")) > radius
    assert split.params == {"guard": radius, "block_size": block or max(4 * radius + 1, 96 // 8), "min_test": 10}
    assert split.missing_classes("train") == []


def test_disjoint_test_set_does_not_depend_on_k(scene: Dataset) -> None:
    a = only(make_split(scene, "kshot=2,disjoint", 0, guard=4), "test")
    b = only(make_split(scene, "kshot=20,disjoint", 0, guard=4), "test")
    assert np.array_equal(a, b)


def test_disjoint_holds_per_image_in_a_multi_image_scene(multi_scene: Dataset) -> None:
    split = make_split(multi_scene, "kshot=4,disjoint", 0, guard=2)
    empty = np.zeros((48, 40), dtype=bool)
    for sample_id in multi_scene.sample_ids:
        train_val = split.parts["train"].get(sample_id, empty) | split.parts["val"].get(sample_id, empty)
        assert chebyshev_gap(train_val, split.parts["test"].get(sample_id, empty)) > 2


# --- laziness -------------------------------------------------------------------------------------------------


def test_image_fraction_loads_only_the_images_it_needs() -> None:
    ds = make_tiny_dataset(num_images=12, height=8, width=8)
    loaded: list[str] = []

    def loader(sample_id: str) -> Sample:
        loaded.append(sample_id)
        return ds.load(sample_id)

    split = make_split(Dataset(ds.card, ds.sample_ids, loader, fingerprint="x"), "fraction=0.1", 0)
    official = ds.card.official()
    assert len(split.parts["train"]) == 1
    assert sorted(loaded) == sorted([*split.parts["train"], *official.val, *official.test])


# --- files ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "spec"), [("segmentation", "kshot=3"), ("scene", "kshot=5,disjoint,guard=4")])
def test_save_load_round_trip(name: str, spec: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    split = make_split(request.getfixturevalue(name), spec, 11)
    split.save(tmp_path / "split")
    loaded = Split.load(tmp_path / "split")
    assert loaded.hash == split.hash and masks_equal(loaded, split)
    assert (loaded.dataset, loaded.spec, loaded.seed) == (split.dataset, split.spec, split.seed)
    assert loaded.coverage == split.coverage and loaded.params == split.params
    record = json.loads((tmp_path / "split" / "split.json").read_text())
    assert [e["id"] for e in record["parts"]["val"]] == list(split.parts["val"])


def test_tampered_masks_fail_to_load(scene: Dataset, tmp_path: Path) -> None:
    make_split(scene, "kshot=5", 0).save(tmp_path)
    with np.load(tmp_path / "split_masks.npz") as npz:
        arrays = {key: npz[key].copy() for key in npz.files}
    test = arrays["test_0"]
    test[np.unravel_index(np.flatnonzero(test)[0], test.shape)] = False  # quietly drop one test pixel
    np.savez_compressed(tmp_path / "split_masks.npz", **arrays)
    with pytest.raises(DataError, match="altered"):
        Split.load(tmp_path)


@pytest.mark.parametrize("field", ["seed", "coverage", "ids"])
def test_tampered_json_fails_to_load(segmentation: Dataset, tmp_path: Path, field: str) -> None:
    make_split(segmentation, "fraction=0.5", 0).save(tmp_path)
    path = tmp_path / "split.json"
    record = json.loads(path.read_text())
    if field == "seed":
        record["seed"] += 1
    elif field == "coverage":
        record["coverage"]["train"][0] += 1
    else:
        record["parts"]["train"].append(record["parts"]["test"].pop())
    path.write_text(json.dumps(record))
    with pytest.raises(DataError, match="altered"):
        Split.load(tmp_path)


def test_missing_files_are_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        Split.load(tmp_path)


# --- real label maps ------------------------------------------------------------------------------------------

REAL = [("Indian_pines_gt.mat", "indian_pines_gt"), ("PaviaU_gt.mat", "paviaU_gt"), ("Salinas_gt.mat", "salinas_gt")]


@pytest.mark.parametrize(("filename", "key"), REAL)
def test_real_scenes_kshot_invariants(filename: str, key: str) -> None:
    if not REAL_SCENES.is_dir():
        pytest.skip(f"real label maps not found in {REAL_SCENES}")
    from scipy.io import loadmat

    raw = loadmat(REAL_SCENES / filename)[key].astype(np.int64)
    labels = np.where(raw == 0, IGNORE, raw - 1)  # 0 = unlabelled, classes 1..K -> 0..K-1
    num_classes = int(raw.max())
    dataset = scene_from_labels(labels, num_classes, key)
    sizes = np.bincount(labels[labels != IGNORE], minlength=num_classes)
    for spec in ("kshot=5", "kshot=5,disjoint,guard=4"):
        split = make_split(dataset, spec, 0)
        train, val, test = (only(split, part) for part in PARTS)
        assert not (train & val).any() and not (train & test).any() and not (val & test).any()
        assert not ((train | val | test) & (labels == IGNORE)).any()
        kept = np.isin(np.arange(num_classes), split.excluded, invert=True)
        assert split.coverage["train"] == np.where(kept, np.minimum(5, sizes), 0).tolist()
        assert split.coverage == direct_coverage(split, dataset)
        if spec.startswith("kshot=5,disjoint"):
            assert chebyshev_gap(train | val, test) > 4
        else:
            assert split.excluded == tuple(np.flatnonzero(sizes < 5 + 10).tolist())
            assert split.missing_classes("test") == []
            val = np.minimum(np.minimum(5, (sizes - 5) // 2), sizes - 5 - 10)
            assert split.coverage["val"] == np.where(kept, val, 0).tolist()
