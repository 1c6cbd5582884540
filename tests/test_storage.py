"""The one storage module: exact paths, refused names, versions, time travel, scoped replace, merge, and
DuckDB-written Parquet committed as one Delta version."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.storage import Lake, StorageError, native_select
from pipelines.storage.partitions import partitions_holding


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
    import pyarrow.dataset as pads

    lake = Lake(tmp_path)
    lake.append("silver/x", pa.table({"k": [1, 2], "v": ["a", "b"]}))
    lake.merge("silver/x", pa.table({"k": [2, 3], "v": ["B", "c"]}), ["k"])
    assert sorted(lake.read("silver/x").to_pylist(), key=lambda r: r["k"]) == [
        {"k": 1, "v": "a"}, {"k": 2, "v": "B"}, {"k": 3, "v": "c"}]
    assert lake.dataset("silver/x").to_table(filter=pads.field("v") == "B").column("k").to_pylist() == [2]


def _files_by_partition(lake, name):
    acts = pa.table(lake.delta(name).get_add_actions(flatten=True)).to_pylist()
    out = {}
    for a in acts:
        out.setdefault(a["partition.p"], set()).add(a["path"])
    return out


def test_merge_rewrites_only_the_partitions_holding_a_key(tmp_path):
    lake = Lake(tmp_path)
    lake.append("silver/x", pa.table({"k": [1, 2, 3, 4], "b": ["x", None, "y", None], "p": ["A", "B", "C", None],
                                      "v": ["a", "b", "c", "d"]}), partition_by=["p"])
    before = _files_by_partition(lake, "silver/x")
    holding = partitions_holding(lake, "silver/x", pa.table({"k": [2, 9], "b": [None, None]}), ["k", "b"], ["b"])
    assert holding == {"columns": ["p"], "rows": [("B",)]}
    # key (2, null) sits in B and now moves to C; (4, null) in the null partition; (7, z) is new
    lake.merge("silver/x", pa.table({"k": [2, 4, 7], "b": [None, None, "z"], "p": ["C", None, "A"],
                                     "v": ["B2", "D2", "g"]}), ["k", "b"], nullable_keys=["b"])
    rows = sorted(lake.read("silver/x").to_pylist(), key=lambda r: r["k"])
    assert [(r["k"], r["p"], r["v"]) for r in rows] == [
        (1, "A", "a"), (2, "C", "B2"), (3, "C", "c"), (4, None, "D2"), (7, "A", "g")]
    after = _files_by_partition(lake, "silver/x")
    assert before["A"] <= after["A"] and before["C"] <= after["C"]      # A and C were not rewritten
    assert not (before["B"] & after.get("B", set())) and not (before[None] & after[None])


def test_merge_writes_plain_text_that_filtered_readers_can_read(tmp_path):
    """An upsert rewrites the partitions holding a key (every combination of their values: H1/2023 holds one,
    H2/2024 another, so H1/2024 and H2/2023 are rewritten too and keep their rows) in one commit, as plain
    Parquet text: delta-rs's merge wrote `string_view`, and a filtered read of the table then failed."""
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    lake = Lake(tmp_path)
    rows = {"k": ["a", "b", "c", "d", "e"], "inst": ["H1", "H2", "H1", "H2", "H3"],
            "year": ["2023", "2024", "2024", "2023", "2023"], "v": ["1", "2", "3", "4", "5"]}
    lake.append("silver/x", pa.table(rows), partition_by=["inst", "year"])
    version = lake.version("silver/x")
    lake.merge("silver/x", pa.table({"k": ["a", "b", "f"], "inst": ["H1", "H2", "H4"], "year": ["2023", "2024", "2023"],
                                     "v": ["1'", "2'", "6"]}), ["k"])
    assert lake.version("silver/x") == version + 1
    got = sorted((r["k"], r["inst"], r["year"], r["v"]) for r in lake.read("silver/x").to_pylist())
    assert got == [("a", "H1", "2023", "1'"), ("b", "H2", "2024", "2'"), ("c", "H1", "2024", "3"),
                   ("d", "H2", "2023", "4"), ("e", "H3", "2023", "5"), ("f", "H4", "2023", "6")]
    for f in lake.native_files("silver/x").files:
        assert not any(pa.types.is_string_view(t) for t in pq.read_schema(f).types), f
    ds = lake.dataset("silver/x")
    assert ds.to_table(filter=pads.field("v") == "2'").column("k").to_pylist() == ["b"]
    assert duckdb.sql(f"SELECT k FROM ({native_select(lake.native_files('silver/x'))}) WHERE v = '4'").fetchall() == [("d",)]


def test_merge_of_new_keys_only_appends(tmp_path):
    lake = Lake(tmp_path)
    lake.append("silver/x", pa.table({"k": [1, 2], "p": ["A", "B"]}), partition_by=["p"])
    before = _files_by_partition(lake, "silver/x")
    lake.merge("silver/x", pa.table({"k": [3, 4], "p": ["A", "B"]}), ["k"])
    assert lake.delta("silver/x").history(1)[0]["operation"] == "WRITE"
    after = _files_by_partition(lake, "silver/x")
    assert before["A"] < after["A"] and before["B"] < after["B"]
    assert sorted(lake.read("silver/x").column("k").to_pylist()) == [1, 2, 3, 4]


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


