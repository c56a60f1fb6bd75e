"""Option parsing and merging: typos fail loudly, values are typed, hashes are canonical."""

from __future__ import annotations

import pytest

from hsbench.errors import ConfigError
from hsbench.options import config_hash, merge_options, parse_key_values


def test_key_values_are_parsed_as_yaml_scalars() -> None:
    parsed = parse_key_values(["lr=0.0005", "epochs=3", "amp=false", "input=pca=8", "name=runet", "grid=[1, 10]"])
    assert parsed == {"lr": 0.0005, "epochs": 3, "amp": False, "input": "pca=8", "name": "runet", "grid": [1, 10]}


def test_malformed_key_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_key_values(["lr"])


def test_unknown_option_names_the_closest_valid_key() -> None:
    with pytest.raises(ConfigError, match="did you mean epochs"):
        merge_options({"epochs": 1, "lr": 0.1}, {"epoch": 3}, owner="strategy 'x'")


def test_dotted_keys_set_one_nested_value_without_mutating_defaults() -> None:
    defaults = {"model_options": {"base_channels": 32, "depth": 4}}
    merged = merge_options(defaults, {"model_options.base_channels": 8}, owner="s")
    assert merged["model_options"] == {"base_channels": 8, "depth": 4}
    assert defaults["model_options"]["base_channels"] == 32


def test_config_hash_ignores_key_order_but_not_values() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
