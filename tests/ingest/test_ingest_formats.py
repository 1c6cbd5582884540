"""(1) Every format / encoding / header form of contract §1 loads to the same silver as the plain twin."""
from __future__ import annotations

import gzip

import pyarrow as pa

from pipelines import contract
from pipelines.ingest.inspection import inspect_file
from pipelines.ingest.messy import make_messy_twin
from pipelines.ingest.readers import read_batches
from pipelines.storage import Lake

from . import drops


def _silver(lake: Lake, name: str):
    t = lake.read(name).drop_columns(["_drop", "_file", "_line"])
    return t.sort_by([(c, "ascending") for c in t.column_names if not pa.types.is_null(t.schema.field(c).type)])


def test_messy_twin_loads_to_the_same_silver(tmp_path, load):
    plain = drops.write_canonical_drop(tmp_path / "plain")
    files = make_messy_twin(plain, tmp_path / "messy", seed=3)
    formats = {contract.file_format(p.name) for p in files}
    assert formats == {"csv", "csv.gz", "tsv", "xlsx", "parquet", "jsonl"}
    a, b = Lake(tmp_path / "lake_a"), Lake(tmp_path / "lake_b")
    ra = load(plain, lake=a)
    rb = load(tmp_path / "messy", lake=b, batch_rows=1)
    assert ra.balanced and rb.balanced and rb.rows_quarantined == 0
    encodings = {f.file: f.encoding for f in rb.files}
    assert encodings["psn.csv"] == "gb18030"          # GBK is read as its superset GB18030
    assert encodings["setl.csv"] == "utf-8-sig"
    assert encodings["kb_hilist.csv"] == "gb18030"
    assert any("REMARK_备注" in c for f in rb.files for c in f.unknown_columns)
    assert a.tables("silver") == b.tables("silver")
    for name in a.tables("silver"):
        assert _silver(a, name).equals(_silver(b, name)), name


def test_header_forms_and_padding(tmp_path, lake, load):
    # upper-case alias, Chinese label, lower-case canonical and an unknown column in one header
    drops.write_csv(tmp_path / "d" / "fixmedins.csv", [
        ["FIXMEDINS_CODE", "定点医药机构名称", "Hosp_Lv", "备注"],
        ["H9", "九院", "3", "x"],     # hosp_lv '3' is padded to '03'
        ["H8", "八院", " 11 ", "y"],  # blanks around a value are trimmed
    ])
    rep = load(tmp_path / "d")
    assert rep.files[0].unknown_columns == ["备注"]
    rows = {r["fixmedins_code"]: r for r in lake.read("silver/fixmedins").to_pylist()}
    assert rows["H9"]["hosp_lv"] == "03" and rows["H8"]["hosp_lv"] == "11"


def test_time_formats(tmp_path, lake, load):
    head = drops.MDTRT[0]
    rows = [head]
    for i, t in enumerate(["2022-03-01 08:00:00",    # yyyy-MM-dd HH:mm:ss
                           "2022-03-01",             # yyyy-MM-dd
                           "20220301080000",         # yyyyMMddHHmmss
                           "2022/03/01 08:00"]):     # yyyy/MM/dd HH:mm
        rows.append([f"M{i}", "P1", "H001", "11", t, "", "", "", "", "", "", ""])
    drops.write_csv(tmp_path / "d" / "mdtrt.csv", rows)
    load(tmp_path / "d")
    got = {r["mdtrt_id"]: r["begntime"] for r in lake.read("silver/mdtrt").to_pylist()}
    assert {str(v) for v in got.values()} == {"2022-03-01 08:00:00", "2022-03-01 00:00:00"}
    assert str(got["M1"]) == "2022-03-01 00:00:00"


