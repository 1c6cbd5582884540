"""(4) Refund netting (contract §4) as one SQL over silver/fee_list rows."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import duckdb
import pyarrow as pa

from pipelines.ingest import nodes
from pipelines.storage import sql_ident

from . import drops

COLS = ["feedetl_sn", "mdtrt_id", "hilist_code", "fee_ocur_time", "cnt", "det_item_fee_sumamt", "inscp_scp_amt",
        "fulamt_ownpay_amt", "init_feedetl_sn", "fixmedins_code"]
T = lambda s: dt.datetime.fromisoformat(s)  # noqa: E731

LINES = [
    # sn,  visit, item, time,                  cnt,      amount,   inscp,   ownpay, init
    ("A1", "V1", "X", T("2022-03-01 09:00"), D("3"), D("30.00"), D("30.00"), None, None),   # 3 units, 1 refunded by A2
    ("A2", "V1", "X", T("2022-03-02 09:00"), D("-1"), D("-10.00"), D("-10.00"), None, "A1"),  # refund naming A1
    ("B1", "V1", "Y", T("2022-03-01 08:00"), D("1"), D("5.00"), None, D("5.00"), None),      # fully refunded: gone
    ("B2", "V1", "Y", T("2022-03-01 18:00"), D("-1"), D("-5.00"), None, D("-5.00"), "B1"),   # refund naming B1
    ("C1", "V1", "Z", T("2022-03-03 08:00"), D("2"), D("4.00"), D("4.00"), None, None),      # earlier line of the day: kept
    ("C2", "V1", "Z", T("2022-03-03 10:00"), D("2"), D("4.00"), D("4.00"), None, None),      # latest line of the day: netted
    ("C3", "V1", "Z", T("2022-03-03 20:00"), D("-1"), D("-2.00"), D("-2.00"), None, None),   # refund without init sn
    ("E1", "V1", "Z", T("2022-03-05 20:00"), D("-1"), D("-2.00"), D("-2.00"), None, None),   # no line that day: unmatched
    ("E2", "V2", "X", T("2022-03-05 20:00"), D("-1"), D("-2.00"), D("-2.00"), None, "NOPE"),  # names a missing line
    ("G1", "V2", "X", T("2022-03-05 10:00"), D("1"), D("9.00"), D("9.00"), None, None),      # untouched line
    ("A1", "V3", "X", T("2022-03-01 09:00"), D("1"), D("10.00"), D("10.00"), None, None),    # same sn, other visit: untouched
]


def _table():
    rows = [dict(zip(COLS, (*r, "H1"))) for r in LINES]
    schema = pa.schema([("feedetl_sn", pa.string()), ("mdtrt_id", pa.string()), ("hilist_code", pa.string()),
                        ("fee_ocur_time", pa.timestamp("us")), ("cnt", pa.decimal128(16, 4)),
                        ("det_item_fee_sumamt", pa.decimal128(16, 2)), ("inscp_scp_amt", pa.decimal128(16, 2)),
                        ("fulamt_ownpay_amt", pa.decimal128(16, 2)), ("init_feedetl_sn", pa.string()),
                        ("fixmedins_code", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


def test_netting_cases():
    net, unmatched = nodes.net_fee_lines(duckdb.connect(), _table())
    got = {(r["mdtrt_id"], r["feedetl_sn"]): r for r in net.to_pylist()}
    assert set(got) == {("V1", "A1"), ("V1", "C1"), ("V1", "C2"), ("V2", "G1"), ("V3", "A1")}
    a1 = got[("V1", "A1")]
    assert (a1["cnt"], a1["det_item_fee_sumamt"], a1["inscp_scp_amt"], a1["fulamt_ownpay_amt"]) == \
        (D("2.0000"), D("20.00"), D("20.00"), None)
    assert got[("V1", "C2")]["cnt"] == D("1.0000") and got[("V1", "C1")]["cnt"] == D("2.0000")
    assert got[("V3", "A1")]["cnt"] == D("1.0000")
    assert net.schema.names == _table().schema.names
    assert sorted(unmatched.column("feedetl_sn").to_pylist()) == ["E1", "E2"]


def test_pipeline_nets_across_drops_and_warns(tmp_path, lake, load):
    load(drops.write_canonical_drop(tmp_path / "d1"))
    fees = [drops.FEE_HEAD,
            # a later drop refunds the consultation F5 of drop 1 completely: F5 leaves the net table
            ["R1", "M2", "S2", "P2", "H001", "2022-03-11 09:00:00", "110200001", "诊察费", "C01", "02", "01", "-1",
             "25.5", "-25.50", "", "-25.50", "0", "A02", "D02", "0", "F5"],
            # a refund whose line is nowhere: reported, ignored
            ["R2", "M2", "S2", "P2", "H001", "2022-03-11 09:00:00", "XX", "?", "", "", "", "-1",
             "1", "-1.00", "", "", "", "", "", "", ""]]
    rep = load(drops.write_canonical_drop(tmp_path / "d2", {"fee_list": fees}))
    net = {r["feedetl_sn"] for r in lake.read("silver/fee_list_net").to_pylist()}
    assert net == {"F1", "F2", "F4", "F6"}
    assert lake.read("silver/fee_list").num_rows == 8     # silver keeps every line, refunds included
    assert any("feedetl_sn=R2" in w for w in rep.warnings)
    assert not any("feedetl_sn=R1" in w for w in rep.warnings)


def test_netting_with_staged_refunds_and_matches_gives_the_same_lines():
    """The load stages the refunds and their targets once (small tables) and nets from them: the same netted
    lines and unmatched refunds as the one-statement form."""
    con = duckdb.connect()
    con.register("src", _table())
    one = {o: con.sql(nodes.net_sql("src", o)).to_arrow_table().sort_by("feedetl_sn").to_pylist()
           for o in ("net", "unmatched")}
    con.execute(f"CREATE TEMP TABLE r AS {nodes.net_sql('src', 'refund')}")
    con.execute(f"CREATE TEMP TABLE m AS {nodes.net_sql('src', 'matched', refund='r')}")
    assert con.execute("SELECT count(*) FROM r").fetchall()[0][0] == 5       # A2, B2, C3, E1, E2
    assert sorted(x[0] for x in con.execute("SELECT target_sn FROM m").fetchall()) == ["A1", "B1", "C2"]
    staged = {o: con.sql(nodes.net_sql("src", o, refund="r", matched="m")).to_arrow_table()
              .sort_by("feedetl_sn").to_pylist() for o in ("net", "unmatched")}
    assert staged == one and one["net"] and one["unmatched"]


def test_one_institution_netted_with_staged_adjustments_gives_its_lines():
    """The load nets each partition alone, with the staged refunds, targets and adjustments narrowed to its
    institution: together the same lines as netting everything in one statement."""
    t = _table()
    rows = t.to_pylist()
    for r in rows:
        if r["mdtrt_id"] == "V2":
            r["fixmedins_code"] = "H2"           # a second institution: its own lines and refunds
    con = duckdb.connect()
    con.register("src", pa.Table.from_pylist(rows, schema=t.schema))
    whole = con.sql(nodes.net_sql("src", "net")).to_arrow_table().sort_by("feedetl_sn").to_pylist()
    con.execute(f"CREATE TABLE r AS {nodes.net_sql('src', 'refund')}")
    con.execute(f"CREATE TABLE m AS {nodes.net_sql('src', 'matched', 'r')}")
    con.execute(f"CREATE TABLE a AS {nodes.net_sql('src', 'adj', 'r', 'm')}")
    assert sorted(x[0] for x in con.execute("SELECT DISTINCT fixmedins_code FROM a").fetchall()) == ["H1"]
    parts = []
    for inst in ("H1", "H2"):
        mine = {k: f"(SELECT * FROM {v} WHERE fixmedins_code = '{inst}')" for k, v in
                (("refund", "r"), ("matched", "m"), ("adj", "a"))}
        parts += con.sql(nodes.net_sql(f"(SELECT * FROM src WHERE fixmedins_code = '{inst}')", "net", **mine)) \
            .to_arrow_table().to_pylist()
    assert sorted(parts, key=lambda r: (r["feedetl_sn"], r["mdtrt_id"])) == \
        sorted(whole, key=lambda r: (r["feedetl_sn"], r["mdtrt_id"]))
    assert len(whole) == 5


def test_typing_without_checks_gives_the_checked_silver_columns():
    """`checks="none"` (used to read the keys of every row) types each value as the checked form does."""
    con = duckdb.connect()
    raw = pa.table({n: pa.array([v, " x ", ""], pa.string()) for n, v in
                    zip(["feedetl_sn", "mdtrt_id", "fee_ocur_time", "cnt", "det_item_fee_sumamt"],
                        ["F1", "M1", "2022-03-01 09:00:00", "1,000", "12.5"])})
    raw = raw.append_column("_line", pa.array([2, 3, 4], pa.int64()))
    from pipelines import contract
    for n in contract.ENTITIES["fee_list"].names:
        if n not in raw.column_names:
            raw = raw.append_column(n, pa.array([None, None, None], pa.string()))
    con.register("b", raw)
    cols = ", ".join(sql_ident(c) for c in nodes.silver_columns("fee_list"))
    checked = con.sql(f"SELECT {cols} FROM ({nodes.typing_sql('fee_list', 'b', 's', 'd', 'f', 0)})").fetchall()
    plain = con.sql(f"SELECT {cols} FROM ({nodes.typing_sql('fee_list', 'b', 's', 'd', 'f', 0, checks='none')})").fetchall()
    assert checked == plain
    assert plain[0][nodes.silver_columns("fee_list").index("cnt")] == D("1000")
    assert plain[1][0] == "x" and plain[2][0] is None        # trimmed; blank is null
