"""Class maps: how a model's classes are scored on a dataset with other class names (``hsbench evaluate``).

A class map is a flat YAML or JSON mapping, read as data only (:mod:`hsbench.config_files`), from a class name
of the model (its training card) to a class name of the evaluated dataset, or to ``null``::

    road_marks: road          # many-to-one: predictions of both count as 'road'
    road: road
    glass_transparent_plastic: null

The rules, applied by :func:`resolve_class_map`:

- A model class not in the map keeps its name: it maps to the evaluated class of the same name, or to nothing
  when the evaluated dataset has no such class.
- A prediction of a model class that maps to nothing counts as wrong: it gets a "no class" id that no target
  pixel has (an extra last column of the confusion matrix, present only when some model class maps to nothing).
- An evaluated class that no model class maps to cannot be predicted at all, so it is excluded: its pixels are
  not scored (they leave every metric, overall accuracy included) and it enters no macro average. The excluded
  classes are listed in the output and stored with the evaluation.
- An unknown name on either side is an error (one line, with the closest names).
- Without a class map the two datasets must have the same class names (in any order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hsbench.config_files import did_you_mean, read_config_file
from hsbench.errors import ConfigError

__all__ = ["NO_CLASS_NAME", "ClassMapping", "read_class_map", "resolve_class_map"]

NO_CLASS_NAME = "(no class)"
"""Name of the extra confusion-matrix class that predictions of unmapped model classes fall into."""


@dataclass(frozen=True)
class ClassMapping:
    """A class map resolved against the model's and the evaluated dataset's class names.

    Attributes:
        model_classes: the model's class names (training card order).
        target_classes: the evaluated dataset's class names (its card order).
        lookup: model class id -> evaluated class id; unmapped model classes get :attr:`no_class`.
        excluded: evaluated class ids that no model class maps to (not scored).
        given: the class map as the user gave it (``None`` without one): part of the evaluation id.
    """

    model_classes: tuple[str, ...]
    target_classes: tuple[str, ...]
    lookup: np.ndarray
    excluded: tuple[int, ...]
    given: dict[str, str | None] | None = None

    @property
    def num_classes(self) -> int:
        """Classes of the confusion matrix: the evaluated dataset's, plus "no class" when a model class maps to
        nothing."""
        return len(self.target_classes) + (1 if self.has_no_class else 0)

    @property
    def no_class(self) -> int:
        """The id that predictions of unmapped model classes get (one past the evaluated classes)."""
        return len(self.target_classes)

    @property
    def has_no_class(self) -> bool:
        return bool((self.lookup == self.no_class).any())

    @property
    def identity(self) -> bool:
        """Model ids are the evaluated ids: predictions pass through unchanged and nothing is excluded."""
        return (len(self.model_classes) == len(self.target_classes) and not self.excluded
                and bool((self.lookup == np.arange(len(self.lookup))).all()))

    @property
    def class_names(self) -> list[str]:
        """Names of the confusion matrix's rows and columns."""
        return [*self.target_classes, *([NO_CLASS_NAME] if self.has_no_class else [])]

    @property
    def evaluated(self) -> np.ndarray:
        """Bool per confusion-matrix class: scored (not excluded, not "no class")."""
        mask = np.zeros(self.num_classes, dtype=bool)
        mask[: len(self.target_classes)] = True
        mask[list(self.excluded)] = False
        return mask

    def resolved(self) -> dict[str, str | None]:
        """Every model class name -> the evaluated class name it counts as (``None``: nothing)."""
        return {name: (self.target_classes[t] if t < self.no_class else None)
                for name, t in zip(self.model_classes, self.lookup.tolist())}

    def predictions(self, prediction: np.ndarray) -> np.ndarray:
        """Model predictions as evaluated class ids (unmapped classes as :attr:`no_class`)."""
        return self.lookup[np.asarray(prediction, dtype=np.int64)]

    def labels(self, labels: np.ndarray, ignore_index: int) -> np.ndarray:
        """Evaluated labels with the excluded classes' pixels set to ``ignore_index`` (not scored)."""
        if not self.excluded:
            return labels
        return np.where(np.isin(labels, self.excluded), ignore_index, labels)


def read_class_map(path: Path) -> dict[str, str | None]:
    """The class map file as ``{model class: evaluated class or None}``; never runs code.

    Raises:
        ConfigError: missing or malformed file, ``!!python`` tags, not a flat mapping of names to a name or null.
    """
    raw = read_config_file(Path(path), what="class map")
    source = f"class map {path}"
    out: dict[str, str | None] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ConfigError(f"{source}: key {key!r} is not a class name; quote it ('{key}': ...)")
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{source}: {key!r} maps to {value!r}; map each model class to one class name of the "
                              "evaluated dataset, or to null")
        out[key] = value
    return out


def resolve_class_map(
    model_classes: Sequence[str],
    target_classes: Sequence[str],
    class_map: Mapping[str, str | None] | None,
    *,
    model_name: str,
    target_name: str,
) -> ClassMapping:
    """Apply the rules of this module.

    Args:
        model_classes: the model's class names (training card).
        target_classes: the evaluated dataset's class names.
        class_map: ``{model class: evaluated class or None}``, or ``None`` for "the names must be the same".
        model_name: the training dataset, for messages.
        target_name: the evaluated dataset, for messages.

    Raises:
        ConfigError: an unknown class name in the map, or (without a map) different class names; one line.
    """
    model_classes, target_classes = tuple(model_classes), tuple(target_classes)
    if class_map is None:
        _require_same_names(model_classes, target_classes, model_name, target_name)
    given = dict(class_map or {})
    for name in given:
        if name not in model_classes:
            raise ConfigError(f"class map: {name!r} is not a class of the model (trained on {model_name})"
                              f"{did_you_mean(name, model_classes)}; its classes: {', '.join(model_classes)}")
    for name in given.values():
        if name is not None and name not in target_classes:
            raise ConfigError(f"class map: {name!r} is not a class of {target_name}"
                              f"{did_you_mean(name, target_classes)}; its classes: {', '.join(target_classes)}")
    index = {name: k for k, name in enumerate(target_classes)}
    no_class = len(target_classes)
    lookup = np.array([index.get(given[name], no_class) if name in given else index.get(name, no_class)
                       for name in model_classes], dtype=np.int64)
    reached = set(lookup.tolist())
    excluded = tuple(k for k in range(len(target_classes)) if k not in reached)
    return ClassMapping(model_classes, target_classes, lookup, excluded, given if class_map is not None else None)


def _require_same_names(model: tuple[str, ...], target: tuple[str, ...], model_name: str, target_name: str) -> None:
    missing = [n for n in model if n not in target]
    extra = [n for n in target if n not in model]
    if missing or extra:
        parts = ([f"model classes {target_name} lacks: {', '.join(missing)}"] if missing else []) + (
            [f"{target_name} classes the model lacks: {', '.join(extra)}"] if extra else [])
        raise ConfigError(f"the model (trained on {model_name}) and {target_name} have different class names "
                          f"({'; '.join(parts)}); pass --class-map FILE mapping model classes to {target_name}'s")

