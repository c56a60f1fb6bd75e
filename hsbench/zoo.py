"""The zoo: a content-addressed store of pretrained artifacts, and the reader of user-given weight files.

An artifact's key hashes its recipe (model sizes, pretraining schedule, seed, source dataset and options) together
with the source data's fingerprint, so a changed recipe or changed source bytes can never be served a stale model.
Layout under ``hsbench_home()/zoo`` (``$HSBENCH_HOME`` overrides)::

    <key>/weights.safetensors   the weights; the header repeats the metadata, so a copied file stays usable
    <key>/metadata.json         recipe, source name + fingerprint, loss curve, hsbench version, git commit, time

An artifact folder is staged under a temporary name and renamed into place when complete, so an interrupted
pretraining never leaves a half artifact; a lock file keeps two processes from pretraining the same key at once.
Nothing is ever downloaded: missing artifacts are built locally by the caller's ``build_fn``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

import hsbench
from hsbench._atomic import file_lock, publish_dir, staging_dir
from hsbench.data.paths import hsbench_home
from hsbench.errors import ConfigError
from hsbench.options import config_hash
from hsbench.provenance import git_commit

__all__ = ["Artifact", "Zoo", "WeightsFile", "read_weights_file", "file_sha256", "WEIGHT_READERS"]

ZOO_FORMAT = 1
"""Bumped when the artifact layout changes (part of every key)."""
WEIGHTS_NAME, METADATA_NAME = "weights.safetensors", "metadata.json"
HEADER_KEY = "hsbench"
"""safetensors header entry holding the artifact metadata as JSON."""

BuildFn = Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]]
"""``build_fn() -> (state_dict, extra metadata such as the loss curve)``."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A stored model.

    Attributes:
        key: content address (``None`` for a user file outside the zoo).
        weights_path: the safetensors file.
        metadata: recipe, source, loss curve, provenance.
        checkpoint_hash: SHA-256 of the weights file: what downstream caches (features) key on.
    """

    key: str | None
    weights_path: Path
    metadata: dict[str, Any]
    checkpoint_hash: str

    @property
    def path(self) -> Path:
        """The artifact folder (zoo) or the file (user weights)."""
        return self.weights_path.parent if self.key else self.weights_path

    def state_dict(self) -> dict[str, torch.Tensor]:
        return safetensors.torch.load_file(str(self.weights_path))


class Zoo:
    """Content-addressed artifact store.

    Args:
        root: the store's folder; default ``hsbench_home() / "zoo"``, read when the zoo is created.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else hsbench_home() / "zoo"

    def __repr__(self) -> str:
        return f"Zoo({str(self.root)!r})"

    @staticmethod
    def artifact_key(recipe: dict[str, Any], source_fingerprint: str) -> str:
        """The content address of what ``recipe`` trained on data with ``source_fingerprint`` would produce."""
        return config_hash({"recipe": recipe, "source_fingerprint": source_fingerprint, "format": ZOO_FORMAT}, 24)

    def get(self, recipe: dict[str, Any], source_fingerprint: str) -> Artifact | None:
        """The stored artifact, or ``None`` when it was never built (or only partly, which leaves nothing)."""
        return self._open(self.artifact_key(recipe, source_fingerprint))

    def get_or_create(self, recipe: dict[str, Any], source_fingerprint: str, build_fn: BuildFn) -> Artifact:
        """The stored artifact, built by ``build_fn`` and stored first when absent (once, across processes)."""
        key = self.artifact_key(recipe, source_fingerprint)
        found = self._open(key)
        if found is not None:
            return found
        with file_lock(self.root / f".{key}.lock"):
            found = self._open(key)  # built by another process while we waited
            if found is not None:
                return found
            state_dict, extra = build_fn()
            return self.put(key, state_dict, {"recipe": recipe, "source_fingerprint": source_fingerprint, **extra})

    def put(self, key: str, state_dict: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Artifact:
        """Store weights and metadata under ``key`` atomically; an existing artifact is kept as it is."""
        metadata = {
            **metadata,
            "key": key,
            "format": ZOO_FORMAT,
            "hsbench_version": hsbench.__version__,
            "git_commit": git_commit(),
            "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        tensors = {name: t.detach().to("cpu").contiguous() for name, t in state_dict.items()}
        with staging_dir(self.root, key) as staged:
            header = {HEADER_KEY: json.dumps(metadata, default=str)}
            safetensors.torch.save_file(tensors, str(staged / WEIGHTS_NAME), metadata=header)
            metadata["weights_sha256"] = file_sha256(staged / WEIGHTS_NAME)
            (staged / METADATA_NAME).write_text(json.dumps(metadata, indent=2, default=str))
            publish_dir(staged, self.root / key)
        artifact = self._open(key)
        assert artifact is not None
        return artifact

    def artifacts(self) -> list[Artifact]:
        """Every complete artifact in the store."""
        if not self.root.is_dir():
            return []
        found = (self._open(p.name) for p in sorted(self.root.iterdir()) if p.is_dir() and not p.name.startswith("."))
        return [a for a in found if a is not None]

    def _open(self, key: str) -> Artifact | None:
        folder = self.root / key
        meta_path = folder / METADATA_NAME
        if not meta_path.is_file():
            return None
        metadata = json.loads(meta_path.read_text())
        return Artifact(key, folder / WEIGHTS_NAME, metadata, metadata["weights_sha256"])


@dataclass(frozen=True)
class WeightsFile:
    """A user-given weights file as read.

    Attributes:
        state_dict: tensors by name (for torch checkpoints: the ``model`` entry when there is one).
        metadata: the hsbench header of a safetensors file (``{}`` otherwise).
        sha256: hash of the file's bytes.
        format: ``safetensors`` or ``torch``.
    """

    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any]
    sha256: str
    format: str


def _read_safetensors(path: Path, *, trusted: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
    metadata = json.loads(header[HEADER_KEY]) if HEADER_KEY in header else {}
    return safetensors.torch.load_file(str(path)), metadata


def _read_torch(path: Path, *, trusted: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=not trusted)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ... for untrusted or corrupt files
        hint = "" if trusted else " (if it pickles other objects and you trust its source, set weights_trusted=true)"
        raise ConfigError(f"cannot read torch checkpoint {path}: {type(exc).__name__}: {exc}{hint}") from None
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(f"{path} holds no state dict (expected a dict, or a dict with key 'model')")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}, {}


WEIGHT_READERS: dict[str, Callable[..., tuple[dict[str, torch.Tensor], dict[str, Any]]]] = {
    ".safetensors": _read_safetensors,
    ".pt": _read_torch,
    ".pth": _read_torch,
    ".ckpt": _read_torch,
    ".bin": _read_torch,
}
"""Weight-file readers by suffix."""


def read_weights_file(path: Path, *, trusted: bool = False) -> WeightsFile:
    """Read a safetensors file or a torch checkpoint (``torch.load`` with ``weights_only`` unless ``trusted``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights file {path} does not exist")
    reader = WEIGHT_READERS.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(f"weights file {path}: unknown suffix; use one of {', '.join(WEIGHT_READERS)}")
    state_dict, metadata = reader(path, trusted=trusted)
    kind = "safetensors" if path.suffix.lower() == ".safetensors" else "torch"
    return WeightsFile(state_dict, metadata, file_sha256(path), kind)
