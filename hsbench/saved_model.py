"""A run's selected model on disk, so that it can be re-evaluated, shared and applied to new images.

Layout, inside the run folder::

    model/weights.safetensors   every tensor of the fitted model (network weights, fitted input transform,
                                support vectors...) under a dotted name
    model/model.json            format version, strategy, resolved options, the training dataset's card and
                                each strategy's JSON facts (:attr:`ModelState.meta`)
    model/manifest.json         SHA-256 and size of the two files above

Nothing is pickled, so opening a model someone sent you cannot run code: tensors go through safetensors, the
rest through JSON. Both files are verified against the manifest when the model is opened
(:func:`read_model`); a truncated, edited or missing file is one :class:`~hsbench.integrity.IntegrityError`
line naming it. The folder is written under a temporary name and renamed, so an interrupted save leaves no
half model.

A strategy says what its model is with :meth:`hsbench.strategy.Strategy.model_state` and rebuilds it with
:meth:`~hsbench.strategy.Strategy.restore`; :func:`load_run_model` gives back a strategy whose ``predict``
answers exactly as the run's did.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import safetensors.torch
import torch

from hsbench._atomic import publish_dir, staging_dir
from hsbench.data.card import DatasetCard, OfficialSplit
from hsbench.errors import DataError
from hsbench.integrity import IntegrityError, file_hash, verify

if TYPE_CHECKING:
    from hsbench.strategy import Strategy

__all__ = [
    "FORMAT_VERSION", "MODEL_DIR", "WAVELENGTH_TOLERANCE_NM", "ModelState", "StoredModel", "card_from_dict",
    "card_to_dict", "check_input_bands", "load_run_model", "model_dir", "read_model", "save_model",
]

FORMAT_VERSION = 1
"""Bumped when the layout changes; a model of another version is refused with one line."""
MODEL_DIR = "model"
WAVELENGTH_TOLERANCE_NM = 1.0
"""Largest difference between a band centre the model was trained on and the input's same band."""
WEIGHTS_NAME, MODEL_JSON, MANIFEST_NAME = "weights.safetensors", "model.json", "manifest.json"


@dataclass
class ModelState:
    """What a strategy needs to predict again: tensors (safetensors) and JSON-serialisable facts.

    Parts of a model (a network, a transform, an adapter) are kept apart by dotted prefixes:
    :meth:`nest` files a part under a prefix, :meth:`part` takes it out again.
    """

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def nest(cls, **parts: ModelState) -> ModelState:
        """One state holding each part under its name (``network.conv.weight``, ``meta["network"]``)."""
        state = cls()
        for name, part in parts.items():
            if "." in name:
                raise ValueError(f"part name {name!r} must not contain '.'")
            state.tensors.update({f"{name}.{key}": tensor for key, tensor in part.tensors.items()})
            state.meta[name] = part.meta
        return state

    def part(self, name: str) -> ModelState:
        """The part filed under ``name`` by :meth:`nest` (empty when there is none)."""
        prefix = f"{name}."
        return ModelState({key[len(prefix):]: t for key, t in self.tensors.items() if key.startswith(prefix)},
                          dict(self.meta.get(name) or {}))

    def has_part(self, name: str) -> bool:
        return name in self.meta

    @staticmethod
    def arrays(arrays: Mapping[str, np.ndarray | None]) -> dict[str, torch.Tensor]:
        """NumPy arrays as tensors for :attr:`tensors` (``None`` entries are left out; a 0-d array stays 0-d,
        which ``np.ascontiguousarray`` alone would make 1-d)."""
        return {key: torch.from_numpy(np.ascontiguousarray(value).reshape(np.shape(value)))
                for key, value in arrays.items() if value is not None}

    def array(self, key: str) -> np.ndarray | None:
        """A tensor as a NumPy array, ``None`` when absent."""
        tensor = self.tensors.get(key)
        return None if tensor is None else tensor.numpy()


