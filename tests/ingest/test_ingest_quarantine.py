"""(2) Bad rows land in quarantine with their file, line, field and reason; refused files load nothing."""
from __future__ import annotations

import csv
import gzip
import io
import json

import pytest

from pipelines.ingest import RefusedFile

from . import drops

H = drops.FEE_HEAD


def fee(sn, **over):
    base = dict(zip(H, ["F", "M1", "S1", "P1", "H001", "2022-03-01 09:00:00", "110900001", "床位费", "B01", "01",
                        "01", "1", "50", "50.00", "", "50.00", "0", "A01", "D01", "0", ""]))
    base.update(feedetl_sn=sn, **over)
    return [base[h] for h in H]


BAD_FEES = [
    H,
    fee("G1"),                                     # line 2: a good line
    fee("B1", cnt="abc"),                          # line 3: cnt not a number
    fee(""),                                       # line 4: key feedetl_sn missing
    fee("B3", fee_ocur_time="2022-13-45 99:00"),   # line 5: unparseable time
    fee("B4", med_chrgitm_type="99"),              # line 6: unknown code
    fee("D1", pric="50"),                          # line 7: key D1 sent with two different prices...
    fee("D1", pric="51"),                          # line 8: ...so both copies are quarantined
    fee("I1"),                                     # line 9: identical row sent twice...
    fee("I1"),                                     # line 10: ...counts once, loaded
    fee("B5", det_item_fee_sumamt="12,5x"),        # line 11: amount not a number
    fee("B6", mdtrt_id="M2", setl_id="S2", psn_no="P2", chrgitm_lv="3"),  # line 12: chrgitm_lv '3' -> '03', fine
]


def write_bad_drop(folder):
    drops.write_canonical_drop(folder, {"setl": drops.SETL, "mdtrt": drops.MDTRT})
    p = drops.write_csv(folder / "fee_list.csv", BAD_FEES)
    with open(p, "a", encoding="utf-8") as f:
        f.write("T1,M1,S1,P1,H001,2022-03-01")     # line 13: file cut in the middle of a row
    return folder


def test_bad_rows_are_quarantined_with_reason(tmp_path, lake, load):
    rep = load(write_bad_drop(tmp_path / "d"))
    q = {(r["file"], r["line"]): r for r in lake.read("quarantine").to_pylist()}
    fq = {line: r for (f, line), r in q.items() if f == "fee_list.csv"}
    assert set(fq) == {3, 4, 5, 6, 7, 8, 11, 13}
    assert fq[3]["field"] == "cnt" and "cnt: not a number 'abc'" in fq[3]["reason"] and "/ 数量不是数字" in fq[3]["reason"]
    assert fq[4]["field"] == "feedetl_sn" and "required field missing" in fq[4]["reason"]
    assert fq[5]["field"] == "fee_ocur_time" and "not a valid time" in fq[5]["reason"]
    assert fq[6]["field"] == "med_chrgitm_type" and "unknown code '99'" in fq[6]["reason"]
    assert fq[7]["field"] == "mdtrt_id,feedetl_sn" and "different values" in fq[7]["reason"]
    assert "fee_list.csv:7" in fq[8]["reason"] and "fee_list.csv:8" in fq[8]["reason"]
    assert fq[11]["field"] == "det_item_fee_sumamt" and "明细项目费用总额不是数字" in fq[11]["reason"]
    assert "truncated row" in fq[13]["reason"]
    assert json.loads(fq[3]["raw_row"])["cnt"] == "abc"
    assert all(r["entity"] == "fee_list" and r["load_id"] == rep.load_id for r in fq.values())

    f = next(x for x in rep.files if x.file == "fee_list.csv")
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate) == (12, 4, 8, 1)
    assert rep.balanced
    silver = {r["feedetl_sn"]: r for r in lake.read("silver/fee_list").to_pylist()}
    assert set(silver) == {"G1", "I1", "B6"} and silver["B6"]["chrgitm_lv"] == "03"
    # the stay M1 / settlement S1 stays loaded but is reported incomplete
    assert any("setl_id=S1" in w for w in rep.incomplete)
    assert any("mdtrt_id=M1" in w for w in rep.incomplete)
    stored = lake.read("_meta/load_report").to_pylist()
    assert {r["file"]: r["rows_quarantined"] for r in stored}["fee_list.csv"] == 8


def _refused(tmp_path, load, lake, name, content: bytes, match: str):
    d = drops.write_canonical_drop(tmp_path / "d", {"psn": drops.PSN})
    (d / name).write_bytes(content)
    with pytest.raises(RefusedFile, match=match) as exc:
        load(d)
    assert name in str(exc.value)
    assert not lake.root.exists() or lake.tables("bronze") == lake.tables("silver") == []


@pytest.mark.parametrize("name, content, match", [
    ("claims.csv", b"a,b\n1,2\n", "unknown entity"),                                   # not an entity of §2-3
    ("psn_part2.csv", b"psn_no,psn_name,gend,brdy\nP9,\x80\x80,1,1990-01-01\n", "cannot be decoded"),  # bad bytes
    ("psn.xls", b"\xd0\xcf\x11\xe0", "unknown format"),                                   # old Excel format
    ("psn-2.parquet", b"PAR1 not really", "unreadable parquet"),                          # corrupt parquet
    ("psn-3.csv.gz", gzip.compress(b"psn_no,gend,brdy\nP9,1,1990-01-01\n" * 50)[:40], "unreadable"),  # cut gzip
    ("psn-4.csv", b"psn_no,psn_name\nP9,x\n", "required column"),                         # no gend/brdy column
    ("psn-5.csv", "psn_no,gend,brdy\nP9,1,1990-01-01\n".encode("utf-16"), "UTF-16"),      # UTF-16 text
])
def test_refused_file_loads_nothing(tmp_path, load, lake, name, content, match):
    _refused(tmp_path, load, lake, name, content, match)


