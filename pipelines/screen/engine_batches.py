"""What the engines add for batched screening (`batched.py`): reading part of a snapshot (an institution
batch's files, a person bucket's rows), the stable person-bucket expression in each dialect, bounding
memory, and writing a batch's suspects as uncommitted staging files. Mixed into the engines of
`engines.py`."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import duckdb
import pyarrow as pa

from pipelines.contract import SUSPECT_SCHEMA
from pipelines.screen.sql import to_duckdb
from pipelines.storage import CopiedFiles, Lake, NativeSnapshot, native_select, sql_ident

#: DuckDB types of the suspect columns that are not VARCHAR (contract.SUSPECT_SCHEMA)
_DUCK_SUSPECT = {"rule_version": "INTEGER", "event_time": "TIMESTAMP", "amount": "DECIMAL(16,2)",
                 "published_at": "TIMESTAMPTZ"}


class DuckDBBatches:
    """Batched screening on DuckDB (mixed into DuckDBEngine: uses its `con`, `_create`, `register_arrow`)."""

    def register_part(self, view: str, lake: Lake, table: str, version: int | None, *,
                      files: Sequence[str] | None = None, where: str | None = None,
                      materialize: bool = False, columns: Sequence[str] | None = None) -> None:
        """Part of a snapshot as a view or table: only `files` (absolute paths of the snapshot's data files,
        empty = no rows), and only the rows meeting `where` (this engine's SQL, e.g. `bucket_expr(...) = 3`)."""
        snap = lake.native_files(table, version)
        if files is not None and snap is None and files:
            raise ValueError(f"{table}: a subset of files needs a natively readable snapshot")
        if snap is not None and files is not None:
            keep = set(files)
            ix = [i for i, f in enumerate(snap.files) if f in keep]
            snap = NativeSnapshot([snap.files[i] for i in ix], snap.partition_by, snap.schema,
                                  [snap.values[i] for i in ix] if snap.values else None)
        if files is not None and not files:
            schema = pa.schema(lake.delta(table, version).schema().to_arrow())
            self.register_arrow(view, schema.empty_table().select(list(columns) if columns else schema.names))
            return
        kind = "TABLE" if materialize else "VIEW"
        cond = f" WHERE {where}" if where else ""
        if snap is not None:
            for union in (False, True):
                select = native_select(snap, union=union, columns=columns)
                try:
                    self._create(kind, view, f"SELECT * FROM ({select}){cond}")
                    return
                except (duckdb.BinderException, duckdb.InvalidInputException):
                    continue
        ds = lake.dataset(table, version)
        self._keep.append(ds)
        self.con.register(f"__ds_{view}", ds)
        cols = ", ".join(sql_ident(c) for c in columns) if columns else "*"
        self._create(kind, view, f'SELECT {cols} FROM "__ds_{view}"{cond}')

    def bucket_copy(self, lake: Lake, table: str, version: int | None, columns: Sequence[str] | None,
                    buckets: int, folder: Path, budget: int | None) -> dict[int, list[str]] | None:
        """The snapshot's `columns` written once into `folder` as Parquet split by person bucket (one scan
        and one hash of every row), so that each person job then reads only its buckets' files instead of
        every file of the table. {bucket: files}; None when the snapshot is not natively readable.

        DuckDB's partitioned writer buffers each open partition up to `partitioned_write_flush_threshold`
        rows; the threshold is set so that all buckets together hold about a quarter of the budget."""
        snap = lake.native_files(table, version)
        select = native_select(snap, columns=columns) if snap is not None else None
        if select is None:
            return None
        width = 16 * max(len(columns or snap.schema.names), 1)
        rows = max(10_000, int((budget or 4 * 2**30) * 0.25 / (buckets * width)))
        out = Path(folder) / table.replace("/", "__")
        quoted = str(out).replace("'", "''")
        self.con.execute(f"SET partitioned_write_flush_threshold = {rows}")
        self.con.execute(f"COPY (SELECT *, {self.bucket_expr('psn_no', buckets)} AS _bucket FROM ({select})) "
                         f"TO '{quoted}' (FORMAT parquet, PARTITION_BY (_bucket), COMPRESSION zstd, "
                         f"COMPRESSION_LEVEL 1, OVERWRITE_OR_IGNORE)")
        files: dict[int, list[str]] = {}
        for d in out.glob("_bucket=*") if out.exists() else []:
            files[int(d.name.split("=", 1)[1])] = sorted(str(f) for f in d.glob("*.parquet"))
        return files

    def register_files(self, view: str, files: Sequence[str], schema: pa.Schema, *, materialize: bool) -> None:
        """Parquet files a `bucket_copy` wrote (the columns of `schema`) as a view or table; none = no rows."""
        if not files:
            self.register_arrow(view, schema.empty_table())
            return
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        cols = ", ".join(sql_ident(n) for n in schema.names)
        self._create("TABLE" if materialize else "VIEW", view,
                     f"SELECT {cols} FROM read_parquet([{listed}], hive_partitioning = false)")

    def set_memory(self, budget: int) -> None:
        """Bound DuckDB to a memory budget (bytes): its buffer pool gets the budget less the process's own
        share (`plan.BASE_BYTES`); beyond it, joins, sorts and temp tables spill to a temporary folder."""
        import tempfile

        from pipelines.screen.plan import BASE_BYTES

        limit = max(budget - BASE_BYTES, 256 * 2**20)
        self.con.execute(f"SET memory_limit = '{limit // 2**20}MB'")
        if not getattr(self, "_spill", None):
            self._spill = tempfile.mkdtemp(prefix="fundguard-spill-")
            self.con.execute(f"SET temp_directory = '{self._spill}'")

    def end_run(self) -> None:
        """The batches are over: drop every table they materialised (the shared inputs, the last batch's
        inputs and views), so that building the run's list and counting its scope do not add to memory the
        budget already gave DuckDB. The engine's views are then unusable until inputs are registered again."""
        tables = self.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
        for (name,) in tables:
            self.con.execute(f'DROP TABLE IF EXISTS "{name}"')

    @staticmethod
    def bucket_expr(column: str, buckets: int) -> str:
        """The person bucket of `column` in DuckDB SQL: first 32 bits of md5 (null as ''), modulo (= plan.bucket_of)."""
        return f"(CAST(('0x' || substr(md5(coalesce({column}, '')), 1, 8)) AS UBIGINT) % {int(buckets)})"

    def stage(self, lake: Lake, table: str, queries: dict[str, str], partition_by: Sequence[str],
              groups: dict[str, str] | None = None):
        """Run each query (Spark SQL, suspect shape) and write their rows as new, uncommitted Parquet files
        under `table` (DuckDB's COPY). Returns (CopiedFiles, seconds and rows per query, the rows written as
        Arrow: the run's list is then built from the batches' rows instead of read back from thousands of
        small staging files, which cost 1.2 GB of Parquet metadata at 100 M lines)."""
        import time

        self.con.execute("DROP TABLE IF EXISTS _stage_rows")
        cols = ", ".join(f"CAST(NULL AS {_DUCK_SUSPECT.get(f.name, 'VARCHAR')}) AS {sql_ident(f.name)}"
                         for f in SUSPECT_SCHEMA)
        self.con.execute(f"CREATE TEMP TABLE _stage_rows AS SELECT {cols} LIMIT 0")
        names = ", ".join(sql_ident(n) for n in SUSPECT_SCHEMA.names)
        timings: dict[str, tuple[float, int]] = {}
        for key, q in queries.items():
            t0 = time.perf_counter()
            n = self.con.execute(f"INSERT INTO _stage_rows BY NAME SELECT {names} FROM ({to_duckdb(q)})").fetchone()[0]
            timings[key] = (time.perf_counter() - t0, int(n))
        copied = lake.copy_query(table, self.con, "SELECT * FROM _stage_rows", partition_by)
        rows = self.con.sql("SELECT * FROM _stage_rows").to_arrow_table()
        self.con.execute("DROP TABLE _stage_rows")
        return copied, timings, rows



class SparkBatches:
    """Batched screening on Spark (mixed into SparkEngine: uses its `spark`, `read_delta`, `_replace`)."""

    def register_part(self, view: str, lake: Lake, table: str, version: int | None, *,
                      files: Sequence[str] | None = None, where: str | None = None,
                      materialize: bool = False, columns: Sequence[str] | None = None) -> None:
        """Part of a snapshot (see DuckDBEngine.register_part): `files` are read as the plain Parquet they are
        (the planner passes them only for natively readable snapshots); materialised once per batch."""
        self._scratch_root = Path(lake.root) / "_tmp"
        if files is None:
            df = self.read_delta(lake, table, version)
        else:
            schema = spark_schema(pa.schema(lake.delta(table, version).schema().to_arrow()))
            df = (self.spark.read.schema(schema).option("basePath", lake.uri(table)).parquet(*files) if files
                  else self.spark.createDataFrame([], schema))
        if columns:
            df = df.select(*columns)
        if where:
            df = df.where(where)
        self._replace(view, df, materialize)

    @staticmethod
    def bucket_expr(column: str, buckets: int) -> str:
        """The person bucket of `column` in Spark SQL (= DuckDBEngine.bucket_expr, plan.bucket_of)."""
        return (f"pmod(CAST(conv(substr(md5(coalesce({column}, '')), 1, 8), 16, 10) AS BIGINT), {int(buckets)})")

    def stage(self, lake: Lake, table: str, queries: dict[str, str], partition_by: Sequence[str],
              groups: dict[str, str] | None = None):
        """A batch's suspects written by the executors as new, uncommitted Parquet files under `table`; nothing is
        collected on the driver. The rules of one family (`groups`: rule id -> family) run as one Spark job (a
        UNION ALL of their queries; a union of every rule's plan takes Catalyst longer to optimise than to run),
        up to `concurrent_jobs` families at once (one job's planning and its last small tasks overlap another's
        work), each into a scratch folder of the batch; one job then writes the batch's rows Hive-style by
        (institution, month) into the table, as DuckDB's COPY does: one file per partition and batch. Returns
        (CopiedFiles, seconds and -1 rows per query, None: the rows stay with the executors)."""
        import shutil
        import time
        import uuid
        from concurrent.futures import ThreadPoolExecutor

        families: dict[str, list[str]] = {}
        for key in queries:
            families.setdefault((groups or {}).get(key, key), []).append(key)
        scratch = Path(lake.root) / "_tmp" / f"spark-stage-{uuid.uuid4().hex}"
        timings: dict[str, tuple[float, int]] = {}

        def run(item):
            n, keys = item
            t0 = time.perf_counter()
            df = None
            for k in keys:
                part = self._suspect_shape(self.spark.sql(queries[k]))
                df = part if df is None else df.unionByName(part)
            df.write.mode("overwrite").option("compression", "snappy").parquet(str(scratch / f"f{n:03d}"))
            spent = time.perf_counter() - t0
            return {k: (spent / len(keys), -1) for k in keys}

        try:
            with ThreadPoolExecutor(max_workers=max(1, getattr(self, "concurrent_jobs", 1))) as pool:
                for t in pool.map(run, enumerate(families.values())):
                    timings.update(t)
            if not families:
                return lake_copied_empty(lake, table, partition_by), {}, None
            rows = (self.spark.read.schema(spark_schema(SUSPECT_SCHEMA))
                    .parquet(*(str(scratch / f"f{n:03d}") for n in range(len(families)))))
            copied = write_spark_parquet(lake, table, rows.repartition(*partition_by), partition_by)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return copied, timings, None

    def _suspect_shape(self, df):
        """A rule's rows in the suspect columns and types (naive timestamps as TIMESTAMP_NTZ, as pyspark maps
        Arrow's), so that every family's scratch files share one schema."""
        from pyspark.sql import functions as F

        return df.select(*(F.col(f.name).cast(f.dataType).alias(f.name) for f in spark_schema(SUSPECT_SCHEMA)))

    def release(self) -> None:
        """Drop the cached inputs and views of the batch (before a failed batch is retried alone)."""
        for df in self._cached.values():
            df.unpersist()
        self._cached.clear()
        self._drop_written()

    def end_run(self) -> None:
        """The batches are over: release the last batch's cached inputs."""
        self.release()


def spark_schema(schema: pa.Schema):
    """An Arrow schema as Spark's StructType (pyspark's own mapping)."""
    from pyspark.sql.pandas.types import from_arrow_schema
    return from_arrow_schema(schema)


def lake_copied_empty(lake: Lake, table: str, partition_by: Sequence[str]) -> CopiedFiles:
    return CopiedFiles(table, [], {}, SUSPECT_SCHEMA, list(partition_by))


def write_spark_parquet(lake: Lake, table: str, df, partition_by: Sequence[str]):
    """Spark's executors write Hive-style Parquet into the table root: the new files, NOT committed."""
    from pyspark.sql.pandas.types import to_arrow_schema

    root = Path(lake.uri(table))
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.rglob("*.parquet"))
    df.write.mode("append").partitionBy(*partition_by).option("compression", "snappy").parquet(str(root))
    for junk in list(root.rglob("_SUCCESS")) + list(root.rglob(".*.crc")):
        junk.unlink(missing_ok=True)
    new_files = sorted(p for p in root.rglob("*.parquet") if p not in before)
    schema = to_arrow_schema(df.schema, timezone="UTC")
    ordered = pa.schema([*(f for f in schema if f.name not in partition_by),
                         *(schema.field(c) for c in partition_by)])
    return CopiedFiles(table, new_files, {}, ordered, list(partition_by))


