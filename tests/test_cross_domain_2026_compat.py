"""Compatibility options of the 2026 cross-domain study: its limited-data subset draw and its HSI-Drive wavelengths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torch.utils.data import random_split

from hsbench.data import Dataset, DatasetCard, Sample
from hsbench.data.card import OfficialSplit
from hsbench.data.dataset_spec import dataset_name, open_dataset, parse_dataset_spec
from hsbench.data.hs3bench import HSI_DRIVE_CARD, HsiDrive
from hsbench.data.prepared import prepare_dataset
from hsbench.errors import ConfigError
from hsbench.runner import Runner
from hsbench.splits import Split, make_split, parse_split_spec

SAMPLER = "sampler=cross_domain_2026"
# Official train list in file order, deliberately unsorted: the study draws over its HDF5 keys, i.e. sorted names.
TRAIN = ("nf4_010", "nf1_002", "nf3_007", "nf1_001", "nf2_005", "nf4_009", "nf2_004", "nf3_006", "nf1_003",
         "nf2_013", "nf3_011", "nf4_012", "nf1_014", "nf3_015", "nf2_016", "nf4_017", "nf1_018", "nf3_019",
         "nf2_020", "nf4_021", "nf1_022", "nf2_023")
VAL, TEST = ("v_b", "v_a", "v_c"), ("t_a", "t_b")


@pytest.fixture(scope="module")
def drive_like() -> Dataset:
    """A tiny segmentation dataset (labels only matter) with an unsorted official train list."""
    card = DatasetCard(
        name="drive_like", task="segmentation", wavelengths_nm=(600.0, 700.0), class_names=("a", "b"),
        palette=((0, 0, 0), (9, 9, 9)), ignore_index=255, pseudo_rgb_bands=(0, 1, 0),
        official_splits={"official": OfficialSplit(TRAIN, VAL, TEST)},
    )
    ids = TRAIN + VAL + TEST
    samples = {i: Sample(i, np.zeros((2, 2, 3), np.float32), np.array([[0, 1, 1], [0, 255, 1]])) for i in ids}
    return Dataset(card, ids, samples.__getitem__, fingerprint="drive_like")


def study_subset(train_ids: tuple[str, ...], p: float) -> set[str]:
    """What the study's ``HSDataModule.train_dataloader`` keeps: torch's random_split of its h5 training set
    (group names, sorted) into [round(p N), rest] with a generator seeded 42."""
    keys = sorted(train_ids)
    size = round(p * len(keys))
    kept, _ = random_split(keys, [size, len(keys) - size], generator=torch.Generator().manual_seed(42))
    return set(kept)


# --- split option -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.05, 0.1, 0.25, 0.5, 0.73, 1.0])
def test_sampler_picks_the_studys_images(drive_like: Dataset, p: float) -> None:
    split = make_split(drive_like, f"fraction={p},{SAMPLER}", seed=0)
    assert set(split.parts["train"]) == study_subset(TRAIN, p)
    assert len(split.parts["train"]) == round(p * len(TRAIN))  # round, not ceil: 0.25 * 22 = 5.5 -> 6, 0.05 -> 1
    assert tuple(split.parts["val"]) == VAL and tuple(split.parts["test"]) == TEST  # the study keeps val whole


def test_sampler_ignores_the_run_seed_and_says_so(drive_like: Dataset, tmp_path: Path) -> None:
    splits = [make_split(drive_like, f"fraction=0.3,{SAMPLER}", seed=s) for s in (0, 1, 7)]
    assert {tuple(s.parts["train"]) for s in splits} == {tuple(splits[0].parts["train"])}
    assert splits[0].params == {"sampler": "cross_domain_2026", "draw_seed": 42, "seed_independent": 1}
    splits[0].save(tmp_path)
    loaded = Split.load(tmp_path)  # the text param survives the record and its hash
    assert loaded.params == splits[0].params and loaded.hash == splits[0].hash


def test_study_subsets_are_nested_in_p(drive_like: Dataset) -> None:
    """One permutation per N (seed 42), cut at round(p N): a larger fraction keeps every image of a smaller one."""
    trains = [set(make_split(drive_like, f"fraction={p},{SAMPLER}", seed=0).parts["train"])
              for p in (0.05, 0.1, 0.25, 0.5, 1.0)]
    assert all(small <= large for small, large in zip(trains, trains[1:]))


def test_sampler_differs_from_the_default_draw(drive_like: Dataset) -> None:
    default = make_split(drive_like, "fraction=0.25", seed=0)
    study = make_split(drive_like, f"fraction=0.25,{SAMPLER}", seed=0)
    assert len(default.parts["train"]) == 6 and default.params == {}  # ceil(5.5), unchanged default
    assert default.hash != study.hash


def test_spec_text_round_trips_and_default_is_left_out() -> None:
    spec = parse_split_spec("fraction=0.05, Sampler=cross_domain_2026")
    assert spec.sampler == "cross_domain_2026" and str(spec) == f"fraction=0.05,{SAMPLER}"
    assert parse_split_spec(str(spec)) == spec
    assert str(parse_split_spec("fraction=0.05,sampler=default")) == "fraction=0.05"


@pytest.mark.parametrize("text, message", [
    (f"kshot=5,{SAMPLER}", "only goes with fraction"),
    (f"official,{SAMPLER}", "only goes with fraction"),
    (f"fraction=0.1,val=matched,{SAMPLER}", "keeps the full val list"),
    ("fraction=0.1,sampler=nope", "unknown sampler"),
])
def test_sampler_spec_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_split_spec(text)


def test_subset_of_zero_images_fails_like_the_study(drive_like: Dataset) -> None:
    with pytest.raises(ConfigError, match="rounds to 0 images"):
        make_split(drive_like, f"fraction=0.01,{SAMPLER}", seed=0)


# --- HSI-Drive wavelengths ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drive_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared hsi_drive holding one sample in the distribution layout."""
    raw = tmp_path_factory.mktemp("raw") / "Image_dataset"
    (raw / "cubes_fl32").mkdir(parents=True)
    (raw / "labels").mkdir()
    scipy.io.savemat(raw / "cubes_fl32" / "nf3122_147_TC.mat", {"cube": np.ones((25, 4, 5), np.float32)})
    Image.fromarray(np.ones((4, 5), np.uint8)).save(raw / "labels" / "nf3122_147.png")
    root = tmp_path_factory.mktemp("data")
    prepare_dataset(HsiDrive, raw.parent, root, progress=False)
    return root


