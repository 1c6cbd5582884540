"""A table's data files outside delta-rs: a snapshot's files read with a plain Parquet reader
(`NativeSnapshot` from `Lake.native_files`, and the DuckDB SELECT over them, `native_select`), and files a
DuckDB COPY wrote but nobody committed yet (`CopiedFiles`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pyarrow as pa

from pipelines.storage.sqltext import sql_ident, sql_literal


class StorageError(RuntimeError):
    pass

#: reader features a plain Parquet reader honours (timestamp_ntz is only a type); anything else needs delta-rs
NATIVE_READER_FEATURES = {"timestampNtz"}
#: folder values that stand for a null partition value (Spark/Hive, DuckDB)
HIVE_NULLS = ("__HIVE_DEFAULT_PARTITION__", "NULL")


@dataclass
class NativeSnapshot:
    """Data files of one Delta snapshot (see `Lake.native_files`)."""
    files: list[str]
    partition_by: list[str]
    schema: pa.Schema      # the table's schema (partition columns included)
    values: list[dict] | None = None       # each file's partition values, as the log records them
    rows: list[int | None] | None = None   # each file's row count, where the log records it

    def by_partition(self) -> dict[tuple, "NativeSnapshot"]:
        """The snapshot split into one per partition (key: the partition values in `partition_by` order)."""
        groups: dict[tuple, list[int]] = {}
        for i, v in enumerate(self.values or [{}] * len(self.files)):
            groups.setdefault(tuple(v.get(c) for c in self.partition_by), []).append(i)
        return {k: self._pick(ix) for k, ix in groups.items()}

    def slices(self, files: int) -> list["NativeSnapshot"]:
        """The snapshot cut into parts of at most `files` files (in order)."""
        return [self._pick(range(i, min(i + files, len(self.files)))) for i in range(0, len(self.files), files)]

    def _pick(self, ix) -> "NativeSnapshot":
        ix = list(ix)
        return NativeSnapshot([self.files[i] for i in ix], self.partition_by, self.schema,
                              [self.values[i] for i in ix] if self.values else None,
                              [self.rows[i] for i in ix] if self.rows else None)

    def only(self, column: str, values: set) -> "NativeSnapshot":
        """The files whose partition value of `column` is one of `values` (a partition column, values known)."""
        if column not in self.partition_by or self.values is None:
            raise StorageError(f"{column} is not a partition column this snapshot knows the values of")
        return self._pick(i for i, v in enumerate(self.values) if v.get(column) in values)


@dataclass
class CopiedFiles:
    """Parquet files a DuckDB COPY wrote under a table root, not yet committed."""
    name: str
    files: list
    stats: dict            # str(path) -> (size, rows)
    schema: pa.Schema      # the table's schema, partition columns last
    partition_by: list

    @property
    def rows(self) -> int:
        return sum(r for _, r in self.stats.values())

    @staticmethod
    def combine(name: str, copies: Sequence["CopiedFiles"], schema: pa.Schema,
                partition_by: Sequence[str]) -> "CopiedFiles":
        """Several uncommitted writes into one table as one set of files (committed together)."""
        files, stats = [], {}
        for c in copies:
            if c.name != name:
                raise StorageError(f"files of {c.name} cannot be committed to {name}")
            files += c.files
            stats.update(c.stats)
        return CopiedFiles(name, files, stats, schema, list(partition_by))


def native_select(snap, union: bool = True, columns: Sequence[str] | None = None) -> str | None:
    """DuckDB SELECT over a snapshot's files, in the table's column order and types; partition columns come
    from the Hive folders (read as text, null folders as NULL, then cast to the table's type). Without
    `union`, columns are matched by name to the first file's (cheaper; fails on a file missing a column).
    `columns` selects some of the table's columns. None when a partition column has a type this does not map.

    When every file sits in one partition whose values the snapshot knows, they are literals and the
    folders are not parsed (cheaper to plan, which counts for many small reads)."""
    lit = sql_literal
    files = ", ".join(lit(f) for f in snap.files)
    parts = set(snap.partition_by)
    one = None
    if parts and snap.values and all(v == snap.values[0] for v in snap.values):
        one = snap.values[0]
    hive = ", ".join(f"{lit(c)}: 'VARCHAR'" for c in snap.partition_by)
    nulls = ", ".join(lit(v) for v in HIVE_NULLS)
    cols = []
    wanted = set(columns) if columns else None
    for f in snap.schema:
        if wanted is not None and f.name not in wanted:
            continue
        q = sql_ident(f.name)
        if f.name in parts:
            typ = _duck_type(f.type)
            if typ is None:
                return None
            if one is not None:
                cols.append(f"CAST({lit(one[f.name])} AS {typ}) AS {q}")
            else:
                cols.append(f"CAST(CASE WHEN {q} IN ({nulls}) THEN NULL ELSE {q} END AS {typ}) AS {q}")
        else:
            cols.append(q)
    opts = f"union_by_name = {str(union).lower()}" + (f", hive_partitioning = true, hive_types = {{{hive}}}"
                                                        if parts and one is None else ", hive_partitioning = false")
    return f"SELECT {', '.join(cols)} FROM read_parquet([{files}], {opts})"


def _duck_type(t: pa.DataType) -> str | None:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_date32(t):
        return "DATE"
    return None
