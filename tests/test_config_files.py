"""Files a user hands in are data: YAML/JSON are parsed safely, Python configs need explicit trust."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsbench.config_files import did_you_mean, read_config_file, reject_unknown_keys
from hsbench.errors import ConfigError

PAYLOAD = 'options: {note: !!python/object/apply:os.system ["echo X > {marker}"]}\n'


def test_yaml_tags_that_would_run_code_are_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    config = tmp_path / "run.yaml"
    config.write_text(PAYLOAD.replace("{marker}", str(marker)))
    with pytest.raises(ConfigError, match="not valid YAML") as excinfo:
        read_config_file(config, what="run config")
    assert not marker.exists()
    assert "\n" not in str(excinfo.value) and str(config) in str(excinfo.value)


def test_python_config_is_refused_without_trust_and_read_with_it(tmp_path: Path) -> None:
    marker = tmp_path / "RAN"
    config = tmp_path / "run.py"
    config.write_text(f"open({str(marker)!r}, 'w').write('x')\ndataset = 'synthetic_drive'\n")
    with pytest.raises(ConfigError, match="--trust-config"):
        read_config_file(config, what="run config")
    assert not marker.exists()
    assert read_config_file(config, what="run config", trust_code=True)["dataset"] == "synthetic_drive"
    assert marker.exists()  # trusted: it really is code, which is why it needs the flag


@pytest.mark.parametrize(("text", "suffix", "message"), [
    ("[1, 2]", ".yaml", "must be a mapping"),
    ("{bad json", ".json", "not valid JSON"),
    ("a: [unclosed", ".yml", "not valid YAML"),
])
def test_malformed_files_are_one_error_naming_the_file(tmp_path: Path, text: str, suffix: str, message: str) -> None:
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as excinfo:
        read_config_file(path)
    assert str(path) in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert read_config_file(tmp_path / "empty.yaml") == {}


def test_unknown_keys_get_did_you_mean() -> None:
    assert "did you mean 'strategy'" in did_you_mean("stratgy", ["strategy", "seeds"])
    assert did_you_mean("zzz", ["strategy"]) == ""
    with pytest.raises(ConfigError, match=r"unknown key 'sedes' \(did you mean 'seeds'\?\); allowed: name, seeds"):
        reject_unknown_keys({"sedes": 1, "name": "x"}, {"name", "seeds"}, "suite s.yaml")
    reject_unknown_keys({"name": "x"}, {"name", "seeds"}, "suite s.yaml")  # known keys pass
