"""The zoo: a content-addressed store of pretrained artifacts, and the reader of user-given weight files.

An artifact's key hashes its recipe (model sizes, pretraining schedule, seed, source dataset and options) together
with the source data's fingerprint, so a changed recipe or changed source bytes can never be served a stale model.
Layout under ``hsbench_home()/zoo`` (``$HSBENCH_HOME`` overrides)::

    <key>/weights.safetensors   the weights; the header repeats the metadata, so a copied file stays usable
    <key>/metadata.json         recipe, source name + fingerprint, loss curve, hsbench version, git commit, time

An artifact folder is staged under a temporary name and renamed into place when complete, so an interrupted
pretraining never leaves a half artifact; a lock file keeps two processes from pretraining the same key at once.
``metadata.json`` records the weights file's content hash (:mod:`hsbench.integrity`), verified on every open: an
artifact whose weights were zeroed, truncated or edited is moved aside (``<key>.corrupt-<time>``, one warning) and
``get_or_create`` builds it again. Nothing is ever downloaded: missing artifacts are built locally by the caller's
``build_fn``.
"""

from __future__ import annotations

import datetime as dt
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
from hsbench.errors import ConfigError, DataError
from hsbench.integrity import IntegrityError, file_hash, move_aside, verify
from hsbench.options import config_hash
from hsbench.provenance import git_commit

__all__ = ["Artifact", "Zoo", "WeightsFile", "read_weights_file", "check_user_file", "WEIGHT_READERS"]

ZOO_FORMAT = 1
"""Bumped when the artifact layout changes (part of every key)."""
WEIGHTS_NAME, METADATA_NAME = "weights.safetensors", "metadata.json"
HEADER_KEY = "hsbench"
"""safetensors header entry holding the artifact metadata as JSON."""

BuildFn = Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]]
"""``build_fn() -> (state_dict, extra metadata such as the loss curve)``."""


@dataclass(frozen=True)
class Artifact:
    """A stored model.

    Attributes:
        key: content address (``None`` for a user file outside the zoo).
        weights_path: the safetensors file.
        metadata: recipe, source, loss curve, provenance.
        checkpoint_hash: SHA-256 of the weights file, verified when the artifact was opened: what runs record
            and downstream caches (features) key on.
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

    def load_into(self, model: torch.nn.Module, transform: Callable[[dict], dict] | None = None) -> torch.nn.Module:
        """Load the weights (after ``transform``, e.g. a key selection) strictly: hsbench wrote them for this
        model, so any missing or unexpected key is an error naming the artifact, never a silent partial load."""
        state = self.state_dict()
        state = transform(state) if transform is not None else state
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise DataError(f"zoo artifact {self.path} does not fit its model: {exc}") from None
        return model


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
        """The stored, verified artifact, or ``None`` when it was never built (or only partly, which leaves
        nothing) or failed its hash check (then it is moved aside)."""
        return self._open(self.artifact_key(recipe, source_fingerprint))

    def get_or_create(self, recipe: dict[str, Any], source_fingerprint: str, build_fn: BuildFn) -> Artifact:
        """The stored artifact, built by ``build_fn`` and stored first when absent (once, across processes)."""
        key = self.artifact_key(recipe, source_fingerprint)
        found = self._open(key)
        if found is not None:
            return found
        with file_lock(self._lock_path(key)):
            found = self._open(key, locked=True)  # built by another process while we waited
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
            metadata["weights_sha256"] = file_hash(staged / WEIGHTS_NAME)
            (staged / METADATA_NAME).write_text(json.dumps(metadata, indent=2, default=str))
            publish_dir(staged, self.root / key)
        artifact = self._read(key)  # put runs under the key's lock in get_or_create: no repair (it would re-lock)
        assert artifact is not None
        return artifact

    def artifacts(self) -> list[Artifact]:
        """Every complete artifact in the store."""
        if not self.root.is_dir():
            return []
        found = (self._open(p.name) for p in sorted(self.root.iterdir())
                 if p.is_dir() and not p.name.startswith(".") and ".corrupt-" not in p.name)
        return [a for a in found if a is not None]

    def _lock_path(self, key: str) -> Path:
        return self.root / f".{key}.lock"

    def _open(self, key: str, *, locked: bool = False) -> Artifact | None:
        """The verified artifact, or ``None`` when absent or bad (a bad one is moved aside under the key's lock)."""
        try:
            return self._read(key)
        except IntegrityError as exc:
            if locked:
                move_aside(self.root / key, f"{exc.path.name}: {exc.detail}")
                return None
        with file_lock(self._lock_path(key)):  # re-checked under the lock: another process may have rebuilt it
            try:
                return self._read(key)
            except IntegrityError as exc:
                move_aside(self.root / key, f"{exc.path.name}: {exc.detail}")
                return None

    def _read(self, key: str) -> Artifact | None:
        folder = self.root / key
        meta_path = folder / METADATA_NAME
        if not meta_path.is_file():
            return None
        try:
            metadata = json.loads(meta_path.read_text())
            expected = str(metadata["weights_sha256"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(meta_path, "(unreadable)", None, reason=f"unreadable metadata: {exc}") from None
        return Artifact(key, folder / WEIGHTS_NAME, metadata, verify(folder / WEIGHTS_NAME, expected))


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

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        metadata = json.loads(header[HEADER_KEY]) if HEADER_KEY in header else {}
        return safetensors.torch.load_file(str(path)), metadata
    except Exception as exc:  # SafetensorError, ValueError, ... for truncated or corrupt files
        raise DataError(f"weights file {path} is truncated or corrupt: {type(exc).__name__}: {exc}") from None


_TRUST_HINT = " (if it pickles other objects and you trust its source, set weights_trusted=true)"


def load_torch_checkpoint(
    path: Path, *, trusted: bool, what: str = "torch checkpoint", trust_hint: str = _TRUST_HINT
) -> Any:
    """``torch.load`` on the CPU, with ``weights_only`` unless ``trusted``; a failure is one ``ConfigError`` naming
    ``what`` and the file (plus ``trust_hint`` when not ``trusted``)."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=not trusted)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ... for untrusted or corrupt files
        hint = "" if trusted else trust_hint
        raise ConfigError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}{hint}") from None


def _read_torch(path: Path, *, trusted: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    checkpoint = load_torch_checkpoint(path, trusted=trusted)
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


def check_user_file(path: Path, expected_sha256: str | None) -> str:
    """The SHA-256 of a user's weights file, checked against the hash the user gave (``weights_sha256``) if any.

    Raises:
        IntegrityError: the file's hash differs (one line naming the file and both hashes).
    """
    if expected_sha256:
        return verify(path, str(expected_sha256).strip(), source="weights_sha256")
    return file_hash(path)


def read_weights_file(path: Path, *, trusted: bool = False, expected_sha256: str | None = None) -> WeightsFile:
    """Read a safetensors file or a torch checkpoint (``torch.load`` with ``weights_only`` unless ``trusted``).

    The file's hash is checked against ``expected_sha256`` before it is parsed; a truncated or corrupt file is
    one error naming it.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights file {path} does not exist")
    reader = WEIGHT_READERS.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(f"weights file {path}: unknown suffix; use one of {', '.join(WEIGHT_READERS)}")
    sha256 = check_user_file(path, expected_sha256)
    state_dict, metadata = reader(path, trusted=trusted)
    kind = "safetensors" if path.suffix.lower() == ".safetensors" else "torch"
    return WeightsFile(state_dict, metadata, sha256, kind)
