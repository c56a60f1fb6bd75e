"""Dataset config files: a user's own ENVI dataset described in YAML, parsed and checked field by field.

A config is flat (no composition) and every mistake is a :class:`ConfigError` naming the file and the field, so a
user can fix it without reading code. See ``docs/datasets/scenes.md`` for the format; ``user_datasets`` turns a
parsed config into a registered dataset.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsbench.config_files import did_you_mean, read_config_file
from hsbench.data.card import OfficialSplit, Task
from hsbench.data.labels import IGNORE_INDEX
from hsbench.data.scenes.envi import EnviSample
from hsbench.errors import ConfigError
from hsbench.names import check_name

__all__ = ["UserDatasetConfig", "load_dataset_config"]

_REQUIRED = ("name", "task", "samples", "class_names", "label_map")
_OPTIONAL = (
    "palette", "pseudo_rgb_bands", "wavelengths_nm", "ignore_index", "root", "splits", "description", "citation",
    "licence", "how_to_obtain", "version",
)
_TASKS = ("scene", "segmentation")
_PARTS = ("train", "val", "test")
_SAMPLE_KEYS = ("id", "cube", "labels")
_IGNORE_WORDS = {"ignore", "unlabelled", "unlabeled"}


@dataclass(frozen=True)
class UserDatasetConfig:
    """A checked dataset config. Paths of samples are as written (relative ones resolve against ``root``)."""

    path: Path
    name: str
    task: Task
    root: Path
    samples: tuple[EnviSample, ...]
    class_names: tuple[str, ...]
    label_map: dict[int, int] = field(hash=False)
    ignore_index: int = IGNORE_INDEX
    palette: tuple[tuple[int, int, int], ...] | None = None
    pseudo_rgb_bands: tuple[int, int, int] | None = None
    wavelengths_nm: tuple[float, ...] | None = None
    splits: dict[str, OfficialSplit] = field(default_factory=dict, hash=False)
    description: str = ""
    citation: str = ""
    licence: str = ""
    how_to_obtain: str = ""
    version: str = ""


class _Fields:
    """Field readers bound to one file, so every error names the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: field {name!r}: {problem}")

    def text(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def integer(self, value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
                return int(value)
            raise self.error(name, f"expected an integer, got {value!r}")
        return value

    def sequence(self, value: Any, name: str, *, length: int | None = None) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise self.error(name, f"expected a non-empty list, got {value!r}")
        if length is not None and len(value) != length:
            raise self.error(name, f"expected {length} entries, got {len(value)}")
        return value

    def mapping(self, value: Any, name: str) -> dict[Any, Any]:
        if not isinstance(value, dict) or not value:
            raise self.error(name, f"expected a non-empty mapping, got {value!r}")
        return value


def _unknown(f: _Fields, data: Mapping[Any, Any], allowed: tuple[str, ...], where: str = "") -> None:
    """One error for the first unknown key, with the closest valid keys and every allowed one."""
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise f.error(f"{where}{unknown[0]}", f"unknown field{did_you_mean(unknown[0], allowed)}; the fields are "
                                               f"{', '.join(allowed)}")


def _check_keys(f: _Fields, data: Mapping[str, Any]) -> None:
    _unknown(f, data, _REQUIRED + _OPTIONAL)
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise f.error(missing[0], "required field is missing")


def _name(f: _Fields, value: Any, field_name: str, what: str) -> str:
    """A name that becomes a file or folder name (dataset, sample id): the one name rule, naming file and field."""
    try:
        return check_name(f.text(value, field_name), what)
    except ConfigError as exc:
        raise f.error(field_name, str(exc)) from None


def _samples(f: _Fields, value: Any) -> tuple[EnviSample, ...]:
    samples: list[EnviSample] = []
    for i, entry in enumerate(f.sequence(value, "samples")):
        where = f"samples[{i}]"
        entry = f.mapping(entry, where)
        _unknown(f, entry, _SAMPLE_KEYS, f"{where}.")
        for key in _SAMPLE_KEYS:
            if key not in entry:
                raise f.error(f"{where}.{key}", "required field is missing")
        sample_id = _name(f, str(entry["id"]), f"{where}.id", "sample id")  # predictions/<id>.png, sample folders
        cube = f.text(entry["cube"], f"{where}.cube")
        if not cube.lower().endswith(".hdr"):
            raise f.error(f"{where}.cube", f"expected the ENVI header (.hdr) of the cube, got {cube!r}")
        samples.append(EnviSample(sample_id, Path(cube), Path(f.text(entry["labels"], f"{where}.labels"))))
    ids = [s.id for s in samples]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise f.error("samples", f"duplicate sample ids {', '.join(duplicated)}")
    return tuple(samples)


def _class_names(f: _Fields, value: Any) -> tuple[str, ...]:
    names = tuple(f.text(n, f"class_names[{i}]") for i, n in enumerate(f.sequence(value, "class_names")))
    if len(set(names)) != len(names):
        raise f.error("class_names", "class names must be unique")
    return names


def _label_map(f: _Fields, value: Any, num_classes: int, ignore_index: int) -> dict[int, int]:
    """Raw id -> harness id; ``ignore`` (or null, or the ignore index) marks unlabelled raw ids."""
    label_map: dict[int, int] = {}
    for raw, target in f.mapping(value, "label_map").items():
        where = f"label_map[{raw}]"
        raw_id = f.integer(raw, where)
        if target is None or (isinstance(target, str) and target.strip().lower() in _IGNORE_WORDS):
            label_map[raw_id] = ignore_index
            continue
        harness_id = f.integer(target, where)
        if harness_id != ignore_index and not 0 <= harness_id < num_classes:
            raise f.error(where, f"maps to {harness_id}, outside the class ids 0..{num_classes - 1} (or 'ignore')")
        label_map[raw_id] = harness_id
    unreached = _unreached(label_map, num_classes)
    if unreached:
        raise f.error("label_map", f"no raw id maps to class {unreached[0]}; every class needs at least one")
    return label_map


def _unreached(label_map: Mapping[int, int], num_classes: int) -> list[int]:
    return sorted(set(range(num_classes)) - set(label_map.values()))


def _palette(f: _Fields, value: Any, num_classes: int) -> tuple[tuple[int, int, int], ...]:
    colours = []
    for i, colour in enumerate(f.sequence(value, "palette", length=num_classes)):
        rgb = [f.integer(c, f"palette[{i}]") for c in f.sequence(colour, f"palette[{i}]", length=3)]
        if any(not 0 <= c <= 255 for c in rgb):
            raise f.error(f"palette[{i}]", f"colour components must be 0..255, got {rgb}")
        colours.append((rgb[0], rgb[1], rgb[2]))
    return tuple(colours)


def _rgb_bands(f: _Fields, value: Any) -> tuple[int, int, int]:
    entries = f.sequence(value, "pseudo_rgb_bands", length=3)
    r, g, b = (f.integer(v, f"pseudo_rgb_bands[{i}]") for i, v in enumerate(entries))
    return r, g, b


def _wavelengths(f: _Fields, value: Any) -> tuple[float, ...]:
    values = []
    for i, w in enumerate(f.sequence(value, "wavelengths_nm")):
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0:
            raise f.error(f"wavelengths_nm[{i}]", f"expected a positive number of nm, got {w!r}")
        values.append(float(w))
    return tuple(values)


def _one_split(f: _Fields, value: Any, name: str, ids: set[str]) -> OfficialSplit:
    parts = f.mapping(value, name)
    _unknown(f, parts, _PARTS, f"{name}.")
    lists: dict[str, tuple[str, ...]] = {}
    for part in _PARTS:
        listed = tuple(str(i) for i in (parts.get(part) or []))
        unknown = [i for i in listed if i not in ids]
        if unknown:
            raise f.error(f"{name}.{part}", f"unknown sample ids {', '.join(unknown[:5])}")
        lists[part] = listed
    return OfficialSplit(lists["train"], lists["val"], lists["test"])


def _splits(f: _Fields, value: Any, task: str, ids: set[str]) -> dict[str, OfficialSplit]:
    """``{train, val, test}`` for one split named ``official``, or several such mappings by name."""
    if task == "scene":
        raise f.error("splits", "scene datasets use k-shot pixel splits and take no sample splits")
    splits = f.mapping(value, "splits")
    if set(splits) & set(_PARTS):  # one split given by its parts; any other key is a misspelt part
        _unknown(f, splits, _PARTS, "splits.")
        return {"official": _one_split(f, splits, "splits", ids)}
    return {str(name): _one_split(f, parts, f"splits.{name}", ids) for name, parts in splits.items()}


def _content_version(samples: tuple[EnviSample, ...], label_map: Mapping[int, int]) -> str:
    """A card version that changes whenever the bytes prepare would write can change (files, label map)."""
    relevant = {
        "samples": [[s.id, str(s.cube), str(s.labels)] for s in samples],
        "label_map": sorted(label_map.items()),
    }
    digest = hashlib.sha256(json.dumps(relevant).encode()).hexdigest()
    return f"cfg-{digest[:12]}"


def _optional_texts(f: _Fields, data: Mapping[str, Any], path: Path) -> dict[str, str]:
    defaults = {
        "description": f"user dataset defined by {path}",
        "citation": "",
        "licence": "unknown (user data)",
        "how_to_obtain": f"user data; files listed in {path}",
    }
    return {k: f.text(data[k], k) if k in data else default for k, default in defaults.items()}


def _root(f: _Fields, data: Mapping[str, Any], path: Path) -> Path:
    if "root" not in data:
        return path.parent
    return (path.parent / Path(f.text(data["root"], "root")).expanduser()).resolve()


def load_dataset_config(path: Path) -> UserDatasetConfig:
    """Parse and check a dataset config file (no data file is opened).

    Raises:
        ConfigError: unreadable YAML, unknown or missing fields, or a malformed value (message names the field).
    """
    path = Path(path).expanduser().resolve()
    data = read_config_file(path, what="dataset config")
    f = _Fields(path)
    _check_keys(f, data)
    name = _name(f, data["name"], "name", "dataset name")  # also a folder name under the data root
    task = f.text(data["task"], "task")
    if task not in _TASKS:
        raise f.error("task", f"expected one of {', '.join(_TASKS)}, got {task!r}{did_you_mean(task, _TASKS)}")
    samples = _samples(f, data["samples"])
    class_names = _class_names(f, data["class_names"])
    ignore_index = f.integer(data.get("ignore_index", IGNORE_INDEX), "ignore_index")
    if 0 <= ignore_index < len(class_names):
        raise f.error("ignore_index", f"{ignore_index} collides with a class id (0..{len(class_names) - 1})")
    label_map = _label_map(f, data["label_map"], len(class_names), ignore_index)
    return UserDatasetConfig(
        path=path,
        name=name,
        task=task,  # type: ignore[arg-type]
        root=_root(f, data, path),
        samples=samples,
        class_names=class_names,
        label_map=label_map,
        ignore_index=ignore_index,
        palette=_palette(f, data["palette"], len(class_names)) if "palette" in data else None,
        pseudo_rgb_bands=_rgb_bands(f, data["pseudo_rgb_bands"]) if "pseudo_rgb_bands" in data else None,
        wavelengths_nm=_wavelengths(f, data["wavelengths_nm"]) if "wavelengths_nm" in data else None,
        splits=_splits(f, data["splits"], task, {s.id for s in samples}) if "splits" in data else {},
        version=str(data["version"]) if "version" in data else _content_version(samples, label_map),
        **_optional_texts(f, data, path),
    )
