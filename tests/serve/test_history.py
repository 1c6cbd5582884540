"""The warm lake's person-keyed history: compact Arrow tables (same values, less memory) and the person index."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import duckdb
import pyarrow as pa

from pipelines.serve.history import PersonRows, _fetch, compact, plain


def _fee_like(n: int = 600) -> pa.Table:
    return pa.table({
        "psn_no": pa.array([None if i % 97 == 0 else f"P{(i * 7) % 40:03d}" for i in range(n)]),
        "feedetl_sn": pa.array([f"L{i:06d}" for i in range(n)]),            # unique: stays plain text
        "hilist_code": pa.array([["A1", "B2", None][i % 3] for i in range(n)]),
        "fee_ocur_time": pa.array([datetime(2024, 1 + i % 12, 1 + (i * 13) % 28, i % 24) for i in range(n)],
                                  pa.timestamp("us")),
        "amt": pa.array([None if i % 50 == 0 else Decimal(f"{i * 3.17:.2f}") for i in range(n)],
                        pa.decimal128(16, 2)),
        "wide": pa.array([Decimal(i) for i in range(n)], pa.decimal128(38, 0)),
    })


def test_compact_keeps_every_value_in_less_memory():
    table = _fee_like()
    small = compact(table)
    assert small.nbytes < table.nbytes * 0.75
    assert pa.types.is_dictionary(small.schema.field("psn_no").type)
    assert small.schema.field("hilist_code").type == pa.dictionary(pa.int8(), pa.string())
    assert small.schema.field("feedetl_sn").type == pa.string()
    assert small.schema.field("amt").type == pa.decimal64(16, 2)
    assert small.schema.field("wide").type == pa.decimal128(38, 0)       # over 18 digits: left as it is
    assert all(small.column(c).num_chunks == 1 for c in small.column_names)
    back = plain(small)
    assert back.schema.field("psn_no").type == pa.string()
    assert back.to_pylist() == table.to_pylist()


def test_duckdb_reads_the_compact_types_as_its_own():
    small = compact(_fee_like())
    con = duckdb.connect()
    con.execute("CREATE TABLE fee (psn_no VARCHAR, feedetl_sn VARCHAR, hilist_code VARCHAR, "
                "fee_ocur_time TIMESTAMP, amt DECIMAL(16,2), wide DECIMAL(38,0))")
    con.register("rows", plain(small.slice(10, 50)))
    con.execute("INSERT INTO fee BY NAME SELECT * FROM rows")
    assert con.execute("SELECT sum(amt), count(psn_no) FROM fee").fetchone() == (
        sum(r["amt"] for r in _fee_like().slice(10, 50).to_pylist() if r["amt"] is not None),
        sum(1 for r in _fee_like().slice(10, 50).to_pylist() if r["psn_no"] is not None))


def test_person_rows_find_each_persons_rows_in_time_order():
    table = _fee_like()
    rows = PersonRows.build(compact(table), ("fee_ocur_time",))
    expected = {}
    for r in table.to_pylist():
        if r["psn_no"] is not None:
            expected.setdefault(r["psn_no"], []).append(r)
    assert sorted(k.decode() for k in rows.keys) == sorted(expected)
    got = rows.of(["P007", "NOBODY", "P014"]).to_pylist()
    want = (sorted(expected["P007"], key=lambda r: r["fee_ocur_time"])
            + sorted(expected["P014"], key=lambda r: r["fee_ocur_time"]))
    assert [r["feedetl_sn"] for r in got] == [r["feedetl_sn"] for r in want]
    assert got == want
    assert rows.holds("P007") and not rows.holds("NOBODY")
    assert rows.of(["NOBODY"]).num_rows == 0
    assert rows.of(["NOBODY"]).schema == plain(rows.table).schema


def test_rows_fetched_from_duckdb_are_held_in_arrows_own_pool():
    """A column left in the batch DuckDB exported would keep that whole batch alive (decision 36): every byte of
    the fetched table is allocated by Arrow."""
    con = duckdb.connect()
    select = ("SELECT 'P' || (range % 1000)::VARCHAR AS psn_no, 'L' || range::VARCHAR AS sn, "
              "TIMESTAMP '2024-01-01' + to_seconds(range) AS t, (range / 100)::DECIMAL(16,2) AS amt FROM range(300000)")
    before = pa.total_allocated_bytes()
    table = _fetch(con, select, batch_rows=50_000)
    assert table.num_rows == 300_000
    assert pa.total_allocated_bytes() - before >= table.nbytes
    assert plain(table).to_pylist()[:3] == con.sql(select + " LIMIT 3").to_arrow_table().to_pylist()


def test_an_absent_table_is_an_empty_index():
    empty = compact(_fee_like().schema.empty_table())
    rows = PersonRows.build(empty, ("fee_ocur_time",))
    assert not rows.holds("P007")
    assert rows.of(["P007"]).num_rows == 0
    assert rows.of(["P007"]).schema.field("amt").type == pa.decimal64(16, 2)
    con = duckdb.connect()
    assert _fetch(con, "SELECT 'x' AS psn_no, 1.5::DECIMAL(16,2) AS amt WHERE false").num_rows == 0


def test_a_lake_without_persons_loads_with_an_empty_person_history(sample_lake, tmp_path):
    import shutil

    from pipelines.serve.history import load_warm_lake
    from pipelines.storage import Lake

    shutil.copytree(sample_lake.root, tmp_path / "lake")
    shutil.rmtree(tmp_path / "lake" / "silver" / "psn")
    warm = load_warm_lake(Lake(tmp_path / "lake"), {"psn": {"gend", "brdy"}, "fee_list": {"cnt"}})
    try:
        assert warm.rows["psn"] == 0 and warm.rows["fee_list"] > 0
        person = warm.people["fee_list"].keys[0].decode()
        assert warm.people["fee_list"].of([person]).num_rows > 0
        assert warm.people["psn"].of([person]).num_rows == 0
        assert {"gend", "brdy"} <= set(warm.columns["psn"])
    finally:
        warm.close()
