"""In-drop duplicates found part by part: a drop whose keys do not fit the load's memory at once is checked in
parts split by a hash of the key (every copy of a key in the same part); the load is the same as in one pass."""
from __future__ import annotations

import json

import pytest

from pipelines.contract import QUARANTINE
from pipelines.ingest import dedup, nodes

from . import drops
from .test_ingest_chunks import _fee_rows, _rows


@pytest.fixture
def dup_drop(tmp_path):
    """900 lines: 30 sent again identically (in the other file) and 5 sent again with another ordering physician."""
    rows = _fee_rows(900)
    again = [list(r) for r in rows[100:130]]
    conflict = [list(r) for r in rows[200:205]]
    for r in conflict:
        r[drops.FEE_HEAD.index("bilg_dr_codg")] = "D99"
    folder = drops.write_canonical_drop(tmp_path / "d1", {"fee_list": [drops.FEE_HEAD, *rows[:600]]})
    with open(folder / "fee_list_part2.jsonl", "w", encoding="utf-8") as f:
        for r in rows[600:] + again + conflict:
            f.write(json.dumps(dict(zip(drops.FEE_HEAD, r)), ensure_ascii=False) + "\n")
    return folder


def test_key_passes_follow_the_rows_and_the_memory_limit():
    assert dedup.key_passes(1000, "3GB") == 1
    per_pass = int(3 * 2**30 * dedup.KEY_MEMORY_SHARE) // dedup.KEY_BYTES
    assert dedup.key_passes(per_pass, "3GB") == 1
    assert dedup.key_passes(per_pass + 1, "3GB") == 2
    assert dedup.key_passes(104_000_000, "3GB") == 3
    assert dedup.key_passes(104_000_000, "1536MiB") == 6


def test_key_parts_cover_every_key_once():
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 'M' || (i % 7) AS mdtrt_id, 'L' || i AS feedetl_sn FROM range(5000) r(i)")
    parts = nodes.key_parts("fee_list", 4)
    counts = [con.execute(f"SELECT count(*) FROM t WHERE {p}").fetchall()[0][0] for p in parts]
    assert len(parts) == 4 and sum(counts) == 5000 and min(counts) > 0
    assert nodes.key_parts("fee_list", 1) == ["TRUE"]


def test_duplicates_checked_in_parts_load_as_in_one_pass(tmp_path, dup_drop, load, monkeypatch):
    from pipelines.storage import Lake

    one = Lake(tmp_path / "one")
    report_one = load(dup_drop, lake=one)
    parts = []
    real = nodes.key_parts
    monkeypatch.setattr(dedup, "key_passes", lambda rows, limit: 5)
    monkeypatch.setattr(nodes, "key_parts", lambda e, n: parts.append((e, n)) or real(e, n))
    several = Lake(tmp_path / "several")
    report = load(dup_drop, lake=several)
    assert ("fee_list", 5) in parts
    for name in ("silver/fee_list", "silver/fee_list_net"):
        assert _rows(several, name) == _rows(one, name)
    assert several.read("silver/fee_list").num_rows == 900 - 5          # the conflicting keys quarantined
    q = several.read(QUARANTINE).to_pylist()
    assert sorted((r["line"], r["file"]) for r in q) == sorted((r["line"], r["file"]) for r in one.read(QUARANTINE).to_pylist())
    assert sum(1 for r in q if "sent 2 times" in r["reason"]) == 10
    assert report.balanced and report_one.balanced
