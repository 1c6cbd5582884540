"""The Spark engine's Delta path without delta-spark jars: Spark reads a snapshot's files natively and its
Parquet output is committed with delta-rs, so every Delta reader sees the same table."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from pipelines.screen.engines import DuckDBEngine, commit_spark_parquet, delta_jars_available
from pipelines.screen.sql import to_duckdb
from pipelines.storage import Lake

SCHEMA = pa.schema([("fixmedins_code", pa.string()), ("period", pa.string()), ("k", pa.int64()),
                    ("amount", pa.decimal128(16, 2)), ("t", pa.timestamp("us"))])


def rows(*triples):
    return pa.Table.from_pylist([{"fixmedins_code": h, "period": p, "k": k, "amount": Decimal("1.50") * k,
                                  "t": dt.datetime(2023, 1, k)} for h, p, k in triples], schema=SCHEMA)


@pytest.mark.spark
def test_spark_output_committed_through_delta_rs(spark_engine, tmp_path):
    assert not delta_jars_available(), "this machine has no delta-spark jars: the delta-rs path is under test"
    lake = Lake(tmp_path)
    df = spark_engine.from_arrow(rows(("H1", "2023-01", 1), ("H 2/x", "2023-02", 2)))
    v0 = commit_spark_parquet(lake, "staging/suspects", df, ["fixmedins_code", "period"], "overwrite")
    assert v0 == 0
    got = lake.read("staging/suspects")
    assert sorted(got.column("k").to_pylist()) == [1, 2]
    assert set(got.column("fixmedins_code").to_pylist()) == {"H1", "H 2/x"}  # escaped partition value survives
    # overwrite: the old files leave the snapshot, time travel still sees them
    df2 = spark_engine.from_arrow(rows(("H1", "2023-03", 3)))
    v1 = commit_spark_parquet(lake, "staging/suspects", df2, ["fixmedins_code", "period"], "overwrite")
    assert v1 == 1
    assert lake.read("staging/suspects").column("k").to_pylist() == [3]
    assert sorted(lake.read("staging/suspects", version=0).column("k").to_pylist()) == [1, 2]
    # Spark reads the snapshot (not the removed files) and DuckDB agrees
    back = spark_engine.read_delta(lake, "staging/suspects").toArrow()
    assert back.column("k").to_pylist() == [3]
    assert back.column("amount").to_pylist() == [Decimal("4.50")]
    duck = DuckDBEngine()
    duck.register_table("s", lake, "staging/suspects")
    assert duck.query("SELECT k FROM s").column("k").to_pylist() == [3]


@pytest.mark.spark
def test_spark_reads_empty_and_versioned_tables(spark_engine, tmp_path):
    lake = Lake(tmp_path)
    lake.append("silver/x", rows(("H1", "2023-01", 1)), ["fixmedins_code", "period"])
    lake.overwrite("silver/x", SCHEMA.empty_table(), ["fixmedins_code", "period"])
    assert spark_engine.read_delta(lake, "silver/x").count() == 0
    assert spark_engine.read_delta(lake, "silver/x", version=0).count() == 1


def test_duckdb_date_arithmetic_stays_date():
    """Escape hatch: sqlglot turns Spark date_add into TIMESTAMP arithmetic in DuckDB; we cast back."""
    sql = to_duckdb("SELECT date_add(to_date('2023-01-30'), 3) AS d")
    duck = DuckDBEngine()
    out = duck.con.sql(sql).to_arrow_table()
    assert out.schema.field("d").type == pa.date32()
    assert out.column("d").to_pylist() == [dt.date(2023, 2, 2)]