@dataclass(frozen=True)
class StoredModel:
    """A verified model folder as read: its state and what it was trained with."""

    path: Path
    state: ModelState
    strategy: str
    label: str
    options: dict[str, Any]
    card: DatasetCard
    seed: int
    run_id: str | None
    weights_sha256: str


def model_dir(run_dir: Path) -> Path:
    return Path(run_dir) / MODEL_DIR


# --------------------------------------------------------------------------------------------------- card as JSON
def card_to_dict(card: DatasetCard) -> dict[str, Any]:
    """The card as JSON-ready data (official split lists left out: a model needs bands and classes, not them)."""
    data = dataclasses.asdict(card)
    data["official_splits"] = {}
    if card.raw_label_map is not None:
        data["raw_label_map"] = {str(k): v for k, v in card.raw_label_map.items()}
    return data


def card_from_dict(data: Mapping[str, Any]) -> DatasetCard:
    """The inverse of :func:`card_to_dict`."""
    known = {f.name for f in dataclasses.fields(DatasetCard)}
    values = {k: v for k, v in data.items() if k in known}
    for key in ("wavelengths_nm", "class_names", "pseudo_rgb_bands", "fwhm_nm"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    values["palette"] = tuple(tuple(int(c) for c in colour) for colour in values.get("palette", ()))
    values["official_splits"] = {name: OfficialSplit(*(tuple(part) for part in parts.values()))
                                 for name, parts in (values.get("official_splits") or {}).items()}
    if values.get("raw_label_map") is not None:
        values["raw_label_map"] = {int(k): int(v) for k, v in values["raw_label_map"].items()}
    return DatasetCard(**values)


# ------------------------------------------------------------------------------------------------------ save / read
def save_model(
    run_dir: Path,
    state: ModelState,
    *,
    strategy: str,
    label: str,
    options: Mapping[str, Any],
    card: DatasetCard,
    seed: int,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Write ``<run_dir>/model/`` atomically (an existing one is replaced); returns facts for the run row:
    ``model_bytes`` and ``model_sha256`` (the weights file's hash)."""
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state.tensors.items()}
    document = {"format": FORMAT_VERSION, "strategy": strategy, "label": label, "options": dict(options),
                "seed": int(seed), "run_id": run_id, "card": card_to_dict(card), "meta": state.meta}
    final = model_dir(run_dir)
    with staging_dir(Path(run_dir), MODEL_DIR) as staged:
        safetensors.torch.save_file(tensors, str(staged / WEIGHTS_NAME))
        (staged / MODEL_JSON).write_text(json.dumps(document, indent=2, sort_keys=True, default=_json_default))
        # safetensors writes its file 0600; give it the umask's mode of the other files, so a shared results
        # folder's models are readable by whoever can read the rest of the run.
        shutil.copymode(staged / MODEL_JSON, staged / WEIGHTS_NAME)
        manifest = {name: {"sha256": file_hash(staged / name), "bytes": (staged / name).stat().st_size}
                    for name in (WEIGHTS_NAME, MODEL_JSON)}
        (staged / MANIFEST_NAME).write_text(json.dumps({"format": FORMAT_VERSION, "files": manifest}, indent=2))
        if final.exists():
            _remove_model(final)
        publish_dir(staged, final)
    return {"model_bytes": sum(entry["bytes"] for entry in manifest.values()),
            "model_sha256": manifest[WEIGHTS_NAME]["sha256"]}


def read_model(run_dir: Path) -> StoredModel:
    """Open and verify ``<run_dir>/model/`` (or ``run_dir`` itself when it is a model folder).

    Raises:
        DataError: no model folder (the run was made with ``--no-save-model``, or before models were kept), or
            a model of another format version.
        IntegrityError: a file is missing, truncated or changed since it was written (names the file).
    """
    folder = Path(run_dir)
    if not (folder / MANIFEST_NAME).is_file():
        folder = model_dir(run_dir)
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise DataError(f"{run_dir} holds no saved model ({MODEL_DIR}/{MANIFEST_NAME} is missing): it was run with "
                        "--no-save-model or by an older hsbench; run it again to keep its model")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = {name: str(manifest["files"][name]["sha256"]) for name in (WEIGHTS_NAME, MODEL_JSON)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(manifest_path, "(unreadable)", None, reason=f"unreadable manifest: {exc}") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise DataError(f"{folder}: model format {manifest.get('format')!r}, this hsbench reads {FORMAT_VERSION}")
    for name, expected in files.items():
        verify(folder / name, expected, source=f"{MANIFEST_NAME}")
    document = json.loads((folder / MODEL_JSON).read_text())
    try:
        tensors = safetensors.torch.load_file(str(folder / WEIGHTS_NAME))
    except Exception as exc:  # verified bytes that safetensors still refuses: written by something else
        raise DataError(f"{folder / WEIGHTS_NAME} is not a readable safetensors file: {exc}") from None
    return StoredModel(
        path=folder, state=ModelState(tensors, dict(document.get("meta") or {})), strategy=str(document["strategy"]),
        label=str(document["label"]), options=dict(document["options"]), card=card_from_dict(document["card"]),
        seed=int(document["seed"]), run_id=document.get("run_id"), weights_sha256=files[WEIGHTS_NAME],
    )


def load_run_model(
    run_dir: Path,
    *,
    device: torch.device | str = "cpu",
    work_dir: Path | None = None,
    data_root: Path | None = None,
    progress: bool = False,
) -> tuple[Strategy, StoredModel]:
    """The run's strategy, rebuilt from its verified model folder and ready to ``predict``.

    The strategy gets the run's options, training card and seed streams, and a context whose ``work_dir`` is
    ``work_dir`` (default: the model folder's sibling ``work``) and whose zoo is the default one.
    """
    from hsbench.registry import STRATEGIES, lookup
    from hsbench.seeding import SeedStreams
    from hsbench.strategy import RunContext
    from hsbench.zoo import Zoo

    stored = read_model(run_dir)
    strategy_cls = lookup(STRATEGIES, stored.strategy)
    ctx = RunContext(device=torch.device(device), seeds=SeedStreams(stored.seed),
                     work_dir=Path(work_dir) if work_dir is not None else stored.path.parent / "work",
                     progress=progress, zoo=Zoo(), data_root=data_root)
    strategy = strategy_cls(dict(stored.options), ctx, stored.card)
    strategy.restore(stored.state)
    return strategy, stored


def check_input_bands(trained: DatasetCard, band_count: int, wavelengths_nm: Any = None, *, what: str) -> None:
    """Refuse an input the model cannot read: another band count, or (when the input says) band centres more than
    :data:`WAVELENGTH_TOLERANCE_NM` away from the training card's, in the same order.

    Raises:
        DataError: one line naming ``what``, both band counts or the first differing band, and what to do.
    """
    if band_count != trained.num_bands:
        raise DataError(f"{what} has {band_count} bands, but the model was trained on {trained.num_bands} bands of "
                        f"{trained.name}; give it a cube with the training bands, in cube order")
    if wavelengths_nm is None:
        return
    given = np.asarray(wavelengths_nm, dtype=np.float64)
    expected = np.asarray(trained.wavelengths_nm, dtype=np.float64)
    off = np.flatnonzero(np.abs(given - expected) > WAVELENGTH_TOLERANCE_NM)
    if off.size:
        i = int(off[0])
        raise DataError(f"{what}: band {i} is at {given[i]:g} nm, but the model's band {i} ({trained.name}) is at "
                        f"{expected[i]:g} nm ({off.size} bands differ by more than {WAVELENGTH_TOLERANCE_NM:g} nm); "
                        "resample the cube to the training wavelengths first")


def _remove_model(folder: Path) -> None:
    for name in (WEIGHTS_NAME, MODEL_JSON, MANIFEST_NAME):
        (folder / name).unlink(missing_ok=True)
    folder.rmdir()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON data; keep arrays in ModelState.tensors")
