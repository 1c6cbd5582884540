"""Fresh silver tables written in chunks, and silver/fee_list_net netted one partition at a time: the same
tables as in one piece, and as the one-statement netting of silver/fee_list."""
from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from pipelines.ingest import netting, nodes, silver, staging
from pipelines.ingest.inspection import IngestError

from . import drops

VISITS = [("M1", "S1", "P1", "H001"), ("M2", "S2", "P2", "H001"), ("M3", "S3", "P2", "P001")]


def _fee_rows(n: int) -> list[list[str]]:
    """`n` lines over three visits, two institutions and two years, with refunds naming their line (every
    7th) and refunds naming none (every 11th: netted from the latest line of that item and day)."""
    rows = []
    t0 = dt.datetime(2022, 12, 30, 8, 0, 0)
    for i in range(n):
        mdtrt, setl, psn, inst = VISITS[i % 3]
        t = t0 + dt.timedelta(hours=i // 3)          # the lines run into 2023
        item = f"X{i % 5}"
        cnt, amt, init = "2", "20.00", ""
        if i % 7 == 6:
            cnt, amt, init = "-1", "-10.00", f"L{i - 3}"      # names a line of the same visit, 1 hour before
            item = f"X{(i - 3) % 5}"
        elif i % 11 == 10:
            cnt, amt = "-1", "-10.00"
        rows.append([f"L{i}", mdtrt, setl, psn, inst, t.strftime("%Y-%m-%d %H:%M:%S"), item, "项目", "", "09",
                     "01", cnt, "10", amt, "", amt, "0", "A01", "D01", "0", init])
    return rows


@pytest.fixture
def drop(tmp_path):
    rows = _fee_rows(900)
    folder = drops.write_canonical_drop(tmp_path / "d1", {"fee_list": [drops.FEE_HEAD, *rows[:600]]})
    # the rest as JSON lines: read through Python batches into the staging table, not lazily
    with open(folder / "fee_list_part2.jsonl", "w", encoding="utf-8") as f:
        for r in rows[600:]:
            f.write(json.dumps(dict(zip(drops.FEE_HEAD, r)), ensure_ascii=False) + "\n")
    return folder


def _rows(lake, name):
    t = lake.read(name)
    return sorted(tuple(str(r[c]) for c in sorted(t.column_names)) for r in t.to_pylist())


def test_chunked_write_gives_the_same_silver(tmp_path, drop, load, lake, monkeypatch):
    from pipelines.storage import Lake

    whole = Lake(tmp_path / "whole")
    load(drop, lake=whole)
    calls = []
    real = silver.chunk_rows
    monkeypatch.setattr(silver, "chunk_rows", lambda e, m: calls.append(e) or (70 if e == "fee_list" else real(e, m)))
    rep = load(drop)
    assert rep.balanced and rep.rows_quarantined == 0
    assert "fee_list" in calls
    for name in ("silver/fee_list", "silver/fee_list_net"):
        assert _rows(lake, name) == _rows(whole, name), name
    # each partition got one file per chunk: many more files than in one piece
    assert len(lake.file_uris("silver/fee_list")) > 3 * len(whole.file_uris("silver/fee_list"))
    assert lake.read("silver/fee_list").num_rows == 900


def test_chunks_cover_every_row_once(drop, load, lake, monkeypatch):
    """Predicates of `Staging.chunks`: a large file by ranges of lines, small ones together, each row in one."""
    seen = {}

    def spy(ctx, staged, entity):
        preds, con = staged.chunks(entity, 100), ctx.con
        if entity == "fee_list":
            counts = [con.execute(f"SELECT count(*) FROM out_{entity} WHERE {p}").fetchall()[0][0] for p in preds]
            union = " OR ".join(f"({p})" for p in preds)
            seen.update(preds=preds, counts=counts,
                        total=con.execute(f"SELECT count(*) FROM out_{entity}").fetchall()[0][0],
                        covered=con.execute(f"SELECT count(*) FROM out_{entity} WHERE {union}").fetchall()[0][0])
        return real(ctx, staged, entity)

    real = silver.write_chunks
    monkeypatch.setattr(silver, "write_chunks", spy)
    load(drop)
    assert len(seen["preds"]) >= 9 and all(0 < c <= 100 for c in seen["counts"])
    assert sum(seen["counts"]) == seen["total"] == seen["covered"] == 900


@pytest.mark.parametrize("min_rows", [0, 10 ** 9], ids=["each-partition-alone", "all-through-one-copy"])
def test_netting_by_partition_equals_netting_the_whole(drop, load, lake, monkeypatch, min_rows):
    monkeypatch.setattr(netting, "NET_PARTITION_MIN_ROWS", min_rows)
    rep = load(drop)
    net, unmatched = nodes.net_fee_lines(duckdb.connect(), lake.read("silver/fee_list"))
    got = lake.read("silver/fee_list_net")
    assert got.num_rows == net.num_rows > 0
    key = lambda r: (r["mdtrt_id"], r["feedetl_sn"])  # noqa: E731
    want = {key(r): r for r in net.to_pylist()}
    assert {key(r): r for r in got.select(net.column_names).to_pylist()} == want
    # the partitions of the net table are those of the lines
    assert lake.partition_values("silver/fee_list_net", "period_year") == {"2022", "2023"}
    assert len([w for w in rep.warnings if "退费未找到原明细" in w]) == unmatched.num_rows


def test_bad_rows_of_a_lazily_staged_file_are_found_after_the_write(tmp_path, load, lake):
    rows = _fee_rows(40)
    rows[5][11] = "two"              # non-numeric cnt
    rows[9][5] = "2022-13-45 99:00"  # unparseable time
    rep = load(drops.write_canonical_drop(tmp_path / "d", {"fee_list": [drops.FEE_HEAD, *rows]}))
    fr = next(f for f in rep.files if f.entity == "fee_list")
    assert (fr.rows_read, fr.rows_loaded, fr.rows_quarantined) == (40, 38, 2)
    q = {r["line"]: r for r in lake.read("quarantine").to_pylist()}
    assert set(q) == {7, 11}
    assert q[7]["field"] == "cnt" and "two" in q[7]["reason"] and q[11]["field"] == "fee_ocur_time"
    assert lake.read("silver/fee_list").num_rows == 38


def test_chunk_rows_follow_the_memory_limit():
    width = silver.BUFFERED_BYTES_PER_COLUMN * len(nodes.silver_columns("fee_list"))
    assert silver.chunk_rows("fee_list", "3GB") == int(3 * 2 ** 30 * silver.CHUNK_MEMORY_SHARE / width)
    assert silver.chunk_rows("fee_list", "3GB") == 2 * silver.chunk_rows("fee_list", "1536MiB")
    assert silver.chunk_rows("fee_list", "1MB") == 100_000          # a floor
    with pytest.raises(IngestError, match="not a size"):
        silver.chunk_rows("fee_list", "lots")


@pytest.mark.parametrize("max_lazy", [0, 1])
def test_small_and_lazy_staging_load_the_same(tmp_path, load, monkeypatch, max_lazy):
    """A file staged lazily and one copied into the staging table (small files, or beyond MAX_LAZY_PARTS)
    give the same silver, quarantine and reconciliation; bad rows included."""
    from pipelines.storage import Lake

    rows = _fee_rows(60)
    rows[5][11] = "two"
    rows[40][13] = "12.x"
    folder = drops.write_canonical_drop(tmp_path / "d", {"fee_list": [drops.FEE_HEAD, *rows[:30]]})
    drops.write_csv(folder / "fee_list_part2.csv", [drops.FEE_HEAD, *rows[30:]])
    lazy = Lake(tmp_path / "lazy")
    rep_lazy = load(folder, lake=lazy)
    monkeypatch.setattr(staging, "MAX_LAZY_PARTS", max_lazy)
    copied = Lake(tmp_path / "copied")
    rep = load(folder, lake=copied)
    for name in ("silver/fee_list", "silver/fee_list_net"):
        assert _rows(copied, name) == _rows(lazy, name)
    strip = lambda t: sorted((r["file"], r["line"], r["field"], r["reason"], r["raw_row"]) for r in t.to_pylist())  # noqa: E731
    assert strip(copied.read("quarantine")) == strip(lazy.read("quarantine")) and len(strip(lazy.read("quarantine"))) == 2
    counts = lambda r: [(f.file, f.rows_read, f.rows_loaded, f.rows_quarantined) for f in r.files]  # noqa: E731
    assert counts(rep) == counts(rep_lazy) and rep.balanced
