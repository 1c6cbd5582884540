"""pipelines/storage/lock.py: one writer per lake, a clear refusal naming the holder, stale leases broken."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.storage import Lake
from pipelines.storage.lock import LOCK_DIR, LOCK_FILE, LakeBusy, LeasePolicy, lease

HOLD = """
import sys, time
from pipelines.storage.lock import lease, LeasePolicy
with lease(sys.argv[1], "holder-under-test", LeasePolicy(heartbeat_s=0.2)):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_in_another_process(root: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_waits_then_names_the_holder(tmp_path):
    proc = hold_in_another_process(tmp_path, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(LakeBusy) as busy:
            with lease(tmp_path, "second", LeasePolicy(wait_s=0.6, stale_s=60)):
                pass
        assert time.monotonic() - t0 >= 0.6                      # it waited the bound
        assert busy.value.holder["owner"] == "holder-under-test" and busy.value.holder["pid"] == proc.pid
        assert "holder-under-test" in str(busy.value) and str(proc.pid) in str(busy.value)
    finally:
        proc.kill()
        proc.wait()


def test_the_second_writer_gets_the_lake_when_the_first_is_done(tmp_path):
    proc = hold_in_another_process(tmp_path, 0.5)
    with lease(tmp_path, "second", LeasePolicy(wait_s=20, stale_s=60)) as mine:
        assert json.loads((tmp_path / LOCK_DIR / LOCK_FILE).read_text())["owner"] == "second" == mine["owner"]
    proc.wait()
    assert not (tmp_path / LOCK_DIR / LOCK_FILE).exists()        # released


def test_a_killed_holder_is_broken_after_the_stale_bound(tmp_path):
    proc = hold_in_another_process(tmp_path, 30)
    proc.kill()                                                 # kill -9: no release, no more heartbeat
    proc.wait()
    path = tmp_path / LOCK_DIR / LOCK_FILE
    old = time.time() - 5
    os.utime(path, (old, old))
    said = []
    with lease(tmp_path, "after-crash", LeasePolicy(wait_s=5, stale_s=2), log=said.append) as mine:
        assert mine["owner"] == "after-crash"
    assert said and "holder-under-test" in said[0] and "broken" in said[0]


def test_a_live_holder_keeps_its_lease_by_heartbeat(tmp_path):
    """A holder busy for longer than the stale bound is not broken: its heartbeat renews the lease."""
    proc = hold_in_another_process(tmp_path, 30)
    try:
        time.sleep(1.5)
        with pytest.raises(LakeBusy):
            with lease(tmp_path, "second", LeasePolicy(wait_s=1.5, stale_s=1.0)):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_the_lease_is_reentrant_within_a_process(tmp_path):
    lake = Lake(tmp_path)
    with lake.writer("outer", LeasePolicy(wait_s=0.2)):
        with lake.writer("inner", LeasePolicy(wait_s=0.2)) as inner:
            assert inner["owner"] == "outer"
        assert (tmp_path / LOCK_DIR / LOCK_FILE).exists()        # the inner exit keeps the outer's lease
    assert not (tmp_path / LOCK_DIR / LOCK_FILE).exists()


def test_a_busy_lake_exits_3_naming_the_holder(tmp_path, monkeypatch, capsys):
    from pipelines import config

    lake = Lake(tmp_path / "lake")
    (tmp_path / "lake").mkdir()
    monkeypatch.setenv("FUNDGUARD_LAKE_WAIT_S", "0.5")
    config._load.cache_clear()
    proc = hold_in_another_process(lake.root, 30)
    try:
        drop = tmp_path / "drop"
        drop.mkdir()
        (drop / "fixmedins.csv").write_text("fixmedins_code,fixmedins_name,hosp_lv\nH1,A,05\n", encoding="utf-8")
        assert main(["ingest", "--landing", str(drop), "--lake", str(lake.root), "--no-progress"]) == 3
        err = capsys.readouterr().err
        assert "lake busy" in err and "holder-under-test" in err and str(proc.pid) in err
        assert not lake.exists("silver/fixmedins")               # nothing was written
    finally:
        proc.kill()
        proc.wait()
        config._load.cache_clear()
