"""Shared fixtures: tiny in-memory datasets built from a seed (no files, no generator)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hsbench.data import Dataset, DatasetCard, OfficialSplit, Sample, array_digest

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # test helper modules (slow_strategy) import by name

IGNORE = 255


def make_tiny_dataset(
    *,
    task: str = "segmentation",
    num_images: int = 12,
    height: int = 24,
    width: int = 32,
    num_bands: int = 6,
    num_classes: int = 4,
    seed: int = 0,
    unlabelled_fraction: float = 0.1,
) -> Dataset:
    """A dataset of blocky label maps whose spectra depend on the class (learnable, deterministic)."""
    rng = np.random.default_rng(seed)
    signatures = rng.uniform(0.1, 1.0, size=(num_classes, num_bands)).astype(np.float32)
    samples: dict[str, Sample] = {}
    for i in range(num_images):
        coarse = rng.integers(0, num_classes, size=(height // 8 + 1, width // 8 + 1))
        labels = np.kron(coarse, np.ones((8, 8), dtype=np.int64))[:height, :width].astype(np.int64)
        cube = signatures[labels].transpose(2, 0, 1) + rng.normal(0, 0.05, size=(num_bands, height, width))
        labels[rng.random((height, width)) < unlabelled_fraction] = IGNORE
        samples[f"img{i:03d}"] = Sample(f"img{i:03d}", cube.astype(np.float32), labels)
    ids = list(samples)
    n_train, n_val = num_images // 2, num_images // 4
    official = (
        {
            "official": OfficialSplit(
                tuple(ids[:n_train]), tuple(ids[n_train : n_train + n_val]), tuple(ids[n_train + n_val :])
            )
        }
        if task == "segmentation"
        else {}
    )
    card = DatasetCard(
        name=f"tiny_{task}",
        task=task,  # type: ignore[arg-type]
        wavelengths_nm=tuple(float(w) for w in np.linspace(450, 900, num_bands)),
        class_names=tuple(f"class{k}" for k in range(num_classes)),
        palette=tuple((40 * k % 256, 80 * k % 256, 120 * k % 256) for k in range(num_classes)),
        ignore_index=IGNORE,
        pseudo_rgb_bands=(num_bands - 1, num_bands // 2, 0),
        official_splits=official,
    )
    fingerprint = array_digest(*(a for s in samples.values() for a in (s.cube, s.labels)))
    return Dataset(card, ids, samples.__getitem__, fingerprint=fingerprint)


@pytest.fixture(autouse=True, scope="session")
def _isolated_hsbench_home(tmp_path_factory):
    """Zoo artifacts and feature caches of the tests go to a temporary HSBENCH_HOME, never the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("HSBENCH_HOME", str(tmp_path_factory.mktemp("hsbench_home")))
    yield
    patch.undo()


@pytest.fixture
def tiny_dataset() -> Dataset:
    return make_tiny_dataset()


@pytest.fixture
def tiny_scene() -> Dataset:
    return make_tiny_dataset(task="scene", num_images=1, height=96, width=96, unlabelled_fraction=0.3)


def register_tiny_provider(name: str, **kwargs) -> type:
    """Register a tiny dataset under ``name`` in DATASETS (replacing an earlier registration)."""
    from hsbench.data import DatasetProvider
    from hsbench.registry import DATASETS

    dataset = make_tiny_dataset(**kwargs)

    class TinyProvider(DatasetProvider):
        card = dataset.card

        @classmethod
        def open(cls, *, data_root=None, **options):
            return dataset

    DATASETS.register_module(name=name, module=TinyProvider, force=True)
    return TinyProvider


@pytest.fixture
def tiny_registered():
    """Names of a registered tiny segmentation dataset and a tiny scene dataset."""
    from hsbench.registry import DATASETS

    register_tiny_provider("tiny_segmentation")
    register_tiny_provider("tiny_scene", task="scene", num_images=1, height=64, width=64, unlabelled_fraction=0.3)
    yield {"segmentation": "tiny_segmentation", "scene": "tiny_scene"}
    for name in ("tiny_segmentation", "tiny_scene"):
        DATASETS.module_dict.pop(name, None)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A single-node Slurm cluster on loopback (see ``slurm_cluster.py``), with ``$SLURM_CONF`` pointing at it for the
    session; skips, saying why, where one cannot run (not Linux, not root, no Slurm/munge packages, no submitit)."""
    from slurm_cluster import SlurmCluster, slurm_unavailable_reason

    reason = slurm_unavailable_reason()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    patch = pytest.MonkeyPatch()
    patch.setenv("SLURM_CONF", str(cluster.conf))
    try:
        yield cluster
    finally:
        patch.undo()
        cluster.stop()
