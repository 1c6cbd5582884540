"""Crash safety: `fundguard run` killed (os._exit(137), as kill -9) at each named point of a load, then run again,
publishes the same list as a clean run, with nothing duplicated in bronze, silver or the quarantine."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow      # a `fundguard run` killed and re-run per fault point

from pipelines.ingest.faults import POINTS
from pipelines.storage import Lake

FUNDGUARD = [sys.executable, "-m", "pipelines.cli"]


def _run(drop: Path, lake: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "FUNDGUARD_ENV": "ci"}
    env.pop("FUNDGUARD_FAULT", None)
    if fault:
        env["FUNDGUARD_FAULT"] = fault
    return subprocess.run([*FUNDGUARD, "run", "--landing", str(drop), "--lake", str(lake), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1])


def _break_dead_lease(lake: Path) -> None:
    """The killed process's lease, broken now instead of after `lake_lock.stale_s` (what the next writer does
    then; tests/storage covers the staleness itself)."""
    from pipelines.storage.lock import LOCK_DIR, LOCK_FILE
    (lake / LOCK_DIR / LOCK_FILE).unlink(missing_ok=True)


def _state(lake_dir: Path) -> dict:
    """What a run leaves: the published list, and row counts of every bronze/silver table and the quarantine."""
    lake = Lake(lake_dir)
    gold = lake.read("gold/suspects", columns=["suspect_id", "amount"])
    out = {"gold": sorted(zip(gold.column("suspect_id").to_pylist(), map(str, gold.column("amount").to_pylist())))}
    for layer in ("bronze", "silver"):
        for name in lake.tables(layer):
            out[name] = lake.read(name, columns=["_line"] if layer == "bronze" else None).num_rows
    out["quarantine"] = lake.read("quarantine").num_rows if lake.exists("quarantine") else 0
    out["ledger"] = lake.read("_meta/ingest_ledger").num_rows
    return out


@pytest.fixture(scope="module")
def drop(tmp_path_factory) -> Path:
    from pipelines.synth import generate
    out = tmp_path_factory.mktemp("fault_drop") / "landing"
    generate(out, scale=0.02, seed=3)
    return out


@pytest.fixture(scope="module")
def clean(drop, tmp_path_factory) -> dict:
    lake = tmp_path_factory.mktemp("clean") / "lake"
    r = _run(drop, lake)
    assert r.returncode == 0, r.stderr
    return _state(lake)


def test_there_are_at_least_ten_named_points():
    assert len(POINTS) >= 10 and len(set(POINTS)) == len(POINTS)


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_each_point_the_rerun_publishes_the_clean_list(drop, clean, tmp_path, point):
    lake = tmp_path / "lake"
    killed = _run(drop, lake, fault=point)
    assert killed.returncode == 137, (point, killed.stdout[-500:], killed.stderr[-2000:])
    _break_dead_lease(lake)
    again = _run(drop, lake)
    assert again.returncode == 0, (point, again.stdout[-1000:], again.stderr[-2000:])
    assert _state(lake) == clean, point
    assert not list((lake / "_tmp").glob("fundguard-ingest-*")), "scratch of the killed load left behind"
    assert not list((lake / "_meta" / "journal").glob("*.json"))


def test_a_killed_load_leaves_its_scratch_under_the_lake_and_the_next_start_cleans_it(drop, tmp_path):
    lake = tmp_path / "lake"
    assert _run(drop, lake, fault="ingest.silver_done").returncode == 137
    _break_dead_lease(lake)
    left = list((lake / "_tmp").glob("fundguard-ingest-*"))
    assert left, "the scratch folder is under <lake>/_tmp, not the system temp"
    again = _run(drop, lake)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "died before its commit" in again.stderr
    assert not any(p.exists() for p in left)


def test_unknown_fault_point_is_an_error():
    from pipelines.ingest import faults
    with pytest.raises(ValueError):
        faults.point("no.such.point")

