"""The one name rule: user-typed names are checked, data-given names are encoded reversibly, writes stay inside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hsbench.errors import ConfigError
from hsbench.names import check_name, inside, name_from_component, path_component


@pytest.mark.parametrize("name", ["quick", "unet_drive", "fraction=0.05", "kshot=5,disjoint", "a.b-c+d", "7"])
def test_ordinary_names_pass_unchanged(name: str) -> None:
    assert check_name(name, "suite name") == name
    assert path_component(name) == name


@pytest.mark.parametrize("name", ["../../../../elsewhere/escape", "a/b", "..", ".", ".hidden", "a..b", "", " x",
                                  "x\n", "a\\b", "x" * 129, "-rf", "nul\x00"])
def test_unsafe_names_are_one_line_errors_with_a_suggestion(name: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        check_name(name, "suite name")
    message = str(excinfo.value)
    assert "suite name" in message and "e.g." in message and "\n" not in message
    suggestion = message.rsplit("e.g. ", 1)[1].strip("')(")
    assert check_name(suggestion, "suggestion") == suggestion  # the suggestion itself is usable


@pytest.mark.parametrize("name", ["../../../x", "a/b", ".", "..", ".hidden", "a..b", "", "%41", "%", "sp ace",
                                  "ünïcode", "x" * 200, "c:\\win", "nul\x00"])
def test_data_names_encode_to_one_harmless_component_and_back(name: str, tmp_path: Path) -> None:
    component = path_component(name)
    assert "/" not in component and "\\" not in component and "\x00" not in component
    assert component not in ("", ".", "..") and not component.startswith(".")
    assert name_from_component(component) == name
    target = tmp_path / component
    assert target.parent == tmp_path
    target.write_text("x")  # really one file inside the folder
    assert inside(tmp_path, target) == target.resolve()


def test_distinct_names_never_share_a_component() -> None:
    names = ["a/b", "a%2Fb", "a_b", "", "%", "%25", ".x", "%2Ex"]
    assert len({path_component(n) for n in names}) == len(names)


def test_inside_refuses_dotdot_and_symlinks_out_of_the_root(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir(), elsewhere.mkdir()
    assert inside(root, root / "sub" / "file.txt") == (root / "sub" / "file.txt").resolve()
    with pytest.raises(ConfigError, match="outside"):
        inside(root, root / ".." / "elsewhere" / "x")
    os.symlink(elsewhere, root / "link")
    with pytest.raises(ConfigError, match="symlink"):
        inside(root, root / "link" / "x")


def test_a_name_too_long_for_a_file_name_is_an_error_not_a_crash() -> None:
    with pytest.raises(ConfigError, match="too long"):
        path_component("é" * 100)  # 600 bytes once percent-encoded
