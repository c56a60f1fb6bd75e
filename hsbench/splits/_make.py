"""``make_split``: turn a dataset, a spec and a seed into a :class:`Split`.

Image-level splits (``official``, ``fraction`` on segmentation datasets) give whole images (mask ``None``);
pixel-level splits (``kshot``, ``fraction`` on scene datasets) give per-image bool masks. All randomness comes
from the ``split`` seed stream, so a split depends on the seed and the data only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hsbench.data.dataset import Dataset
from hsbench.data.labels import class_counts
from hsbench.errors import ConfigError, DataError
from hsbench.seeding import SeedStreams
from hsbench.splits._pixels import (
    ClassOrder,
    block_regions,
    ceil_share,
    class_orders,
    draw_keys,
    guard_band,
    masks_from_refs,
    merge_orders,
)
from hsbench.splits._samplers import DEFAULT_SAMPLER, IMAGE_SAMPLERS, image_share
from hsbench.splits._spec import SplitSpec, parse_split_spec
from hsbench.splits._split import PARTS, Parts, Split, split_hash

__all__ = ["make_split", "SCENE_VAL_FRACTION"]

SCENE_VAL_FRACTION = 0.05
"""Share of each class held out for validation in a scene ``fraction`` split (at least one pixel from 3 up)."""

Refs = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class _Drawn:
    """What a builder hands back: the parts, their per-class pixel counts and any shaping options."""

    parts: Parts
    coverage: dict[str, list[int]]
    params: dict[str, int | str]
    excluded: list[int] = field(default_factory=list)


def make_split(
    dataset: Dataset,
    spec: str | SplitSpec,
    seed: int,
    *,
    guard: int | None = None,
    block_size: int | None = None,
) -> Split:
    """Draw a split.

    Args:
        dataset: the dataset; labels are loaded only for the images a split needs.
        spec: a spec string (see :func:`parse_split_spec`) or a parsed spec.
        seed: the run seed; the ``split`` stream of :class:`SeedStreams` is derived from it.
        guard: for ``kshot=k,disjoint`` without ``guard=N`` in the spec: every test pixel lies more than this many
            pixels (Chebyshev) from every train and val pixel, so no model whose spatial context is at most
            ``guard`` sees a test pixel while it learns. The runner passes the largest spatial context of the
            registered strategies (:func:`hsbench.strategy.default_guard`), so every strategy compared on a scene
            gets the same split; there is no silent default here.
        block_size: side of the square blocks of a disjoint split; default
            ``max(4 * guard + 1, min(H, W) // 8)`` over the smallest image.

    Raises:
        ConfigError: the spec does not fit the dataset (no official split, disjoint on whole images, a split
            that leaves no test pixels, a disjoint split without a guard) or an option is out of range.
        DataError: an official list names an unknown sample or puts one sample in two parts.
    """
    parsed = spec if isinstance(spec, SplitSpec) else parse_split_spec(spec)
    if parsed.guard is not None:
        guard = parsed.guard
    if guard is not None and (isinstance(guard, bool) or not isinstance(guard, int) or guard < 0):
        raise ConfigError(f"guard must be a whole number >= 0, got {guard!r}")
    if block_size is not None and (isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1):
        raise ConfigError(f"block_size must be a whole number >= 1, got {block_size!r}")
    card = dataset.card
    if parsed.kind == "official":
        drawn = _official(dataset, parsed)
    elif card.task == "segmentation":
        if parsed.disjoint:
            raise ConfigError(
                f"{card.name}: 'disjoint' applies to scene datasets; a segmentation dataset's official train and "
                "test images are already separate, so use plain kshot=k"
            )
        build = _image_fraction if parsed.kind == "fraction" else _image_kshot
        drawn = build(dataset, parsed, seed)
    else:
        if parsed.disjoint and guard is None:
            raise ConfigError(f"{card.name}: {parsed} needs a guard band: write guard=N in the spec or pass guard= "
                              "(hsbench run passes the largest spatial context of the registered strategies)")
        if parsed.sampler != DEFAULT_SAMPLER:
            raise ConfigError(f"{card.name}: sampler={parsed.sampler} draws whole images; a scene dataset's "
                              "fraction draws pixels, so drop the sampler")
        drawn = _scene(dataset, parsed, seed, guard or 0, block_size)
    spec_text = str(parsed)
    excluded = tuple(drawn.excluded)
    digest = split_hash(card.name, spec_text, seed, drawn.parts, drawn.coverage, drawn.params, excluded)
    return Split(card.name, spec_text, int(seed), drawn.parts, drawn.coverage, digest, drawn.params, excluded)


# --- image-level splits ---------------------------------------------------------------------------------------


def _official_lists(dataset: Dataset, name: str | None) -> dict[str, tuple[str, ...]]:
    official = dataset.card.official(name)
    lists = {part: official.part(part) for part in PARTS}
    known = set(dataset.sample_ids)
    seen: dict[str, str] = {}
    for part, ids in lists.items():
        for sample_id in ids:
            if sample_id not in known:
                raise DataError(f"{dataset.card.name}: the official {part} list names unknown sample {sample_id!r}")
            if sample_id in seen:
                raise DataError(
                    f"{dataset.card.name}: sample {sample_id!r} is in both the official {seen[sample_id]} and "
                    f"{part} lists"
                )
            seen[sample_id] = part
    return lists


def _whole_images(dataset: Dataset, ids: tuple[str, ...] | list[str]) -> tuple[dict[str, None], list[int]]:
    """Parts entries and per-class counts for whole images (each image is loaded once, then dropped)."""
    k = dataset.card.num_classes
    counts = np.zeros(k, dtype=np.int64)
    for sample_id in ids:
        counts += class_counts(dataset.load(sample_id).labels, k)
    return dict.fromkeys(ids), counts.tolist()


def _official(dataset: Dataset, spec: SplitSpec) -> _Drawn:
    lists = _official_lists(dataset, spec.name)
    parts, coverage = {}, {}
    for part in PARTS:
        parts[part], coverage[part] = _whole_images(dataset, lists[part])
    return _Drawn(parts, coverage, {})


def _image_fraction(dataset: Dataset, spec: SplitSpec, seed: int) -> _Drawn:
    """A nested subset of the official training images, drawn by the spec's sampler (default: a prefix of one
    seeded permutation; see :data:`IMAGE_SAMPLERS`).

    With ``val=matched`` the val images are cut the same way (their own permutation, so train is unchanged).
    """
    lists = _official_lists(dataset, None)
    if not lists["train"]:
        raise ConfigError(f"{dataset.card.name}: the official split has no training images to take a fraction of")
    sampler = IMAGE_SAMPLERS[spec.sampler]
    lists["train"] = sampler.draw(lists["train"], spec.fraction, seed)
    if spec.val == "matched" and lists["val"]:
        lists["val"] = image_share(lists["val"], spec.fraction, _val_rng(seed))
    parts, coverage = {}, {}
    for part in PARTS:
        parts[part], coverage[part] = _whole_images(dataset, lists[part])
    return _Drawn(parts, coverage, dict(sampler.params))


def _image_kshot(dataset: Dataset, spec: SplitSpec, seed: int) -> _Drawn:
    """k pixels per class pooled over the official training images (and, with ``val=matched``, val images)."""
    lists = _official_lists(dataset, None)
    parts: Parts = {}
    coverage: dict[str, list[int]] = {}
    parts["train"], coverage["train"] = _pooled_kshot(dataset, lists["train"], spec.k, _pixel_rng(seed))
    if spec.val == "matched":
        parts["val"], coverage["val"] = _pooled_kshot(dataset, lists["val"], spec.k, _val_rng(seed))
    else:
        parts["val"], coverage["val"] = _whole_images(dataset, lists["val"])
    parts["test"], coverage["test"] = _whole_images(dataset, lists["test"])
    _freeze(parts)
    return _Drawn(parts, coverage, {})


def _pooled_kshot(
    dataset: Dataset, ids: tuple[str, ...], k: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray | None], list[int]]:
    """k pixels per class pooled over ``ids``, streamed one image at a time (``O(k K)`` candidates held)."""
    card = dataset.card
    shapes, pooled = [], []
    for i, sample_id in enumerate(ids):
        labels = dataset.load(sample_id).labels
        shapes.append(labels.shape)
        orders = class_orders(
            [labels],
            [draw_keys(rng, labels.shape)],
            num_classes=card.num_classes,
            ignore_index=card.ignore_index,
            keep=k,
        )
        pooled.append([ClassOrder(np.full(len(o), i, dtype=np.int64), o.flat, o.key) for o in orders])
    best = [merge_orders(per_class, k) for per_class in zip(*pooled)] if pooled else []
    masks = masks_from_refs(shapes, [o.take(0) for o in best])
    part = {sid: m for sid, m in zip(ids, masks) if m.any()}
    return part, [len(o) for o in best] or [0] * card.num_classes


# --- scene (pixel-level) splits -------------------------------------------------------------------------------


def _scene(dataset: Dataset, spec: SplitSpec, seed: int, guard: int, block_size: int | None) -> _Drawn:
    card = dataset.card
    ids = dataset.sample_ids
    labels = [dataset.load(sample_id).labels for sample_id in ids]
    rng = _pixel_rng(seed)
    keys = [draw_keys(rng, lab.shape) for lab in labels]
    common = {"num_classes": card.num_classes, "ignore_index": card.ignore_index}
    params: dict[str, int] = {}
    excluded: list[int] = []
    if spec.kind == "fraction":
        refs = _scene_fraction(class_orders(labels, keys, **common), spec.fraction, matched=spec.val == "matched")
        test_masks = masks_from_refs([lab.shape for lab in labels], refs["test"])
    elif not spec.disjoint:
        refs, excluded = _scene_kshot(class_orders(labels, keys, **common), spec)
        test_masks = masks_from_refs([lab.shape for lab in labels], refs["test"])
        params = {"min_test": spec.test_minimum}
    else:
        side = block_size or max(4 * guard + 1, min(min(lab.shape) for lab in labels) // 8)
        regions = block_regions(labels, block_size=side, margin=guard, rng=_block_rng(seed), **common)
        test_masks = [(lab != card.ignore_index) & ~guard_band(r, guard) for lab, r in zip(labels, regions)]
        test_counts = np.sum([class_counts(lab[m], card.num_classes) for lab, m in zip(labels, test_masks)], axis=0)
        refs, excluded = _disjoint_kshot(class_orders(labels, keys, allowed=regions, **common), test_counts, spec)
        test_masks = [m & ~np.isin(lab, excluded) for lab, m in zip(labels, test_masks)]
        params = {"guard": guard, "block_size": side, "min_test": spec.test_minimum}
    shapes = [lab.shape for lab in labels]
    per_part = {"train": masks_from_refs(shapes, refs["train"]), "val": masks_from_refs(shapes, refs["val"])}
    per_part["test"] = test_masks
    parts: Parts = {part: {sid: m for sid, m in zip(ids, per_part[part]) if m.any()} for part in PARTS}
    coverage = {
        part: np.sum([class_counts(lab[m], card.num_classes) for lab, m in zip(labels, per_part[part])],
                     axis=0).tolist()
        for part in PARTS
    }
    if not parts["test"]:
        raise ConfigError(
            f"{card.name}: {spec} leaves no test pixels; use a smaller fraction, or for disjoint splits a smaller "
            f"block_size or guard (this one: {params['guard']} px, blocks of {params['block_size']} px; the default "
            "guard is the largest spatial context of the registered strategies: pass guard=N and compare only "
            "strategies whose context is at most N)" if "guard" in params else
            f"{card.name}: {spec} leaves no test pixels; use a smaller fraction or k"
        )
    _freeze(parts)
    return _Drawn(parts, coverage, params, excluded)


def _scene_fraction(orders: list[ClassOrder], p: float, *, matched: bool = False) -> dict[str, Refs]:
    """Per class: train = the first ``ceil(p n)`` (at least one), val = a fixed tail slice, test = the middle.

    Val comes from the tail of the order so it is the same pixels for every fraction of one seed, and the train
    prefixes stay nested. ``matched`` keeps only the first ``ceil(p m)`` (at least one) of the ``m`` val pixels;
    the rest of the tail is used by no part, so train and test are the same pixels under either protocol.
    """
    refs: dict[str, Refs] = {part: [] for part in PARTS}
    for order in orders:
        n = len(order)
        n_val = max(1, int(SCENE_VAL_FRACTION * n)) if n >= 3 else 0
        n_train = min(n - n_val, max(1, ceil_share(p, n)))
        used_val = min(n_val, max(1, ceil_share(p, n_val))) if matched else n_val
        refs["train"].append(order.take(0, n_train))
        refs["test"].append(order.take(n_train, n - n_val))
        refs["val"].append(order.take(n - n_val, n - n_val + used_val))
    return refs


def _kshot_train(n: int, spec: SplitSpec) -> int:
    """Train pixels of a class with ``n`` candidates: k, or with ``cap=half`` at most half of the class."""
    return min(spec.k, n // 2) if spec.cap == "half" else min(spec.k, n)


def _scene_kshot(orders: list[ClassOrder], spec: SplitSpec) -> tuple[dict[str, Refs], list[int]]:
    """Per class: train = the first k, val = the next ``min(k, half the rest)``, test = the rest.

    A class with fewer than ``k + min_test`` pixels is excluded (in no part): given all its pixels for training it
    would have no test pixel yet still be predicted, an IoU of 0 that says nothing about the strategy. Val never
    takes a test pixel below ``min_test``; halving the rest keeps at least as many test as val pixels. With
    ``cap=half`` no class is excluded and train takes at most half of each.

    Returns:
        The refs per part, and the excluded classes.
    """
    refs: dict[str, Refs] = {part: [] for part in PARTS}
    excluded = []
    minimum = spec.test_minimum
    for c, order in enumerate(orders):
        n = len(order)
        if spec.cap is None and 0 < n < spec.k + minimum:
            excluded.append(c)
            n = 0
        n_train = _kshot_train(n, spec)
        n_val = min(spec.k, (n - n_train) // 2, n - n_train - minimum) if n else 0
        refs["train"].append(order.take(0, n_train))
        refs["val"].append(order.take(n_train, n_train + n_val))
        refs["test"].append(order.take(n_train + n_val, n))
    return refs, excluded


def _disjoint_kshot(
    region_orders: list[ClassOrder], test_counts: np.ndarray, spec: SplitSpec
) -> tuple[dict[str, Refs], list[int]]:
    """Train and val from the training region only (val up to k per class); test is built from blocks.

    A class with fewer than k pixels in the training region or fewer than ``min_test`` in the test region is
    excluded (unless ``cap=half``, which takes at most half of the class's training-region pixels).
    """
    refs: dict[str, Refs] = {"train": [], "val": []}
    excluded = []
    for c, order in enumerate(region_orders):
        n = len(order)
        if (n or test_counts[c]) and (n < spec.k or test_counts[c] < spec.test_minimum) and spec.cap is None:
            excluded.append(c)
            n = 0
        n_train = _kshot_train(n, spec)
        refs["train"].append(order.take(0, n_train))
        refs["val"].append(order.take(n_train, min(n, n_train + spec.k)))
    return refs, excluded


# --- helpers --------------------------------------------------------------------------------------------------


def _pixel_rng(seed: int) -> np.random.Generator:
    """Pixel keys and block draws use separate children of the split stream, so neither shifts the other."""
    return np.random.default_rng(SeedStreams(seed).sequence("split").spawn(2)[0])


def _block_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(SeedStreams(seed).sequence("split").spawn(2)[1])


def _val_rng(seed: int) -> np.random.Generator:
    """``val=matched`` draws from a third child, so the train draw is the same under either val protocol."""
    return np.random.default_rng(SeedStreams(seed).sequence("split").spawn(3)[2])


def _freeze(parts: Parts) -> None:
    """Masks are part of the hash, so they must not change after it is taken."""
    for masks in parts.values():
        for mask in masks.values():
            if mask is not None:
                mask.setflags(write=False)