def test_native_files_name_the_snapshot_files_and_refuse_what_a_plain_reader_cannot_read(tmp_path):
    lake = Lake(tmp_path)
    t = pa.table({"fixmedins_code": ["H1", "H2", None], "period": ["2023-01", "2023-02", "2023-01"], "k": [1, 2, 3]})
    lake.append("silver/t", t, ["fixmedins_code", "period"])
    lake.replace_where("silver/t", t.slice(0, 1), "fixmedins_code = 'H1'", ["fixmedins_code", "period"])
    snap = lake.native_files("silver/t")
    assert snap.partition_by == ["fixmedins_code", "period"]
    assert snap.schema.names == ["fixmedins_code", "period", "k"]
    assert sorted(snap.files) == sorted(str(lake.path("silver/t") / p) for p in
                                        pa.table(lake.delta("silver/t").get_add_actions()).column("path").to_pylist())
    assert len(snap.files) == 3 and all(Path(f).is_file() for f in snap.files)
    v0 = lake.native_files("silver/t", version=0).files
    assert len(v0) == 3 and set(v0) != set(snap.files)   # the replaced H1 file belongs to version 0 only
    # a value that needs escaping in its folder name is left to delta-rs
    lake.append("silver/t", pa.table({"fixmedins_code": ["H 2/x"], "period": ["2023-01"], "k": [4]}))
    assert lake.native_files("silver/t") is None
    # a file outside Hive folders (Delta allows any path) is left to delta-rs
    con = duckdb.connect()
    con.execute("CREATE TABLE u AS SELECT 1 AS k")
    lake.write_query("silver/u", con, "SELECT * FROM u")
    assert lake.native_files("silver/u").partition_by == []
    lake.overwrite("silver/v", pa.table({"k": pa.array([], pa.int64())}))
    assert lake.native_files("silver/v") is None      # no files: nothing to read natively


def test_constant_partition_copy_writes_one_folder_and_commits_the_value(tmp_path):
    lake = Lake(tmp_path)
    con = duckdb.connect()
    copied = lake.copy_query("bronze/x", con, "SELECT i AS k, 'drop 1/é' AS _drop FROM range(5) r(i)", ["_drop"],
                             constant={"_drop": "drop 1/é"})
    assert len(copied.files) == 1 and copied.rows == 5
    lake.commit_copied(copied)
    got = lake.read("bronze/x")
    assert got.schema.names == ["k", "_drop"]
    assert set(got.column("_drop").to_pylist()) == {"drop 1/é"} and got.num_rows == 5
    assert lake.partition_values("bronze/x", "_drop") == {"drop 1/é"}


def test_a_snapshot_split_by_partition_reads_each_partition_with_its_values_as_literals(tmp_path):
    from pipelines.storage import native_select

    lake = Lake(tmp_path)
    t = pa.table({"fixmedins_code": ["H1", "H1", "H2", None], "period_year": ["2022", "2023", "2022", "2022"],
                  "k": [1, 2, 3, 4]})
    lake.append("silver/t", t, ["fixmedins_code", "period_year"])
    lake.append("silver/t", t.slice(0, 1), ["fixmedins_code", "period_year"])
    snap = lake.native_files("silver/t")
    assert snap.rows and sum(snap.rows) == 5
    parts = snap.by_partition()
    assert set(parts) == {("H1", "2022"), ("H1", "2023"), ("H2", "2022"), (None, "2022")}
    assert len(parts[("H1", "2022")].files) == 2 and parts[("H1", "2022")].rows == [1, 1]
    con = duckdb.connect()
    whole = sorted(con.sql(native_select(snap, union=False)).fetchall(), key=str)
    one = native_select(parts[("H1", "2022")], union=False)
    assert "hive_partitioning = false" in one and "'H1'" in one      # literals, no folder parsing
    assert con.sql(one).fetchall() == [("H1", "2022", 1)] * 2
    by_parts = sorted((r for p in parts.values() for r in con.sql(native_select(p, union=False)).fetchall()), key=str)
    assert by_parts == whole
    assert (None, "2022", 4) in whole            # the null partition is read through its Hive folder


def test_native_snapshot_only_keeps_the_files_of_some_partitions(tmp_path):
    lake = Lake(tmp_path)
    lake.append("silver/x", pa.table({"k": [1, 2, 3], "p": ["A", "B", "C"]}), partition_by=["p"])
    lake.append("silver/x", pa.table({"k": [4], "p": ["A"]}))
    part = lake.native_files("silver/x").only("p", {"A", "C"})
    assert len(part.files) == 3 and {v["p"] for v in part.values} == {"A", "C"}
    con = duckdb.connect()
    assert sorted(con.sql(native_select(part)).fetchall()) == [(1, "A"), (3, "C"), (4, "A")]
    with pytest.raises(StorageError, match="not a partition column"):
        part.only("k", {1})