def test_conflicting_copies_are_named_in_the_drop_order(tmp_path, lake, load):
    """A key sent three times over two files with different values: every copy quarantined, and each reason
    and the incomplete visit name the copies in the drop's order (file, then line), whatever order DuckDB
    returns them in."""
    d = drops.write_canonical_drop(tmp_path / "d", {"setl": drops.SETL, "mdtrt": drops.MDTRT})
    drops.write_csv(d / "fee_list_part1.csv", [H, fee("G1"), fee("D1", pric="50"), fee("G2"), fee("D1", pric="52")])
    drops.write_csv(d / "fee_list_part2.csv", [H, fee("G3"), fee("D1", pric="51")])
    rep = load(d)
    q = lake.read("quarantine").to_pylist()
    assert sorted((r["file"], r["line"]) for r in q) == [("fee_list_part1.csv", 3), ("fee_list_part1.csv", 5),
                                                         ("fee_list_part2.csv", 3)]
    where = "fee_list_part1.csv:3, fee_list_part1.csv:5, fee_list_part2.csv:3"
    assert all(f"sent 3 times with different values (lines {where})" in r["reason"] for r in q)
    assert f"mdtrt mdtrt_id=M1: fee_list rows quarantined 被隔离: {where}" in rep.incomplete
    assert {r["feedetl_sn"] for r in lake.read("silver/fee_list").to_pylist()} == {"G1", "G2", "G3"}
    assert rep.balanced and rep.rows_quarantined == 3


#: a quoted field over two lines early on, one over three later: every later row starts further down
SPANNING = [
    H,
    fee("G1", hilist_name="床位\n费"),               # lines 2-3: a name with a line break
    fee("G2"),                                     # line 4
    fee("B1", cnt="abc"),                          # line 5: cnt not a number
    fee("G3", hilist_name="a\nb\nc"),              # lines 6-8
    fee("D1", pric="50"),                          # line 9: key D1 sent with two different prices...
    fee("D1", pric="51"),                          # line 10: ...both copies quarantined
    fee(""),                                       # line 11: key feedetl_sn missing
]


@pytest.mark.parametrize("name, encoding, eol", [
    ("fee_list.csv", "utf-8", "\n"),               # the fast path's format, left to the batched reader
    ("fee_list.csv.gz", "utf-8", "\r\n"),          # gzipped, CR LF
    ("fee_list.csv", "gbk", "\r\n"),               # GBK, as the messy twin writes it
])
def test_quarantine_names_the_physical_line_after_a_quoted_newline(tmp_path, lake, load, name, encoding, eol):
    """A row is quarantined at the line an editor shows it on, not at its record number (contract §1)."""
    d = drops.write_canonical_drop(tmp_path / "d", {"setl": drops.SETL, "mdtrt": drops.MDTRT})
    text = io.StringIO()
    csv.writer(text, lineterminator=eol).writerows([[v.replace("\n", eol) for v in r] for r in SPANNING])
    data = text.getvalue().encode(encoding)
    (d / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    rep = load(d)
    q = {r["line"]: r for r in lake.read("quarantine").to_pylist() if r["file"] == name}
    assert {line: r["field"] for line, r in q.items()} == {5: "cnt", 9: "mdtrt_id,feedetl_sn",
                                                           10: "mdtrt_id,feedetl_sn", 11: "feedetl_sn"}
    assert f"lines {name}:9, {name}:10" in q[9]["reason"]
    bronze = lake.read("bronze/fee_list").to_pylist()
    assert sorted(r["_line"] for r in bronze) == [2, 4, 5, 6, 9, 10, 11]
    assert {r["feedetl_sn"] for r in lake.read("silver/fee_list").to_pylist()} == {"G1", "G2", "G3"}
    f = rep.file(name)
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (7, 3, 4) and rep.balanced


def test_a_visit_with_a_fractional_stay_or_a_med_type_that_is_no_code_is_quarantined(tmp_path, lake, load):
    """ipt_days '1.5' was typed 2 (DuckDB rounds a cast to BIGINT); med_type 'abc' or '1' was loaded and the stay
    read as an outpatient visit. National and local med_type codes are 2 to 6 digits (9901, 140104 load)."""
    rows = [drops.MDTRT[0]] + [[r[0] + x, *r[1:]] for r in drops.MDTRT[1:2] for x in "ABCDE"]
    rows[1][6] = "1.5"                 # MA: ipt_days 1.5
    rows[2][3] = "abc"                 # MB: med_type abc
    rows[3][3] = "1"                   # MC: med_type 1
    rows[4][3] = "140104"              # MD: a local code, fine
    rows[5][6] = "4.0"                 # ME: an integral numeral, fine
    d = tmp_path / "d"
    drops.write_csv(d / "mdtrt.csv", rows)
    load(d)
    q = {r["line"]: r for r in lake.read("quarantine").to_pylist() if r["file"] == "mdtrt.csv"}
    assert set(q) == {2, 3, 4}
    assert q[2]["field"] == "ipt_days" and "not an integer '1.5'" in q[2]["reason"]
    assert q[3]["field"] == "med_type" and "not a code of 2 to 6 digits 'abc'" in q[3]["reason"]
    assert q[4]["field"] == "med_type"
    loaded = {r["mdtrt_id"]: r for r in lake.read("silver/mdtrt").to_pylist()}
    assert loaded["M1D"]["med_type"] == "140104" and loaded["M1E"]["ipt_days"] == 4
