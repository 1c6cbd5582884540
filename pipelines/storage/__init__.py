"""The one storage module: where every table of the lake lives, and how it is read and written.

Every table is a Delta table under a lake root (contract §5):

    <lake>/bronze/<entity>   <lake>/silver/<entity>   <lake>/quarantine
    <lake>/staging/suspects  <lake>/gold/suspects     <lake>/_meta/<name>

Reads and writes go through delta-rs (`deltalake`), so no JVM is needed. Every write reports the Delta
version it produced; every read can name a version (time travel). Functions elsewhere never build a path.
"""
from __future__ import annotations

import datetime as dt
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from pipelines.storage.files import (  # noqa: F401  (re-exported: the storage module in one place)
    HIVE_NULLS, NATIVE_READER_FEATURES, CopiedFiles, NativeSnapshot, StorageError, native_select,
)
from pipelines.storage.lock import LakeBusy, LeasePolicy  # noqa: F401
from pipelines.storage.sqltext import sql_ident, sql_literal  # noqa: F401

LAYERS = ("bronze", "silver", "staging", "gold", "_meta")
SINGLE_TABLES = {"quarantine": "quarantine"}
_PLAIN = re.compile(r"^[A-Za-z0-9_]+$")


#: compression of every file written through `copy_query` (DuckDB) and `copy_batches` (pyarrow): zstd at level 1
#: (about a quarter cheaper to write than the default level 3, files ~15 % larger). Readable by every Delta reader.
PARQUET_CODEC, PARQUET_LEVEL = "zstd", 1
PARQUET_OPTIONS = (f"COMPRESSION {PARQUET_CODEC}", f"COMPRESSION_LEVEL {PARQUET_LEVEL}")


