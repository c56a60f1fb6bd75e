"""The :class:`Split` record: per-image pixel masks for train / val / test, its content hash and its files."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hsbench.errors import DataError
from hsbench.integrity import IntegrityError, file_hash, verify
from hsbench.splits._pixels import guard_band
from hsbench.splits._spec import parse_split_spec

__all__ = ["Split", "PARTS", "split_hash"]

PARTS = ("train", "val", "test")
JSON_NAME = "split.json"
MASKS_NAME = "split_masks.npz"
_FORMAT = 1

Parts = dict[str, dict[str, "np.ndarray | None"]]


@dataclass(frozen=True, eq=False)
class Split:
    """Which labelled pixels of which images each part may use.

    Build one with :func:`hsbench.splits.make_split`; the constructor trusts its arguments. Compare splits by
    ``hash`` (``==`` is identity, since element-wise mask comparison has no single truth value).

    Attributes:
        dataset: dataset name.
        spec: canonical spec string (``str(SplitSpec)``).
        seed: run seed the split was drawn from.
        parts: ``train`` / ``val`` / ``test`` -> sample id -> bool ``(H, W)`` mask (read-only), or ``None`` for
            "every labelled pixel of this image".
        coverage: part -> labelled pixels per class (length K).
        hash: SHA-256 over dataset, spec, seed, params, ids, masks and coverage (see :func:`split_hash`).
        params: options that shaped the masks but are not in the spec string (``guard`` and ``block_size`` of a
            disjoint split, the ``min_test`` of a scene kshot split; for ``sampler=cross_domain_2026`` the sampler,
            its fixed ``draw_seed`` 42 and ``seed_independent`` 1: every run seed gets the same images), so a saved
            split says how it was made.
        excluded: classes left out of the split (in no part) because they were too small for it; the metrics of
            its runs average over the other classes (see :attr:`evaluated_classes`).
    """

    dataset: str
    spec: str
    seed: int
    parts: Parts
    coverage: dict[str, list[int]]
    hash: str
    params: dict[str, int | str] = field(default_factory=dict)
    excluded: tuple[int, ...] = ()

    @property
    def evaluated_classes(self) -> np.ndarray:
        """Bool per class: the split scores it (every class but the excluded ones); the metrics' class mask."""
        mask = np.ones(len(self.coverage["train"]), dtype=bool)
        mask[list(self.excluded)] = False
        return mask

    @property
    def val_protocol(self) -> str:
        """``full`` (HS3-Bench) or ``matched`` (val subsampled like train), from the spec."""
        return parse_split_spec(self.spec).val

    def labelled(self, part: str) -> dict[str, int]:
        """Labelled ``pixels`` and ``images`` of a part: what a run really used (train) or selected on (val)."""
        return {"pixels": int(sum(self.coverage[part])), "images": len(self.parts[part])}

    def protocol(self) -> dict[str, Any]:
        """The labels a run on this split really uses, as run facts: labelled train and val pixels and images, the
        val protocol, the excluded classes and, for a disjoint split, the guard band."""
        facts: dict[str, Any] = {}
        for part in ("train", "val"):
            counts = self.labelled(part)
            facts[f"{part}_labelled_pixels"], facts[f"{part}_labelled_images"] = counts["pixels"], counts["images"]
        facts["val_protocol"] = self.val_protocol
        facts["excluded_classes"] = list(self.excluded)
        if "guard" in self.params:
            facts["guard"] = self.params["guard"]
        return facts

    def readable(self, sample_id: str) -> np.ndarray | None:
        """Pixels of one image a strategy may read without labels (``None``: all of them).

        Everything except the image's val and test pixels and the guard band around its test pixels (the split's
        ``guard`` or ``patch_radius`` param; 0 for splits without one), so an unlabelled pixel that pretraining or a
        fitted statistic reads is never a val pixel and lies as far from every test pixel as a disjoint split
        keeps its train pixels. Val gets no guard: splits draw it next to train pixels anyway. An image that is
        entirely val or test (a segmentation dataset's val and test images) has no readable pixel. Depends on
        the masks only, never on the cube, so poisoned val or test values cannot change what is read.
        """
        held_out = [self.parts[part][sample_id] for part in ("val", "test") if sample_id in self.parts[part]]
        if not held_out:
            return None
        if any(mask is None for mask in held_out):  # a whole val or test image
            shape = next((m.shape for masks in self.parts.values() if (m := masks.get(sample_id)) is not None), None)
            if shape is None:
                raise DataError(f"{self.dataset}: image {sample_id!r} is held out whole; it has no readable pixel")
            return np.zeros(shape, dtype=bool)
        test = self.parts["test"].get(sample_id)
        forbidden = np.zeros_like(held_out[0])
        if test is not None:
            forbidden |= guard_band(test, _guard(self.params))
        if (val := self.parts["val"].get(sample_id)) is not None:
            forbidden |= val
        readable = ~forbidden
        readable.setflags(write=False)
        return readable

    def visible(self, sample_id: str, part: str) -> np.ndarray | None:
        """Pixels of one image whose values a view of ``part`` hands out (``None``: all of them).

        Everything except the image's test pixels and the guard band around them; the part's own pixels stay
        visible even inside the band (they are what it scores). Equals ``readable | mask`` of the part. A val view
        hides the rest (:meth:`hsbench.strategy.SplitView.load`), so predicting a val pixel of a scene, as model
        selection does, never reads a test pixel; an image without test pixels is visible whole.
        """
        test = self.parts["test"].get(sample_id)
        if test is None:  # no test pixel in this image (a whole test image is never in another part)
            return None
        visible = ~guard_band(test, _guard(self.params))
        if (own := self.parts[part][sample_id]) is not None:
            visible |= own
        visible.setflags(write=False)
        return visible

    def readable_masks(self, part: str = "train") -> dict[str, np.ndarray | None]:
        """:meth:`readable` for every image of ``part`` (what a :class:`SplitView` of that part may read)."""
        return {sample_id: self.readable(sample_id) for sample_id in self.parts[part]}

    def missing_classes(self, part: str) -> list[int]:
        """Classes with no pixel in ``part``; a runner warns, since per-class metrics are undefined there."""
        return [c for c, n in enumerate(self.coverage[part]) if n == 0 and c not in self.excluded]

    def short_classes(self) -> list[int]:
        """For ``kshot=k``: classes given fewer than k training pixels (all they had); empty otherwise."""
        k = parse_split_spec(self.spec).k
        if k is None:
            return []
        return [c for c, n in enumerate(self.coverage["train"]) if n < k and c not in self.excluded]

    def coverage_warnings(self, class_names: Sequence[str] | None = None) -> list[str]:
        """One sentence per gap (short or missing class), for a runner to log before training."""

        def name(c: int) -> str:
            return f"class {c} ({class_names[c]})" if class_names else f"class {c}"

        out = [
            f"{self.dataset} {self.spec}: {name(c)} has only {self.coverage['train'][c]} labelled training pixels"
            for c in self.short_classes()
            if self.coverage["train"][c] > 0
        ]
        for part in PARTS:
            out += [f"{self.dataset} {self.spec}: {name(c)} has no {part} pixels" for c in self.missing_classes(part)]
        out += [f"{self.dataset} {self.spec}: {name(c)} is excluded (too few labelled pixels for the split); macro "
                "metrics average over the other classes" for c in self.excluded]
        return out

    def save(self, directory: Path) -> None:
        """Write ``split.json`` (ids, coverage, hash) and ``split_masks.npz`` (the explicit masks only).

        The masks go first and the JSON last, so a crash mid-save leaves no JSON that points at missing masks;
        the JSON records the masks file's content hash, checked by :meth:`load`.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        listing: dict[str, list[dict[str, str | None]]] = {}
        for part in PARTS:
            listing[part] = []
            for i, (sample_id, mask) in enumerate(self.parts[part].items()):
                key = None if mask is None else f"{part}_{i}"
                if key is not None:
                    arrays[key] = mask
                listing[part].append({"id": sample_id, "mask": key})
        with open(directory / MASKS_NAME, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        record = {
            "format": _FORMAT,
            "dataset": self.dataset,
            "spec": self.spec,
            "seed": self.seed,
            "hash": self.hash,
            "masks_sha256": file_hash(directory / MASKS_NAME),
            "params": self.params,
            "parts": listing,
            "coverage": self.coverage,
            "excluded_classes": list(self.excluded),
        }
        (directory / JSON_NAME).write_text(json.dumps(record, indent=1) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Split:
        """Read a saved split and check its hashes (the masks file's, then the split's content hash).

        Raises:
            DataError: a file is missing or unreadable, or its content no longer matches the stored hash.
        """
        directory = Path(directory)
        try:
            record = json.loads((directory / JSON_NAME).read_text())
            if "masks_sha256" in record:  # splits saved before file hashes rely on the content hash alone
                try:
                    verify(directory / MASKS_NAME, str(record["masks_sha256"]))
                except IntegrityError as exc:
                    raise DataError(f"the split in {directory} was altered after it was saved: {exc}") from None
            with np.load(directory / MASKS_NAME, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
            parts = {part: _read_part(record["parts"][part], arrays) for part in PARTS}
            split = cls(
                dataset=str(record["dataset"]),
                spec=str(record["spec"]),
                seed=int(record["seed"]),
                parts=parts,
                coverage={part: [int(n) for n in record["coverage"][part]] for part in PARTS},
                hash=str(record["hash"]),
                params={str(k): _param(v) for k, v in record.get("params", {}).items()},
                excluded=tuple(int(c) for c in record.get("excluded_classes", [])),
            )
        except DataError:
            raise
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise DataError(f"cannot read the split in {directory}: {exc}") from exc
        expected = split_hash(split.dataset, split.spec, split.seed, split.parts, split.coverage, split.params,
                              split.excluded)
        if expected != split.hash:
            raise DataError(
                f"the split in {directory} was altered after it was saved (stored hash {split.hash[:12]}, content "
                f"hash {expected[:12]}); recreate it with make_split rather than editing it"
            )
        return split


def _param(value: object) -> int | str:
    """A split param: a name (``sampler``) stays text, a number is an int (as before names, so old hashes hold)."""
    return value if isinstance(value, str) else int(value)  # type: ignore[call-overload]


def _guard(params: dict[str, int | str]) -> int:
    """Guard band (pixels) around a split's test pixels: ``guard`` or, in older splits, ``patch_radius``."""
    return int(params.get("guard", params.get("patch_radius", 0)))


