"""Writes and reads bounded by partitions: an upsert that rewrites only the partitions holding one of the
incoming keys (delta-rs would load the whole target), and the partitions a writer changed between two versions."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

import pyarrow as pa
from deltalake import DeltaTable

from pipelines.storage.files import native_select
from pipelines.storage.sqltext import sql_ident, sql_literal

if TYPE_CHECKING:
    from pipelines.storage import Lake


def merge(lake: "Lake", name: str, data: pa.Table, keys: Sequence[str], partition_by: Sequence[str] | None = None,
          nullable_keys: Iterable[str] = ()) -> int:
    """Upsert on `keys`: a row whose key exists replaces it, a new key is inserted. A key column in
    `nullable_keys` matches when both sides are null.

    Memory is bounded by what the rows touch, not by the table: the partitions that hold one of `data`'s keys
    are found first by a scan of the key and partition columns (`partitions_holding`); with none, the rows
    are appended; else those partitions (a table that is not partitioned: all of it) are rewritten
    (`_rewrite`), their other rows kept, in one commit with the new rows. The files are DuckDB's plain Parquet: delta-rs's own merge writes text as Arrow
    `string_view`, which pyarrow's, DuckDB's and Polars's filters then fail on (and it would load the whole
    target without a partition predicate: 23 GB for 40 M fee lines). Its merge stays for a table that is not
    natively readable or whose holding partitions include a null value."""
    if not lake.exists(name):
        return lake.append(name, data, partition_by)
    if data.num_rows == 0:
        return lake.version(name)
    nullable = set(nullable_keys)
    holding = partitions_holding(lake, name, data, keys, nullable)
    if holding is not None and not holding["rows"]:
        return lake.append(name, data)
    if holding is None and not lake.delta(name).metadata().partition_columns and lake.native_files(name):
        holding = {"columns": [], "rows": [()]}        # not partitioned: the table is the one partition
    if holding is not None and all(v is not None for r in holding["rows"] for v in r):
        return _rewrite(lake, name, data, keys, nullable, holding)
    pred = " AND ".join(f"(t.{k} = s.{k} OR (t.{k} IS NULL AND s.{k} IS NULL))" if k in nullable
                        else f"t.{k} = s.{k}" for k in keys)
    if holding is not None:
        pred += "".join(f" AND {in_filter(f't.{c}', {r[i] for r in holding['rows']})}"
                        for i, c in enumerate(holding["columns"]))
    (lake.delta(name).merge(data, predicate=pred, source_alias="s", target_alias="t")
     .when_matched_update_all().when_not_matched_insert_all().execute())
    return lake.version(name)


def _rewrite(lake: "Lake", name: str, data: pa.Table, keys: Sequence[str], nullable: set[str],
             holding: dict) -> int:
    """The upsert as one commit: the partitions holding a key (each partition column's values: a Delta
    partition filter is a conjunction, so every combination of them) replaced by their rows whose key `data`
    does not carry plus `data`'s rows; `data`'s rows of other partitions added."""
    import duckdb

    pb = holding["columns"]
    values = {c: sorted({str(r[i]) for r in holding["rows"]}) for i, c in enumerate(pb)}
    snap = lake.native_files(name)
    for c in pb:
        snap = snap.only(c, set(values[c]))
    schema = lake.schema(name)
    cols = ", ".join(sql_ident(n) for n in schema.names)
    on = " AND ".join(f"t.{sql_ident(k)} {'IS NOT DISTINCT FROM' if k in nullable else '='} s.{sql_ident(k)}"
                      for k in keys)
    con = duckdb.connect()
    try:
        con.register("_upsert", data)
        kept = (f"SELECT {cols} FROM ({native_select(snap, columns=schema.names)}) t "
                f"WHERE NOT EXISTS (SELECT 1 FROM _upsert s WHERE {on})") if snap.files else None
        new = f"SELECT {cols} FROM _upsert"
        copied = lake.copy_query(name, con, f"{kept} UNION ALL {new}" if kept else new, pb)
    finally:
        con.close()
    copied.schema = pa.schema([*(f for f in schema if f.name not in pb), *(schema.field(c) for c in pb)])
    return lake.commit_copied(copied, mode="overwrite",
                              partition_filters=[(c, "in", v) for c, v in values.items()] or None)


def partitions_holding(lake: "Lake", name: str, data: pa.Table, keys: Sequence[str],
                       nullable_keys: Iterable[str] = ()) -> dict | None:
    """{"columns": the partition columns, "rows": the distinct partition values of the rows of `name` whose
    key is one of `data`'s}: one DuckDB scan of the key and partition columns (the hash table holds `data`'s
    keys only). None when the table is not partitioned or its files cannot be read natively."""
    import duckdb

    pb = list(lake.delta(name).metadata().partition_columns)
    snap = lake.native_files(name) if pb else None
    select = native_select(snap, columns=[*keys, *pb]) if snap is not None else None
    if select is None:
        return None
    nullable = set(nullable_keys)
    on = " AND ".join(f"t.{sql_ident(k)} {'IS NOT DISTINCT FROM' if k in nullable else '='} s.{sql_ident(k)}"
                      for k in keys)
    con = duckdb.connect()
    try:
        con.register("_merge_keys", data.select(list(keys)))
        rows = con.execute(f"SELECT DISTINCT {', '.join(f't.{sql_ident(c)}' for c in pb)} FROM ({select}) t "
                           f"SEMI JOIN _merge_keys s ON {on}").fetchall()
    finally:
        con.close()
    return {"columns": pb, "rows": rows}


def changed_partition_values(lake: "Lake", name: str, since: int, column: str) -> set | None:
    """The values of partition column `column` of every file added or removed since version `since`: the
    partitions a writer changed. None when the table is not partitioned by `column`."""
    def files(dt: DeltaTable) -> set[tuple]:
        a = pa.table(dt.get_add_actions(flatten=True))
        if a.num_rows == 0:
            return set()
        return set(zip(a.column("path").to_pylist(), a.column(f"partition.{column}").to_pylist()))

    now = lake.delta(name)
    if column not in now.metadata().partition_columns:
        return None
    return {v for _, v in files(now) ^ files(lake.delta(name, since))}


def in_filter(column: str, values: set) -> str:
    """`column IN (values)` for a delta-rs predicate, a null value as `IS NULL`."""
    known = sorted((v for v in values if v is not None), key=str)
    parts = [f"{column} IN ({', '.join(sql_literal(v) for v in known)})"] if known else []
    if None in values:
        parts.append(f"{column} IS NULL")
    return "(" + " OR ".join(parts) + ")"
