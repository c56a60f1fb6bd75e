"""Cluster resource requests: every form parses to the right numbers, every malformed value fails naming its
owner, and a suite's ``resources`` reach its cells without touching their ids."""

from __future__ import annotations

import dataclasses

import pytest

from hsbench.errors import ConfigError
from hsbench.executors.resources import RESOURCE_KEYS, Resources, parse_resources
from hsbench.suite import parse_suite

SVM = {"model": "svm", "svm_c_grid": [10.0], "svm_max_pixels": 300}
OWNER = "suite s.yaml resources"


def _tiny_suite(**overrides) -> dict:
    suite = {
        "name": "tiny",
        "seeds": [0, 1],
        "splits": ["fraction=0.5", "official"],
        "datasets": ["tiny_segmentation"],
        "strategies": [
            {"strategy": "in_domain", "label": "svm-c10", "options": SVM},
            {"strategy": "in_domain", "label": "svm-c0.1", "options": {**SVM, "svm_c_grid": [0.1]}},
        ],
    }
    suite.update(overrides)
    return suite


def test_every_key_parses_and_keeps_its_value() -> None:
    res = parse_resources({"cpus": 4, "gpus": 0, "mem": "16g", "time": "2:00:00", "partition": "gpu-a100",
                           "account": "lab_1.x"}, OWNER)
    assert res == Resources(cpus=4, gpus=0, mem="16G", time="2:00:00", partition="gpu-a100", account="lab_1.x")
    assert RESOURCE_KEYS == ("cpus", "gpus", "mem", "time", "partition", "account")


def test_missing_or_none_means_nothing_asked() -> None:
    assert parse_resources(None, OWNER) == Resources()
    assert parse_resources({}, OWNER) == Resources()
    # the CLI builds the dict with None for every flag not given
    assert parse_resources({key: None for key in RESOURCE_KEYS} | {"gpus": 2}, OWNER) == Resources(gpus=2)


@pytest.mark.parametrize(("mem", "stored", "mem_bytes", "mem_mib"), [
    ("16G", "16G", 16 * 2**30, 16 * 1024),
    ("512m", "512M", 512 * 2**20, 512),
    ("2048", "2048", 2048 * 2**20, 2048),          # a bare number is MiB, like Slurm's --mem
    (2048, "2048", 2048 * 2**20, 2048),            # YAML reads `mem: 2048` as an int
    ("1.5G", "1.5G", 3 * 2**29, 1536),
    ("1T", "1T", 2**40, 2**20),
    ("100K", "100K", 102400, 1),                    # MiB rounded up, never down to 0
    ("0.5", "0.5", 2**19, 1),
])
def test_mem_forms_convert_in_binary_units(mem, stored, mem_bytes, mem_mib) -> None:
    res = parse_resources({"mem": mem}, OWNER)
    assert (res.mem, res.mem_bytes, res.mem_mib) == (stored, mem_bytes, mem_mib)


@pytest.mark.parametrize(("time", "minutes"), [
    ("90", 90),
    ("2:00:00", 120),
    ("0:01:01", 2),                                 # rounded up: the job must not be killed a second early
    ("1-02:00:00", 1560),
    ("0-00:00:30", 1),
    ("36:00:00", 2160),
])
def test_time_forms_convert_to_minutes(time, minutes) -> None:
    res = parse_resources({"time": time}, OWNER)
    assert res.time == time
    assert res.time_minutes == minutes


def test_unset_fields_convert_to_none() -> None:
    assert (Resources().mem_bytes, Resources().mem_mib, Resources().time_minutes) == (None, None, None)


def test_unknown_key_names_owner_and_closest_key() -> None:
    with pytest.raises(ConfigError, match=r"suite s\.yaml resources has unknown key 'gpu' \(did you mean 'gpus'"):
        parse_resources({"gpu": 1}, OWNER)
    with pytest.raises(ConfigError, match="did you mean 'mem'"):
        parse_resources({"memory": "4G"}, OWNER)


