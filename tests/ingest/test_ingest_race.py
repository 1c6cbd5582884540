"""Loads that race: a failing load beside a good one, and the same drop loaded twice at once."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.storage import Lake

from . import drops

pytestmark = pytest.mark.slow      # concurrent loads and runs of whole drops

ROOT = Path(__file__).parents[2]


def _ingest(drop: Path, lake: Path, fault: str | None = None, command: str = "ingest") -> subprocess.Popen:
    env = {**os.environ, "FUNDGUARD_ENV": "ci", "FUNDGUARD_LAKE_WAIT_S": "300"}
    env.pop("FUNDGUARD_FAULT", None)
    if fault:
        env["FUNDGUARD_FAULT"] = fault
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", command, "--landing", str(drop), "--lake",
                             str(lake)], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _counts(lake: Lake) -> dict:
    return {n: lake.read(n, columns=["_line"] if n.startswith("bronze") else None).num_rows
            for n in lake.tables("bronze") + lake.tables("silver")}


def test_a_failing_load_racing_a_good_one_leaves_the_good_rows_and_nothing_of_its_own(tmp_path):
    good = drops.write_canonical_drop(tmp_path / "good")
    bad = tmp_path / "bad"
    rows = [drops.FEE_HEAD] + [[f"X{i}", *drops.FEE_LIST[1][1:]] for i in range(50)]
    drops.write_csv(bad / "fee_list.csv", rows)
    lake = tmp_path / "lake"
    a = _ingest(bad, lake, fault="ingest.silver_done")     # dies after writing bronze and silver
    b = _ingest(good, lake)
    a.communicate(timeout=300)
    assert a.returncode == 137
    from pipelines.storage.lock import LOCK_DIR, LOCK_FILE
    holder = (lake / LOCK_DIR / LOCK_FILE)
    if holder.exists() and '"pid": %d' % a.pid in holder.read_text():
        holder.unlink()                                     # the dead writer's lease, broken now, not after stale_s
    out, err = b.communicate(timeout=300)
    assert b.returncode == 0, err[-2000:]
    c = _ingest(good, lake)                                 # the next start recovers whatever the dead load left
    c.communicate(timeout=300)
    lk = Lake(lake)
    sns = set(lk.read("silver/fee_list", columns=["feedetl_sn"]).column(0).to_pylist())
    assert sns == {r[0] for r in drops.FEE_LIST[1:]}, "the good load's rows survive, the dead one's are gone"
    assert not any(s.startswith("X") for s in lk.read("bronze/fee_list", columns=["feedetl_sn"]).column(0).to_pylist())
    ledger = lk.read("_meta/ingest_ledger").to_pylist()
    assert {r["drop_id"] for r in ledger} == {"good"}
    for r in ledger:                                        # each ledger entry has its rows in bronze
        b_rows = lk.read(f"bronze/{r['entity']}", columns=["_file_sha256"]).column(0).to_pylist()
        assert b_rows.count(r["file_sha256"]) == r["rows_read"]
    assert not list((lake / "_meta" / "journal").glob("*.json"))


def _gold(lake: Lake) -> list:
    t = lake.read("gold/suspects", columns=["suspect_id", "amount"])
    return sorted(zip(t.column(0).to_pylist(), map(str, t.column(1).to_pylist())))


def test_two_runs_of_the_same_drop_at_once_leave_the_lake_of_one_run(tmp_path):
    from pipelines.synth import generate
    drop = tmp_path / "landing"
    generate(drop, scale=0.02, seed=3)
    once = tmp_path / "once"
    p = _ingest(drop, once, command="run")
    p.communicate(timeout=600)
    assert p.returncode == 0
    twice = tmp_path / "twice"
    a, b = _ingest(drop, twice, command="run"), _ingest(drop, twice, command="run")
    ra, rb = a.communicate(timeout=600), b.communicate(timeout=600)
    assert a.returncode == 0 and b.returncode == 0, (ra[1][-1500:], rb[1][-1500:])
    assert "文件已入库" in ra[0] + rb[0]                    # the second found the first's files in the ledger
    assert _counts(Lake(twice)) == _counts(Lake(once))
    assert _gold(Lake(twice)) == _gold(Lake(once))
