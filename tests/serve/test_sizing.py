"""`serve.processes: auto`: one process a core as far as memory holds each one's warm lake twice."""
from __future__ import annotations

import pytest

from pipelines import config
from pipelines.app.serve import rule_program, serve_processes
from pipelines.catalog import load_catalog
from pipelines.serve import sizing
from pipelines.storage import Lake

GB = 2**30


@pytest.mark.parametrize("cores, available, per, expected", [
    (2, 20 * GB, 4 * GB, 2),        # the cores bound it
    (8, 20 * GB, 4 * GB, 5),        # the memory bounds it
    (2, 6 * GB, 4 * GB, 1),         # room for one
    (4, 1 * GB, 4 * GB, 1),         # never fewer than one: the load itself will say if it does not fit
])
def test_one_process_a_core_as_far_as_memory_holds(cores, available, per, expected):
    assert sizing.processes_for(cores, available, per) == expected


def test_a_process_peak_holds_two_warm_lakes():
    assert sizing.process_peak(0) == sizing.PROCESS_BASE
    assert sizing.process_peak(GB) == sizing.PROCESS_BASE + 2 * int(GB * sizing.HELD_PER_UNCOMPRESSED)


def _columns():
    return {s: set(c) for s, c in rule_program(load_catalog(), "").columns.items()}


def test_held_bytes_grow_with_the_columns_held(sample_lake):
    rules = sizing.held_bytes(sample_lake, _columns())
    lookups_only = sizing.held_bytes(sample_lake, {})
    assert 0 < lookups_only < rules
    unheld = {"_file", "_line", "_drop", "hilist_name"} - _columns()["fee_list"]
    assert unheld
    wider = sizing.held_bytes(sample_lake, {**_columns(), "fee_list": _columns()["fee_list"] | unheld})
    assert wider > rules


def test_an_empty_lake_holds_nothing(tmp_path):
    assert sizing.held_bytes(Lake(tmp_path), _columns()) == 0


def test_a_container_limit_below_the_host_memory_bounds_it(tmp_path, monkeypatch):
    (tmp_path / "max").write_text(f"{3 * GB}\n")
    (tmp_path / "current").write_text(f"{1 * GB}\n")
    monkeypatch.setattr(sizing, "CGROUP_MAX", tmp_path / "max")
    monkeypatch.setattr(sizing, "CGROUP_USED", tmp_path / "current")
    assert sizing.available_memory() <= 2 * GB
    (tmp_path / "max").write_text("max\n")
    assert sizing.available_memory() > 0


@pytest.mark.parametrize("given, expected", [("3", 3), (1, 1)])
def test_a_number_is_taken_as_it_is(sample_lake, given, expected):
    assert serve_processes({"serve": {"processes": given}}, sample_lake)[0] == expected


@pytest.mark.parametrize("given", ["0", "two", "-1", "1.5"])
def test_anything_else_is_refused_naming_the_setting(sample_lake, given):
    with pytest.raises(config.ConfigError, match="serve.processes"):
        serve_processes({"serve": {"processes": given}}, sample_lake)


def test_auto_is_the_default_and_says_why(sample_lake):
    assert str(config.load()["serve"]["processes"]) == "auto"
    n, why = serve_processes({"serve": {"processes": "auto"}}, sample_lake)
    assert 1 <= n <= sizing.cores()
    assert f"{n} process(es)" in why and "GB available" in why