@pytest.mark.parametrize(("raw", "pattern"), [
    ({"cpus": 0}, r"cpus must be a whole number >= 1, got 0"),
    ({"cpus": -2}, r"cpus must be a whole number >= 1, got -2"),
    ({"cpus": 2.0}, r"cpus must be a whole number >= 1, got 2\.0"),
    ({"cpus": "4"}, r"cpus must be a whole number >= 1, got '4'"),
    ({"gpus": True}, r"gpus must be a whole number >= 0, got True"),   # bool is an int in Python
    ({"gpus": -1}, r"gpus must be a whole number >= 0, got -1"),
    ({"gpus": 0.5}, r"gpus must be a whole number >= 0, got 0\.5"),
    ({"mem": "16GB"}, r"mem must be a positive size such as \"16G\".*got '16GB'"),
    ({"mem": "16 G"}, r"mem must be .*got '16 G'"),
    ({"mem": "-1G"}, r"mem must be .*got '-1G'"),
    ({"mem": "0"}, r"mem must be .*got '0'"),
    ({"mem": "4P"}, r"mem must be .*got '4P'"),
    ({"mem": True}, r"mem must be .*got True"),
    ({"time": "0"}, r"time must be minutes .*got '0'"),
    ({"time": "1:60:00"}, r"time must be minutes .*got '1:60:00'"),
    ({"time": "1:00:60"}, r"time must be .*got '1:00:60'"),
    ({"time": "1-24:00:00"}, r"time must be .*got '1-24:00:00'"),
    ({"time": "2h"}, r"time must be .*\"H:MM:SS\".*got '2h'"),
    ({"time": "1:30"}, r"time must be .*got '1:30'"),
    ({"time": 7200}, r"time must be a quoted string.*got the number 7200"),  # what YAML makes of 2:00:00
    ({"partition": ""}, r"partition must be a non-empty name .*got ''"),
    ({"partition": "gpu;rm -rf"}, r"partition must be .*got 'gpu;rm -rf'"),
    ({"account": 3}, r"account must be .*got 3"),
])
def test_malformed_values_fail_naming_owner_key_value_and_form(raw, pattern) -> None:
    with pytest.raises(ConfigError, match=r"^suite s\.yaml resources: " + pattern):
        parse_resources(raw, OWNER)


def test_not_a_mapping_fails() -> None:
    with pytest.raises(ConfigError, match=r"suite s\.yaml resources: resources must be a mapping .*got \[4\]"):
        parse_resources([4], OWNER)


def test_merged_override_wins_where_set() -> None:
    base = Resources(cpus=2, gpus=0, mem="8G", partition="cpu")
    override = Resources(gpus=1, mem="16G", account="lab")
    assert base.merged(override) == Resources(cpus=2, gpus=1, mem="16G", partition="cpu", account="lab")
    assert base.merged(Resources()) == base
    assert Resources().merged(base) == base
    assert base.merged(Resources(gpus=0)).gpus == 0  # 0 is a value, not "unset"


def test_describe_lists_only_set_fields_in_key_order() -> None:
    res = Resources(partition="gpu", time="2:00:00", mem="16G", gpus=1, cpus=2)
    assert res.describe() == "cpus=2 gpus=1 mem=16G time=2:00:00 partition=gpu"
    assert Resources(gpus=0, account="lab").describe() == "gpus=0 account=lab"
    assert Resources().describe() == "defaults"


def test_suite_and_dataset_resources_merge_per_cell(tiny_registered) -> None:
    raw = _tiny_suite(
        datasets=[{"name": "tiny_segmentation", "resources": {"gpus": 1, "mem": "32G"}}],
        resources={"cpus": 4, "mem": "8G", "time": "1:00:00", "partition": "gpu"},
    )
    suite = parse_suite(raw, source="s.yaml")
    assert suite.resources == Resources(cpus=4, mem="8G", time="1:00:00", partition="gpu")
    assert suite.datasets[0].resources == Resources(gpus=1, mem="32G")
    cells = suite.cells()
    assert cells
    for cell in cells:  # the dataset's keys win, the suite's fill the rest
        assert suite.resources_of(cell) == Resources(cpus=4, gpus=1, mem="32G", time="1:00:00", partition="gpu")


def test_suite_without_resources_asks_for_defaults(tiny_registered) -> None:
    suite = parse_suite(_tiny_suite())
    assert suite.resources == Resources()
    assert suite.resources_of(suite.cells()[0]).describe() == "defaults"


def test_resources_of_a_foreign_cell_fails(tiny_registered) -> None:
    suite = parse_suite(_tiny_suite())
    foreign = dataclasses.replace(suite.cells()[0], dataset="not_in_suite")
    with pytest.raises(ValueError, match="dataset 'not_in_suite'.*not a cell of suite tiny"):
        suite.resources_of(foreign)


def test_resources_do_not_change_cells(tiny_registered) -> None:
    plain = parse_suite(_tiny_suite()).cells()
    with_resources = parse_suite(_tiny_suite(
        datasets=[{"name": "tiny_segmentation", "resources": {"gpus": 1, "time": "30"}}],
        resources={"cpus": 8, "mem": "64G", "account": "lab"},
    )).cells()
    assert len(plain) == 8
    assert [c.cell_id for c in with_resources] == [c.cell_id for c in plain]
    assert with_resources == plain  # nothing else about a cell (options, order, labels) moves either


def test_bad_resources_in_a_suite_fail_when_it_loads(tiny_registered) -> None:
    with pytest.raises(ConfigError, match=r"suite s\.yaml resources has unknown key 'cpu' \(did you mean 'cpus'"):
        parse_suite(_tiny_suite(resources={"cpu": 2}), source="s.yaml")
    with pytest.raises(ConfigError, match=r"suite s\.yaml dataset 'tiny_segmentation' resources: gpus must be"):
        parse_suite(_tiny_suite(datasets=[{"name": "tiny_segmentation", "resources": {"gpus": True}}]),
                    source="s.yaml")
