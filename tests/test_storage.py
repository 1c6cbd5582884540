"""The one storage module: exact paths, refused names, versions, time travel, scoped replace, merge, and
DuckDB-written Parquet committed as one Delta version."""
from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from pipelines.storage import Lake, StorageError


def test_table_paths_are_exact(tmp_path):
    lake = Lake(tmp_path)
    assert lake.path("silver/fee_list") == tmp_path.resolve() / "silver" / "fee_list"
    assert lake.path("gold/suspects") == tmp_path.resolve() / "gold" / "suspects"
    assert lake.path("quarantine") == tmp_path.resolve() / "quarantine"
    for bad in ("silver/../x", "nolayer", "platinum/x", "silver/", "silver/a b"):
        with pytest.raises(StorageError):
            lake.path(bad)


def test_versions_time_travel_and_scoped_replace(tmp_path):
    lake = Lake(tmp_path)
    t = pa.table({"fixmedins_code": ["H1", "H1", "H2"], "period": ["2023-01", "2023-02", "2023-01"], "k": [1, 2, 3]})
    assert lake.append("gold/suspects", t, ["fixmedins_code", "period"]) == 0
    new = pa.table({"fixmedins_code": ["H1"], "period": ["2023-01"], "k": [9]})
    v = lake.replace_where("gold/suspects", new, "fixmedins_code = 'H1' AND period = '2023-01'",
                           ["fixmedins_code", "period"])
    assert v == 1
    assert sorted(lake.read("gold/suspects").column("k").to_pylist()) == [2, 3, 9]   # H1/2023-02, H2 untouched
    assert sorted(lake.read("gold/suspects", version=0).column("k").to_pylist()) == [1, 2, 3]
    assert lake.versions(["gold/suspects", "silver/absent"]) == {"gold/suspects": 1}


def test_merge_upserts_on_keys(tmp_path):
    lake = Lake(tmp_path)
    lake.append("silver/x", pa.table({"k": [1, 2], "v": ["a", "b"]}))
    lake.merge("silver/x", pa.table({"k": [2, 3], "v": ["B", "c"]}), ["k"])
    assert sorted(lake.read("silver/x").to_pylist(), key=lambda r: r["k"]) == [
        {"k": 1, "v": "a"}, {"k": 2, "v": "B"}, {"k": 3, "v": "c"}]


def test_write_query_commits_partitioned_parquet_in_one_version(tmp_path):
    lake = Lake(tmp_path)
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 'H' || (i % 3) AS fixmedins_code, "
                "'2023-0' || (1 + i % 2) AS period, i AS k FROM range(30) r(i)")
    assert lake.write_query("silver/t", con, "SELECT * FROM t", ["fixmedins_code", "period"]) == 0
    assert lake.read("silver/t").num_rows == 30
    assert not list((tmp_path / "silver" / "t").glob(".fg_tmp_*"))
    # overwrite one institution's partitions only
    v = lake.write_query("silver/t", con, "SELECT fixmedins_code, period, k + 100 AS k FROM t WHERE fixmedins_code = 'H0'",
                         ["fixmedins_code", "period"], mode="overwrite",
                         partition_filters=[("fixmedins_code", "in", ["H0"])])
    assert v == 1
    got = lake.read("silver/t")
    assert got.num_rows == 30
    h0 = [r["k"] for r in got.to_pylist() if r["fixmedins_code"] == "H0"]
    assert h0 and min(h0) >= 100
    assert lake.read("silver/t", version=0).num_rows == 30