def _read_part(entries: list[dict[str, Any]], arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray | None]:
    out: dict[str, np.ndarray | None] = {}
    for entry in entries:
        key = entry["mask"]
        if key is None:
            out[str(entry["id"])] = None
            continue
        mask = arrays[key]
        if mask.dtype != bool or mask.ndim != 2:
            raise ValueError(f"mask {key} is {mask.dtype} {mask.shape}, expected a 2-D bool array")
        mask.setflags(write=False)
        out[str(entry["id"])] = mask
    return out


def split_hash(
    dataset: str,
    spec: str,
    seed: int,
    parts: Parts,
    coverage: dict[str, list[int]],
    params: dict[str, int | str],
    excluded: Sequence[int] = (),
) -> str:
    """SHA-256 of everything that defines a split, each field length-prefixed so no two splits can collide.

    Coverage is included (it is a function of the masks and the labels) so that an edited JSON fails to load.
    Excluded classes are fed only when there are some, so splits saved before exclusions existed keep their hash.
    """
    h = hashlib.sha256()

    def feed(data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)

    feed(f"hsbench.split.v{_FORMAT}")
    feed(dataset)
    feed(spec)
    feed(str(int(seed)))
    feed(json.dumps({k: _param(v) for k, v in params.items()}, sort_keys=True))
    if excluded:
        feed("excluded")
        feed(json.dumps([int(c) for c in excluded]))
    for part in PARTS:
        feed(part)
        feed(json.dumps([int(n) for n in coverage[part]]))
        feed(str(len(parts[part])))
        for sample_id, mask in parts[part].items():
            feed(sample_id)
            if mask is None:
                feed("all")
            else:
                feed(str(tuple(mask.shape)))
                feed(np.packbits(np.ascontiguousarray(mask, dtype=bool)).tobytes())
    return h.hexdigest()