@dataclass(frozen=True)
class Lake:
    """A lake root. `Lake("data/lake").table("silver/fee_list")` names one Delta table."""

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root).resolve())

    # ---------- naming ----------
    def path(self, name: str) -> Path:
        """Path of a table given as `layer/entity`, or `quarantine`."""
        if name in SINGLE_TABLES:
            return self.root / SINGLE_TABLES[name]
        layer, _, entity = name.partition("/")
        if layer not in LAYERS or not entity or not _PLAIN.match(entity):
            raise StorageError(f"not a table name of the lake: {name!r} (use layer/entity, layers {LAYERS})")
        return self.root / layer / entity

    def uri(self, name: str) -> str:
        return str(self.path(name))

    def exists(self, name: str) -> bool:
        return (self.path(name) / "_delta_log").is_dir()

    def tables(self, layer: str) -> list[str]:
        base = self.root / layer
        if not base.is_dir():
            return []
        return sorted(f"{layer}/{p.name}" for p in base.iterdir() if (p / "_delta_log").is_dir())

    # ---------- reading ----------
    def delta(self, name: str, version: int | None = None) -> DeltaTable:
        try:
            return DeltaTable(self.uri(name), version=version)
        except TableNotFoundError as exc:
            raise StorageError(f"table {name} does not exist under {self.root}") from exc

    def version(self, name: str) -> int | None:
        return self.delta(name).version() if self.exists(name) else None

    def dataset(self, name: str, version: int | None = None, partitions: Mapping[str, Iterable] | None = None,
                where_partitioned: bool = False) -> pads.Dataset:
        """A pyarrow dataset of one snapshot (for DuckDB, Polars, pandas...); with `partitions`
        ({partition column: values}), of the files of those partitions only (`where_partitioned`: a column
        the table is not partitioned by restricts nothing, instead of failing)."""
        fs = pafs.SubTreeFileSystem(self.uri(name), pafs.LocalFileSystem())
        table = self.delta(name, version)
        keep = set(table.metadata().partition_columns) if where_partitioned else None
        filters = [(c, "in", sorted(str(v) for v in vals)) for c, vals in (partitions or {}).items()
                   if keep is None or c in keep]
        return table.to_pyarrow_dataset(filesystem=fs, partitions=filters or None)

    def read(self, name: str, version: int | None = None, columns: Sequence[str] | None = None,
             filter=None) -> pa.Table:
        return self.dataset(name, version).to_table(columns=list(columns) if columns else None, filter=filter)

    def file_uris(self, name: str, version: int | None = None) -> list[str]:
        return list(self.delta(name, version).file_uris())

    def native_files(self, name: str, version: int | None = None) -> "NativeSnapshot | None":
        """One snapshot's data files for an engine that reads Parquet itself (DuckDB's parallel reader):
        absolute paths and the partition columns, which sit Hive-style in every path.

        None when only a Delta reader may read the snapshot: reader features beyond timestamps
        (deletion vectors, column mapping...), no files, or a file whose folder names do not spell exactly
        the partition values the log records."""
        from urllib.parse import unquote

        dt = self.delta(name, version)
        features = set(dt.protocol().reader_features or [])
        if features - NATIVE_READER_FEATURES:
            return None
        partition_by = list(dt.metadata().partition_columns)
        actions = pa.table(dt.get_add_actions(flatten=True))
        if actions.num_rows == 0:
            return None
        # the log holds paths URL-encoded; a partition value is read from its folder name only when that
        # name is the value itself (no escaping), or the Hive null folder
        paths = [unquote(p) for p in actions.column("path").to_pylist()]
        values = [actions.column(f"partition.{c}").to_pylist() for c in partition_by]
        for i, path in enumerate(paths):
            segs = path.split("/")[:-1]
            if len(segs) != len(partition_by):
                return None
            for seg, col, vals in zip(segs, partition_by, values):
                k, eq, v = seg.partition("=")
                want = vals[i]
                if not eq or k != col or not (v == want if want is not None else v in HIVE_NULLS) \
                        or "%" in v or "/" in v:
                    return None
        root = self.path(name)
        schema = pa.schema(dt.schema().to_arrow())
        rows = actions.column("num_records").to_pylist() if "num_records" in actions.column_names else None
        return NativeSnapshot([str(root / p) for p in paths], partition_by, schema,
                              [{c: vals[i] for c, vals in zip(partition_by, values)} for i in range(len(paths))],
                              rows)

    def history(self, name: str) -> list[dict]:
        return self.delta(name).history()

    def schema(self, name: str) -> pa.Schema:
        return pa.schema(self.delta(name).schema().to_arrow())

    # ---------- writing: each returns the version written ----------
    def append(self, name: str, data, partition_by: Sequence[str] | None = None,
               schema_mode: str | None = None) -> int:
        write_deltalake(self.uri(name), data, mode="append", partition_by=_pb(partition_by),
                        schema_mode=schema_mode)
        return self.version(name)

    def overwrite(self, name: str, data, partition_by: Sequence[str] | None = None) -> int:
        write_deltalake(self.uri(name), data, mode="overwrite", partition_by=_pb(partition_by),
                        schema_mode="overwrite")
        return self.version(name)

    def replace_where(self, name: str, data: pa.Table, predicate: str, partition_by: Sequence[str],
                      commit_metadata: Mapping[str, str] | None = None, schema_mode: str | None = None) -> int:
        """Replace every row matching `predicate` by `data` in ONE commit (rows of `data` must match it).

        Creates the table when it does not exist. `commit_metadata` is recorded in the commit
        (`history()` shows it), e.g. the run that wrote it. `schema_mode="merge"` adds new columns.
        """
        props = CommitProperties(custom_metadata=dict(commit_metadata)) if commit_metadata else None
        if not self.exists(name):
            write_deltalake(self.uri(name), data, mode="append", partition_by=_pb(partition_by),
                            commit_properties=props)
        else:
            write_deltalake(self.uri(name), data, mode="overwrite", partition_by=_pb(partition_by),
                            predicate=predicate, commit_properties=props, schema_mode=schema_mode)
        return self.version(name)

    def partition_values(self, name: str, column: str, version: int | None = None) -> set[str]:
        """Distinct values of a partition column, from the Delta log (no data file is read)."""
        actions = pa.table(self.delta(name, version).get_add_actions(flatten=True))
        col = f"partition.{column}"
        if col not in actions.column_names:
            return set()
        return {v for v in actions.column(col).to_pylist() if v is not None}

    def distinct_values(self, name: str, column: str, version: int | None = None) -> set:
        """Distinct non-null values of one column of a snapshot (a partition column is read from the log)."""
        if column in self.delta(name, version).metadata().partition_columns:
            return self.partition_values(name, column, version)
        import pyarrow.compute as pc
        ds = self.dataset(name, version)
        if column not in ds.schema.names:
            return set()
        return set(pc.unique(ds.to_table(columns=[column]).column(column).drop_null()).to_pylist())

    def merge(self, name: str, data: pa.Table, keys: Sequence[str], partition_by: Sequence[str] | None = None,
              nullable_keys: Iterable[str] = ()) -> int:
        """Upsert on `keys`, rewriting only the partitions that hold one of them (`partitions.merge`)."""
        from pipelines.storage import partitions
        return partitions.merge(self, name, data, keys, partition_by, nullable_keys)

    def delete(self, name: str, predicate: str | None = None) -> int:
        self.delta(name).delete(predicate)
        return self.version(name)

    # ---------- side folders (not tables): reports, the MLflow store ----------
    def writer(self, owner: str, policy: "LeasePolicy | None" = None, create: bool = False):
        """The writer lease (storage/lock.py) for a `with` block; policy: conf `lake_lock`. Only with `create`
        (loading a drop) is a missing lake root created."""
        from pipelines.storage.lock import LeasePolicy, lease

        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        if policy is None:
            from pipelines import config
            policy = LeasePolicy(**{k: float(v) for k, v in (config.load().get("lake_lock") or {}).items()})
        return lease(self.root, owner, policy, log=lambda msg: print(f"fundguard: {msg}", file=sys.stderr))

    def folder(self, *parts: str) -> Path:
        """A side folder under the lake root, `_<first part>/...` (created): e.g. folder("reports", "gate")."""
        if not parts or not all(_PLAIN.match(p.replace("-", "_").replace(".", "_")) and not p.startswith(".")
                                for p in parts):
            raise StorageError(f"not a folder name: {parts!r}")
        path = self.root.joinpath("_" + parts[0], *parts[1:])
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ---------- committing files written by an engine (DuckDB COPY, Spark) ----------
    def commit_files(self, name: str, files: Sequence[Path], schema: pa.Schema, partition_by: Sequence[str],
                     mode: str = "append", partition_filters: list | None = None,
                     stats: Mapping[str, tuple[int, int]] | None = None) -> int:
        """Commit Parquet files already written Hive-style under the table root, in ONE Delta commit.

        `mode="overwrite"` with `partition_filters` (delta-rs filter tuples) replaces just those partitions;
        without filters it replaces the table. The files' schema lacks the partition columns; `schema` is
        the table's (partition columns included). `stats` (str(path) -> (size, rows)), when the writer
        reported them, saves reading every file's footer."""
        import time
        from urllib.parse import unquote

        import pyarrow.parquet as pq
        from deltalake.schema import Schema as DeltaSchema
        from deltalake.transaction import AddAction, create_table_with_add_actions

        root = self.path(name)
        now_ms = int(time.time() * 1000)
        actions = []
        for p in files:
            rel = Path(p).relative_to(root).as_posix()
            parts = {}
            for seg in rel.split("/")[:-1]:
                k, _, v = seg.partition("=")
                parts[k] = None if v in HIVE_NULLS else unquote(v)
            known = stats.get(str(p)) if stats else None
            size, rows = known if known else (Path(p).stat().st_size, pq.ParquetFile(p).metadata.num_rows)
            actions.append(AddAction(rel, size, parts, now_ms, True, '{"numRecords":%d}' % rows))
        if self.exists(name):
            self.delta(name).create_write_transaction(actions, mode=mode, schema=schema,
                                                      partition_by=list(partition_by) or None,
                                                      partition_filters=partition_filters)
        else:
            create_table_with_add_actions(str(root), DeltaSchema.from_arrow(schema), actions, mode="append",
                                          partition_by=list(partition_by) or None)
        return self.version(name)

    def write_query(self, name: str, con, select: str, partition_by: Sequence[str] | None = None,
                    mode: str = "append", partition_filters: list | None = None,
                    constant: Mapping[str, str] | None = None) -> int:
        """Write a DuckDB query's result as one Delta commit: DuckDB writes partitioned Parquet with all its
        threads straight into the table root (new uniquely named files, no row passes through Python),
        delta-rs commits exactly the files the COPY reports (`copy_query` + `commit_copied`)."""
        return self.commit_copied(self.copy_query(name, con, select, partition_by, constant), mode=mode,
                                  partition_filters=partition_filters)

    def copy_query(self, name: str, con, select: str, partition_by: Sequence[str] | None = None,
                   constant: Mapping[str, str] | None = None, schema: pa.Schema | None = None) -> "CopiedFiles":
        """DuckDB COPY of a query into new Parquet files under the table root, NOT committed: readers of the
        table do not see them until `commit_copied`; `discard_copied` removes them. A failed COPY leaves
        nothing behind.

        `constant` names partition columns whose value is the same on every row (e.g. bronze's `_drop`):
        when every partition column is constant the rows go straight into that one partition folder, without
        DuckDB's partitioned writer (which costs about a third more per row). `schema`, the query's own when
        the caller knows it, spares planning the query twice (which counts for many small COPYs)."""
        import uuid

        root = self.path(name)
        root.mkdir(parents=True, exist_ok=True)
        if schema is None:
            schema = con.sql(f"SELECT * FROM ({select}) LIMIT 0").to_arrow_table().schema
        pb = list(partition_by or [])
        constant = dict(constant or {})
        tag = uuid.uuid4().hex
        opts = ["FORMAT parquet", *PARQUET_OPTIONS, "RETURN_STATS true"]
        if pb and set(pb) <= set(constant):
            folder = _constant_folder(root, {c: constant[c] for c in pb})
            target = folder / f"part-{tag}.parquet"
            body = f"SELECT * EXCLUDE ({', '.join(pb)}) FROM ({select})"
            cleanup = [target]
        elif pb:
            opts += ["PARTITION_BY (" + ", ".join(pb) + ")", "APPEND", f"FILENAME_PATTERN 'part-{tag}-{{uuid}}'"]
            target, body, cleanup = root, select, None
        else:
            target = root / f"part-{tag}.parquet"
            body, cleanup = select, [target]
        try:
            res = con.sql(f"COPY ({body}) TO '{target}' ({', '.join(opts)})").fetchall()
        except BaseException:
            for f in (cleanup if cleanup is not None else root.rglob(f"part-{tag}*.parquet")):
                Path(f).unlink(missing_ok=True)
            raise
        files, stats = [], {}
        for r in res:
            f = Path(r[0])
            if not f.is_absolute():
                f = Path.cwd() / f
            if r[1] == 0 and pb:
                f.unlink(missing_ok=True)
                continue
            files.append(f)
            stats[str(f)] = (int(r[2]), int(r[1]))
        ordered = pa.schema([*(f for f in schema if f.name not in pb), *(schema.field(c) for c in pb)])
        return CopiedFiles(name, files, stats, ordered, pb)

    def copy_batches(self, name: str, batches, constant: Mapping[str, str] | None = None,
                     max_rows_per_file: int = 1_000_000, dictionary: Sequence[str] | None = None) -> "CopiedFiles":
        """Arrow record batches written as new Parquet files under the table root (all threads: pyarrow's
        dataset writer), NOT committed, like `copy_query`. `constant` names the partition columns and their
        one value (the batches do not carry them): the files go into that partition's folder. `dictionary`
        limits Parquet dictionary encoding to those columns (default: all). A failed write leaves nothing
        behind."""
        import uuid

        import pyarrow.dataset as pads_

        constant = dict(constant or {})
        folder = _constant_folder(self.path(name), constant)
        tag = uuid.uuid4().hex
        written: list = []
        opts = pads_.ParquetFileFormat().make_write_options(
            compression=PARQUET_CODEC, compression_level=PARQUET_LEVEL,
            use_dictionary=list(dictionary) if dictionary is not None else True)
        try:
            pads_.write_dataset(batches, str(folder), format="parquet", file_options=opts,
                                basename_template=f"part-{tag}-{{i}}.parquet", existing_data_behavior="overwrite_or_ignore",
                                max_rows_per_file=max_rows_per_file, max_rows_per_group=min(max_rows_per_file, 131_072),
                                file_visitor=lambda f: written.append((f.path, f.size, f.metadata.num_rows)))
        except BaseException:
            for f in folder.glob(f"part-{tag}-*.parquet"):
                f.unlink(missing_ok=True)
            raise
        files = [Path(p) for p, _, _ in written]
        stats = {str(Path(p)): (int(size), int(rows)) for p, size, rows in written}
        schema = batches.schema
        for c in constant:
            schema = schema.append(pa.field(c, pa.string()))
        return CopiedFiles(name, files, stats, schema, list(constant))

    def commit_copied(self, copied: "CopiedFiles", mode: str = "append", partition_filters: list | None = None) -> int:
        name, schema = copied.name, copied.schema
        if not copied.files and self.exists(name) and mode == "append":
            return self.version(name)
        if self.exists(name) and mode == "append":
            current = self.schema(name)
            if set(current.names) == set(schema.names):   # same columns: keep the table's order
                schema = pa.schema([schema.field(n) for n in current.names])
        return self.commit_files(name, copied.files, schema, copied.partition_by, mode=mode,
                                 partition_filters=partition_filters, stats=copied.stats)

    @staticmethod
    def discard_copied(copied: "CopiedFiles") -> None:
        for f in copied.files:
            Path(f).unlink(missing_ok=True)

    # ---------- maintenance ----------
    def optimize(self, name: str) -> dict:
        return self.delta(name).optimize.compact()

    def vacuum(self, name: str, retention_hours: int, dry_run: bool = False) -> list[str]:
        return self.delta(name).vacuum(retention_hours=retention_hours, dry_run=dry_run,
                                       enforce_retention_duration=False)

    def versions(self, names: Iterable[str]) -> dict[str, int]:
        """Current Delta version of each existing table (the `input_versions` of a run)."""
        return {n: self.version(n) for n in names if self.exists(n)}


def _constant_folder(root: Path, values: Mapping[str, str]) -> Path:
    """The (created) Hive folder of one partition, e.g. `<root>/_drop=<drop id, escaped>`."""
    from urllib.parse import quote

    folder = root.joinpath(*(f"{c}={quote(str(v), safe='')}" for c, v in values.items()))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _pb(partition_by):
    return list(partition_by) if partition_by else None


def utcnow() -> dt.datetime:
    """The one clock of the pipeline (callers pass it down; transformations never read it)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
