"""The one name rule: every user-given name that becomes part of a path goes through this module.

Two ways through, chosen by who owns the name:
- :func:`check_name` for names the user types and can change (suite, study, run id, dataset names): a name is one
  path component of letters, digits and ``_ . , = + -``, starting with a letter or digit, at most 128
  characters. Anything else (``/``, ``..``, a leading dot, spaces, control characters) is one error line.
- :func:`path_component` for names that come with data and cannot be renamed (sample ids of published
  datasets, class labels): encoded reversibly (``%XX`` for every other byte, a leading dot included), so the
  result is always one harmless component and :func:`name_from_component` gives the name back.
:func:`inside` is the last guard before writing or deleting: the path, symlinks resolved, must lie inside
the folder the user chose.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

from hsbench.errors import ConfigError

__all__ = ["MAX_NAME_LENGTH", "check_name", "path_component", "name_from_component", "inside"]

MAX_NAME_LENGTH = 128
MAX_COMPONENT_BYTES = 240  # file systems allow 255 bytes per name; the rest is room for suffixes like ".png"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.,=+-]*")
_SAFE_CHARS = "_.,=+-"  # kept as they are by path_component (letters and digits always are)


def check_name(name: object, what: str) -> str:
    """Return ``name`` when it is a safe single path component; otherwise raise one :class:`ConfigError` line.

    Args:
        name: the user's value (anything; non-strings are rejected).
        what: what the name names, for the message ("suite name", "study name", ...).
    """
    if not isinstance(name, str):
        raise ConfigError(f"{what} must be text, got {type(name).__name__} {name!r}")
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"{what} {name!r} cannot be used: it becomes a folder or file name, so use 1-{MAX_NAME_LENGTH} letters, "
            f"digits and '{_SAFE_CHARS}', starting with a letter or digit, with no '..' (e.g. "
            f"{_suggest(name)!r})"
        )
    return name


def _suggest(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", name).replace("..", "_").strip("._,=+-")
    return cleaned[:MAX_NAME_LENGTH] or "my_name"


def path_component(name: str) -> str:
    """Encode any name as one safe path component, reversibly (see :func:`name_from_component`).

    A name whose encoding would not fit in a file name (over 240 bytes) is a :class:`ConfigError` instead.

    Names that already pass :func:`check_name` come back unchanged, so ordinary sample ids keep their file names.
    """
    if len(name) <= MAX_NAME_LENGTH and _NAME.fullmatch(name) and ".." not in name:
        return name
    encoded = urllib.parse.quote(name, safe=_SAFE_CHARS)
    encoded = encoded.replace(".", "%2E") if encoded.startswith(".") or ".." in encoded else encoded
    if not encoded:
        return "%"  # the empty name still needs a file name; a lone "%" is never the encoding of a real name
    if len(encoded.encode()) > MAX_COMPONENT_BYTES:
        raise ConfigError(f"name {name[:40]!r}... is too long to become a file name ({len(encoded.encode())} bytes "
                          f"once encoded, at most {MAX_COMPONENT_BYTES}); shorten it")
    return encoded


def name_from_component(component: str) -> str:
    """The inverse of :func:`path_component`."""
    return "" if component == "%" else urllib.parse.unquote(component)


def inside(root: Path, path: Path, what: str = "output") -> Path:
    """Return ``path`` resolved, after checking that it lies inside ``root`` (both with symlinks resolved).

    Raises:
        ConfigError: the path (or a symlink on the way) leads outside ``root``.
    """
    root_resolved = Path(root).resolve()
    resolved = Path(path).resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise ConfigError(f"{what} {path} resolves to {resolved}, outside {root_resolved}; refusing to write there "
                          "(a symlink or a '..' in a name leads out of the folder you chose)")
    return resolved