def test_csv_line_numbers_skip_blank_and_bad_rows(tmp_path):
    p = tmp_path / "kb_param.csv"
    p.write_text("key,value\n"        # line 1: header
                 "a,1\n"              # line 2
                 "\n"                 # line 3: blank, not a row
                 "b\n"                # line 4: short row
                 "c,3\n"              # line 5
                 "d,4,x\n"            # line 6: too many fields
                 "e,5", encoding="utf-8")  # line 7: no final newline
    info = inspect_file(p)
    got, bad = [], []
    for rb in read_batches(info, 1):
        got += list(zip(rb.table.column("key").to_pylist(), rb.table.column("_line").to_pylist()))
        bad += [(i.line, i.raw) for i in rb.invalid]
    assert got == [("a", 2), ("c", 5), ("e", 7)]
    assert bad == [(4, "b"), (6, "d,4,x")]


def test_records_spanning_lines_across_read_blocks(tmp_path):
    """A file whose quoted fields hold line breaks is read whole even where a read block (1 MB at least) ends
    inside one, each row at the line it starts on."""
    p = tmp_path / "kb_param.csv"
    n = 40_000
    p.write_text("key,value\n" + "".join(f'k{i},"{"v" * 20}\n{i}"\n' for i in range(n)), encoding="utf-8")
    info = inspect_file(p)
    assert info.size > 1 << 20
    lines = []
    for rb in read_batches(info, 2):
        assert not rb.invalid
        lines += rb.table.column("_line").to_pylist()
    assert lines == list(range(2, 2 * n + 2, 2))


def test_encodings_detected(tmp_path):
    rows = "psn_no,psn_name,gend,brdy\nP1,张三,1,1980-01-01\n"
    for enc, expect in (("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")):
        p = tmp_path / enc / "psn.csv"
        p.parent.mkdir()
        p.write_bytes(rows.encode(enc))
        info = inspect_file(p)
        assert info.encoding == expect
        (rb,) = list(read_batches(info, 10))
        assert rb.table.column("psn_name").to_pylist() == ["张三"]
    gz = tmp_path / "fee" / "psn-2022.csv.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(rows.encode("gbk")))
    assert inspect_file(gz).encoding == "gb18030"


def test_a_float_typed_code_column_keeps_its_digits_and_its_refunds_net(tmp_path, lake, load):
    """pandas writes a code column with nulls (init_feedetl_sn) as float64; its 100000000002.0 is the clerk's
    `100000000002`, not Arrow's `1.00000000002e+11`: the refund still finds its line."""
    import pyarrow.parquet as pq

    head, rows = drops.FEE_LIST[0], [list(r) for r in drops.FEE_LIST[1:]]
    sn, init = head.index("feedetl_sn"), head.index("init_feedetl_sn")
    for r in rows:
        r[sn] = str(100000000000 + int(r[sn][1:]))
        r[init] = str(100000000000 + int(r[init][1:])) if r[init] else ""
    cols = {h: pa.array([r[i] or None for r in rows], pa.string()) for i, h in enumerate(head)}
    cols["init_feedetl_sn"] = pa.array([float(r[init]) if r[init] else None for r in rows], pa.float64())
    for name, table in (("fixmedins", drops.FIXMEDINS), ("psn", drops.PSN), ("mdtrt", drops.MDTRT),
                        ("setl", drops.SETL), ("diag", drops.DIAG)):
        drops.write_csv(tmp_path / "d" / f"{name}.csv", table)
    pq.write_table(pa.table(cols), tmp_path / "d" / "fee_list.parquet")
    rep = load(tmp_path / "d")
    assert rep.balanced and rep.rows_quarantined == 0
    inits = {r["feedetl_sn"]: r["init_feedetl_sn"] for r in lake.read("silver/fee_list").to_pylist()}
    assert inits["100000000003"] == "100000000002"
    net = {r["feedetl_sn"]: r["cnt"] for r in lake.read("silver/fee_list_net").to_pylist()}
    assert "100000000003" not in net and float(net["100000000002"]) == 2.0
    assert not any("refund not netted" in w for w in rep.warnings)
