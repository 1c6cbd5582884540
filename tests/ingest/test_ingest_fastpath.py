"""The DuckDB fast path (UTF-8 CSV read by DuckDB) numbers lines and quarantines short/long rows exactly like
the pyarrow path (the same rows sent as GBK go through pyarrow)."""
from __future__ import annotations

from . import drops
from .test_ingest_quarantine import H, fee


def _text(rows) -> str:
    return "\n".join(",".join(r) for r in rows)


ROWS = [
    ",".join(H),
    ",".join(fee("A1")),                    # line 2
    ",".join(fee("A2"))[:40],               # line 3: truncated
    ",".join(fee("A3")),                    # line 4
    ",".join(fee("A4")) + ",extra",         # line 5: one field too many
    "   ",                                  # line 6: blanks only: not a row
    ",".join(fee("A5", hilist_name="药,品")).replace("药,品", '"药,品"'),  # line 7: quoted comma
    ",".join(fee("A6")),                    # line 8
]


def _load_as(tmp_path, load, lake, name, encoding, rows, tail="\n"):
    d = drops.write_canonical_drop(tmp_path / name, {"setl": drops.SETL, "mdtrt": drops.MDTRT})
    (d / "fee_list.csv").write_bytes(("\n".join(rows) + tail).encode(encoding))
    rep = load(d, lake=lake)
    rows_q = lake.read("quarantine").to_pylist() if lake.exists("quarantine") else []
    q = {r["line"]: r for r in rows_q if r["drop_id"] == name}
    silver = lake.read("silver/fee_list").to_pylist()
    lines = {r["feedetl_sn"]: r["_line"] for r in silver if r["_drop"] == name}
    f = next(x for x in rep.files if x.file == "fee_list.csv")
    return f, q, lines, silver


def test_fast_path_lines_match_pyarrow(tmp_path, load):
    from pipelines.storage import Lake
    fast = _load_as(tmp_path, load, Lake(tmp_path / "l1"), "utf8", "utf-8", ROWS)
    slow = _load_as(tmp_path, load, Lake(tmp_path / "l2"), "gbk", "gbk", ROWS)
    for f, q, lines, _ in (fast, slow):
        assert lines == {"A1": 2, "A3": 4, "A5": 7, "A6": 8}
        assert set(q) == {3, 5}
        assert "truncated row" in q[3]["reason"] and "fields, expected" in q[5]["reason"]
        assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (6, 4, 2)
    assert [r["hilist_name"] for r in fast[3] if r["feedetl_sn"] == "A5"] == ["药,品"]
    assert fast[1][3]["reason"] == slow[1][3]["reason"] and fast[1][5]["reason"] == slow[1][5]["reason"]


def test_fast_path_blank_lines_and_no_final_newline(tmp_path, load):
    from pipelines.storage import Lake
    rows = ROWS[:2] + [""] + ROWS[3:5] + ["", ""] + ROWS[7:]
    f, q, lines, _ = _load_as(tmp_path, load, Lake(tmp_path / "l3"), "blank", "utf-8", rows, tail="")
    # header 1, A1 2, blank 3, A3 4, A4+extra 5, blank 6, blank 7, A6 8 (no newline at the end)
    assert lines == {"A1": 2, "A3": 4, "A6": 8}
    assert set(q) == {5}
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (4, 3, 1)
    g, q2, lines2, _ = _load_as(tmp_path, load, Lake(tmp_path / "l4"), "plain", "utf-8", ROWS[:2] + ROWS[3:4], tail="")
    assert lines2 == {"A1": 2, "A3": 3} and not q2 and g.rows_read == 2


def test_clean_file_goes_through_the_threaded_reader_like_the_slow_path(tmp_path, load):
    """A clean UTF-8 file (CRLF endings, quoted quotes and commas, gzip or not) is read in one pass by the
    threaded reader; rows, values and lines equal those of the same rows sent as GBK (slow path)."""
    import gzip

    from pipelines.storage import Lake
    rows = [",".join(H)] + [",".join(fee(f"A{i}")) for i in range(1, 6)]
    rows[3] = ",".join(fee("A3", hilist_name='X')).replace(",X,", ',"药""品,甲",')
    text = "\r\n".join(rows) + "\r\n"
    got = {}
    for name, enc, gz in (("plain", "utf-8", False), ("gz", "utf-8", True), ("gbk", "gbk", False)):
        d = drops.write_canonical_drop(tmp_path / name, {"setl": drops.SETL, "mdtrt": drops.MDTRT})
        data = text.encode(enc)
        if gz:
            (d / "fee_list.csv.gz").write_bytes(gzip.compress(data))
        else:
            (d / "fee_list.csv").write_bytes(data)
        lake = Lake(tmp_path / f"lake_{name}")
        rep = load(d, lake=lake)
        f = next(x for x in rep.files if x.entity == "fee_list")
        assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (5, 5, 0)
        bronze = lake.read("bronze/fee_list").to_pylist()
        assert sorted(r["_line"] for r in bronze) == [2, 3, 4, 5, 6]
        if enc == "utf-8":   # written by the threaded dataset writer (part-<tag>-<i>.parquet), not re-read
            assert all(u.endswith("-0.parquet") for u in lake.file_uris("bronze/fee_list"))
        silver = sorted(lake.read("silver/fee_list").to_pylist(), key=lambda r: r["feedetl_sn"])
        got[name] = [{k: v for k, v in r.items() if k not in ("_drop", "_file")} for r in silver]
    assert got["plain"] == got["gz"] == got["gbk"]
    assert [r["hilist_name"] for r in got["plain"] if r["feedetl_sn"] == "A3"] == ['药"品,甲']
