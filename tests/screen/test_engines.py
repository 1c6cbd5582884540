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


def test_duckdb_reads_snapshots_natively_as_delta_rs_does(tmp_path):
    """DuckDB's parallel Parquet reader over the snapshot's files gives the rows, types and partition values
    (null ones too) that delta-rs gives, at the current and at an older version; a partition value that
    needs escaping in its folder name is read through delta-rs, with the same result."""
    lake = Lake(tmp_path)
    lake.append("silver/x", rows(("H1", "2023-01", 1), ("H2", "2023-02", 2)), ["fixmedins_code", "period"])
    null_part = pa.Table.from_pylist([{"fixmedins_code": None, "period": "2023-03", "k": 3, "amount": Decimal("0.10"),
                                       "t": dt.datetime(2023, 3, 1)}], schema=SCHEMA)
    lake.append("silver/x", null_part, ["fixmedins_code", "period"])
    lake.replace_where("silver/x", rows(("H1", "2023-01", 9)), "fixmedins_code = 'H1'", ["fixmedins_code", "period"])
    duck = DuckDBEngine()

    def view_sql():
        return duck.con.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'x'").fetchall()[0][0]

    for version, native, n in ((None, True, 3), (0, True, 2), (2, True, 3), ("escaped", False, 4)):
        if version == "escaped":
            lake.append("silver/x", rows(("H 2/x", "2023-01", 5)), ["fixmedins_code", "period"])
            version = None
        duck.register_table("x", lake, "silver/x", version)
        assert ("read_parquet" in view_sql()) is native
        got = duck.query("SELECT * FROM x ORDER BY k")
        want = lake.read("silver/x", version).sort_by("k")
        assert got.schema.names == SCHEMA.names
        assert got.to_pylist() == want.select(SCHEMA.names).to_pylist()
        assert got.num_rows == n
        assert (None in got.column("fixmedins_code").to_pylist()) is (version != 0)


def test_duckdb_falls_back_to_delta_rs_when_files_lack_a_schema_column(tmp_path):
    lake = Lake(tmp_path)
    lake.append("silver/y", pa.table({"k": [1]}))
    lake.append("silver/y", pa.table({"k": [2], "extra": ["e"]}), schema_mode="merge")
    lake.delete("silver/y", "k = 2")                 # no file left holds `extra`
    duck = DuckDBEngine()
    duck.register_table("y", lake, "silver/y")
    assert duck.query("SELECT k, extra FROM y").to_pylist() == [{"k": 1, "extra": None}]


def test_duckdb_reads_files_of_an_evolved_schema_through_union_by_name(tmp_path):
    """Files written before a column was added lack it: the view read without union_by_name fails on them,
    and the engine re-reads with it, for inputs (materialised or not) and the views built on them."""
    lake = Lake(tmp_path)
    lake.append("silver/z", pa.table({"k": [1]}))
    lake.append("silver/z", pa.table({"k": [2], "extra": ["e"]}), schema_mode="merge")
    duck = DuckDBEngine()
    duck.register_table("z", lake, "silver/z")
    duck.register_table("zt", lake, "silver/z", materialize=True)
    duck.create_view("zz", "SELECT k, extra, k * 10 AS k10 FROM z", materialize=True)
    want = [{"k": 1, "extra": None}, {"k": 2, "extra": "e"}]
    assert duck.query("SELECT k, extra FROM zz ORDER BY k").to_pylist() == want
    assert duck.query("SELECT k, extra FROM zt ORDER BY k").to_pylist() == want
    assert "read_parquet" in duck.con.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'z'").fetchall()[0][0]


def test_duckdb_registers_only_the_columns_asked_for(tmp_path):
    lake = Lake(tmp_path)
    lake.append("silver/x", rows(("H1", "2023-01", 1)), ["fixmedins_code", "period"])
    duck = DuckDBEngine()
    duck.register_table("x", lake, "silver/x", columns=["k", "fixmedins_code"], materialize=True)
    assert duck.query("SELECT * FROM x").to_pylist() == [{"fixmedins_code": "H1", "k": 1}]


def test_duckdb_clustered_view_is_stored_in_that_order(tmp_path):
    duck = DuckDBEngine()
    duck.register_arrow("src", pa.table({"k": [3, 1, 2, 1], "v": ["c", "a", "b", "a2"]}))
    duck.create_view("t", "SELECT * FROM src", materialize=True, cluster_by="k")
    stored = duck.con.sql("SELECT k FROM t ORDER BY rowid").fetchall()
    assert [r[0] for r in stored] == [1, 1, 2, 3]
    assert duck.query("SELECT count(*) AS n FROM t").column("n")[0].as_py() == 4


class _FakeSession:
    """What `fit_to_cores` reads of a Spark session: its master, its cores and its runtime conf."""

    def __init__(self, cores: int):
        self.conf = self
        self.values: dict[str, str] = {}
        self.sparkContext = type("SC", (), {"defaultParallelism": cores, "master": f"local[{cores}]"})()

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


@pytest.mark.parametrize("cores, adaptive, partitions", [(2, "false", "4"), (8, "true", "16"), (32, "true", "64")])
def test_shuffle_partitions_and_adaptive_execution_follow_the_cores(cores, adaptive, partitions):
    from pipelines.screen.engines import fit_to_cores

    session = _FakeSession(cores)
    conf = {"conf": {}, "parallelism": {"shuffle_partitions_per_core": 2, "adaptive_min_cores": 8}}
    assert fit_to_cores(session, conf) == cores
    assert session.values["spark.sql.adaptive.enabled"] == adaptive
    assert session.values["spark.sql.shuffle.partitions"] == partitions


def test_settings_given_in_the_conf_are_left_alone():
    from pipelines.screen.engines import fit_to_cores

    session = _FakeSession(2)
    fit_to_cores(session, {"conf": {"spark.sql.adaptive.enabled": "true", "spark.sql.shuffle.partitions": "200"},
                           "parallelism": {}})
    assert "spark.sql.adaptive.enabled" not in session.values and "spark.sql.shuffle.partitions" not in session.values