def test_wavelength_option_gives_the_studys_linear_vector(drive_root: Path) -> None:
    true = open_dataset("hsi_drive", drive_root)
    study = open_dataset("hsi_drive:wavelengths=cross_domain_2026", drive_root)
    assert true.card.wavelengths_nm == HSI_DRIVE_CARD.wavelengths_nm  # default unchanged: true, unsorted centres
    assert np.allclose(study.card.wavelengths_nm, 535 + np.arange(25) * 440 / 24)
    assert study.card.wavelengths_nm[0] == 535.0 and study.card.wavelengths_nm[-1] == 975.0
    assert study.fingerprint != true.fingerprint  # so the run id (which hashes it) differs too
    np.testing.assert_array_equal(study.load("nf3122_147").cube, true.load("nf3122_147").cube)


def test_wavelength_option_errors(drive_root: Path) -> None:
    with pytest.raises(ConfigError, match="no wavelengths=linear"):
        open_dataset("hsi_drive:wavelengths=linear", drive_root)
    with pytest.raises(ConfigError, match="takes no options"):
        open_dataset("hsi_drive:bands=3", drive_root)
    with pytest.raises(ConfigError, match="not key=value"):
        parse_dataset_spec("hsi_drive:wavelengths")
    assert dataset_name("hsi_drive:wavelengths=cross_domain_2026") == "hsi_drive"


def test_runner_opens_the_dataset_spec_of_a_run(drive_root: Path, tmp_path: Path) -> None:
    """``hsbench run --dataset hsi_drive:wavelengths=cross_domain_2026`` reaches the provider through the runner."""
    runner = Runner(tmp_path, data_root=drive_root, progress=False)
    study = runner.dataset("hsi_drive:wavelengths=cross_domain_2026")
    assert study.card.wavelengths_nm[:2] == (535.0, pytest.approx(535 + 440 / 24))
    assert runner.dataset("hsi_drive").fingerprint != study.fingerprint
