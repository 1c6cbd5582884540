"""Two engines, one rule library: `duckdb` (embedded, default) and `spark` (local or a cluster).

Both take the same Spark SQL; DuckDB gets it through sqlglot (`pipelines.screen.sql.to_duckdb`).
Reading and writing Delta:
- duckdb: delta-rs snapshots as Arrow datasets, results written with delta-rs.
- spark: delta-spark when its jars are on the classpath; otherwise the snapshot's Parquet files are read
  natively and Spark's Parquet output is committed with delta-rs' write transaction. Either way the
  tables are plain Delta tables.
"""
from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Sequence

import duckdb
import pyarrow as pa

from pipelines import config
from pipelines.contract import SUSPECT_SCHEMA
from pipelines.screen.sql import to_duckdb
from pipelines.screen.engine_batches import DuckDBBatches, SparkBatches, spark_schema, write_spark_parquet
from pipelines.storage import Lake, native_select, sql_ident



class DuckDBEngine(DuckDBBatches):
    """In-process DuckDB over delta-rs snapshots."""

    name = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None):
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        # no rule depends on scan order (results are sorted; windows order explicitly): scans run unordered,
        # which halves the cost of reading many small partition files
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("SET enable_progress_bar = false")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self._keep: list = []
        self._fast: dict[str, tuple] = {}    # view -> (snapshot, columns) read without union_by_name

    def register_table(self, view: str, lake: Lake, table: str, version: int | None = None,
                       materialize: bool = False, columns: Sequence[str] | None = None) -> None:
        """One snapshot as a view (or, with `materialize`, a temp table read once), with `columns` only when
        given.

        Read with DuckDB's own parallel Parquet reader over the snapshot's files when a plain reader may
        read them (`Lake.native_files`): first as if every file had the table's columns (the common case;
        cheapest), then with `union_by_name` when a file lacks one (schema evolution); through delta-rs'
        Arrow dataset when neither binds. A view read the first way that meets a file without a column
        is re-read the second way (`create_view` retries)."""
        kind = "TABLE" if materialize else "VIEW"
        snap = lake.native_files(table, version)
        self._fast.pop(view, None)
        for union in (False, True):
            select = native_select(snap, union=union, columns=columns) if snap is not None else None
            if select is None:
                break
            try:
                self._create(kind, view, select)
            except (duckdb.BinderException, duckdb.InvalidInputException):
                continue   # a file without one of the table's columns
            if not union and not materialize:
                self._fast[view] = (snap, columns)
            return
        ds = lake.dataset(table, version)
        self._keep.append(ds)
        self.con.register(f"__ds_{view}", ds)
        cols = ", ".join(sql_ident(c) for c in columns) if columns else "*"
        self._create(kind, view, f'SELECT {cols} FROM "__ds_{view}"')

    def _reread_with_union(self) -> bool:
        """Re-register every view read without union_by_name with it (after a schema mismatch)."""
        fast, self._fast = self._fast, {}
        for view, (snap, columns) in fast.items():
            self._create("VIEW", view, native_select(snap, union=True, columns=columns))
        return bool(fast)

    def _create(self, kind: str, name: str, select: str) -> None:
        """CREATE TEMP VIEW/TABLE `name`, replacing a view or table of that name."""
        old = self.con.execute("SELECT 'VIEW' FROM duckdb_views() WHERE temporary AND view_name = ? UNION ALL "
                               "SELECT 'TABLE' FROM duckdb_tables() WHERE temporary AND table_name = ?",
                               [name, name]).fetchall()
        for (k,) in old:
            self.con.execute(f'DROP {k} "{name}"')
        self.con.execute(f'CREATE TEMP {kind} "{name}" AS {select}')

    def register_arrow(self, view: str, data: pa.Table) -> None:
        self._keep.append(data)
        self.con.register(f"__ds_{view}", data)
        self._create("VIEW", view, f'SELECT * FROM "__ds_{view}"')

    def create_view(self, view: str, spark_sql: str, materialize: bool = False,
                    cluster_by: str | None = None) -> None:
        """A view, or with `materialize` a table computed once; `cluster_by` orders the stored table, so that
        scans filtered or joined on that column skip row groups by their min/max."""
        kind = "TABLE" if materialize else "VIEW"
        sql = to_duckdb(spark_sql)
        if materialize and cluster_by:
            sql = f'SELECT * FROM ({sql}) ORDER BY "{cluster_by}"'
        try:
            self._create(kind, view, sql)
        except duckdb.InvalidInputException:
            if not self._reread_with_union():
                raise
            self._create(kind, view, sql)

    def query(self, spark_sql: str) -> pa.Table:
        return self.con.sql(to_duckdb(spark_sql)).to_arrow_table()

    def collect(self, spark_sql_list: Sequence[str]) -> pa.Table:
        parts = [self.query(q).cast(SUSPECT_SCHEMA) for q in spark_sql_list]
        return pa.concat_tables(parts) if parts else SUSPECT_SCHEMA.empty_table()

    def write(self, lake: Lake, table: str, data: pa.Table, partition_by: Sequence[str]) -> int:
        return lake.overwrite(table, data, partition_by)

    def close(self) -> None:
        self.con.close()
        if getattr(self, "_spill", None):
            import shutil
            shutil.rmtree(self._spill, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ spark

def delta_jars_available() -> bool:
    """True when delta-spark's jars are on the classpath of the installed Spark (clusters, the image)."""
    if os.environ.get("FUNDGUARD_DELTA_JARS"):
        return True
    try:
        import pyspark
    except ImportError:
        return False
    roots = [Path(pyspark.__file__).parent / "jars"]
    if os.environ.get("SPARK_HOME"):
        roots.append(Path(os.environ["SPARK_HOME"]) / "jars")
    return any(glob.glob(str(r / "delta-spark_*.jar")) for r in roots)


def spark_session(master: str | None = None, env: str | None = None):
    """The Spark session with the settings of conf/<env>/spark.yml (one per process)."""
    from pyspark.sql import SparkSession

    conf = config.load("spark", env)
    master = master or conf["master"]
    if master.startswith("local") or "127.0.0.1" in master:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(conf.get("app_name", "fundguard")).master(master)
    for k, v in (conf.get("conf") or {}).items():
        builder = builder.config(k, str(v))
    use_delta = conf.get("delta", "auto") == "delta-spark" or (conf.get("delta", "auto") == "auto"
                                                                 and delta_jars_available())
    if use_delta:
        builder = (builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
                   .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"))
    spark = builder.getOrCreate()
    spark.conf.set("fundguard.delta_spark", "true" if use_delta else "false")
    fit_to_cores(spark, conf)
    return spark


def fit_to_cores(spark, conf: dict) -> int:
    """Shuffle partitions from the cores the session has (`parallelism.shuffle_partitions_per_core` per core, at
    least 2), unless `conf:` sets `spark.sql.shuffle.partitions` itself; adaptive execution (which coalesces small
    partitions and splits skewed ones) from the cores too: on from `parallelism.adaptive_min_cores` cores, off
    below, where re-planning every stage costs more than it saves (docs/decisions.md §33), unless `conf:` sets
    `spark.sql.adaptive.enabled` itself. Returns the cores: on a standalone
    cluster, the executors' cores once they have registered (waiting up to `parallelism.wait_executors_s`)."""
    import time

    par = conf.get("parallelism") or {}
    sc = spark.sparkContext
    deadline = time.time() + float(par.get("wait_executors_s", 0) or 0)
    cores = sc.defaultParallelism
    while not sc.master.startswith("local") and time.time() < deadline:
        time.sleep(0.5)
        cores = sc.defaultParallelism
        if sc._jsc.sc().getExecutorMemoryStatus().size() > 1:       # the driver's own entry, then executors
            break
    if "spark.sql.shuffle.partitions" not in (conf.get("conf") or {}):
        per = int(par.get("shuffle_partitions_per_core", 2))
        spark.conf.set("spark.sql.shuffle.partitions", str(max(2, cores * per)))
    if "spark.sql.adaptive.enabled" not in (conf.get("conf") or {}):
        adaptive = cores >= int(par.get("adaptive_min_cores", 8))
        spark.conf.set("spark.sql.adaptive.enabled", "true" if adaptive else "false")
    spark.conf.set("fundguard.cores", str(cores))
    return cores


class SparkEngine(SparkBatches):
    """Spark SQL over the lake; Delta via delta-spark or via snapshot files + delta-rs commits."""

    name = "spark"
    #: always screened on the partitioned plan (`batched.py`), whole lake or not: the executors write the
    #: suspects, and the driver never collects a rule's rows
    executor_writes = True

    def __init__(self, spark=None, master: str | None = None):
        self.spark = spark or spark_session(master)
        self.use_delta_spark = self.spark.conf.get("fundguard.delta_spark", "false") == "true"
        par = config.load("spark").get("parallelism") or {}
        #: family jobs a batch runs at once (`parallelism.concurrent_jobs`; 0: the session's cores)
        self.concurrent_jobs = int(par.get("concurrent_jobs", 0)) or int(self.spark.conf.get("fundguard.cores", "2"))
        self._views: list[str] = []
        self._cached: dict = {}
        #: how a batch's inputs and shared views are kept (`materialise` in spark.yml): `parquet` writes them once
        #: into a scratch folder of the lake and reads them back with the vectorised Parquet reader (columns decoded
        #: lazily, in batches); `cache` keeps them in Spark's in-memory columnar cache, whose reader rebuilds every
        #: requested column of every row (strings copied) on each scan (docs/decisions.md §46)
        self.materialise = str(config.load("spark").get("materialise", "parquet"))
        self._written: dict[str, str] = {}       # view -> its scratch folder (parquet materialisation)
        self._scratch_root: Path | None = None

    # ---- reading
    def read_delta(self, lake: Lake, table: str, version: int | None = None):
        path = lake.uri(table)
        if self.use_delta_spark:
            reader = self.spark.read.format("delta")
            if version is not None:
                reader = reader.option("versionAsOf", version)
            return reader.load(path)
        from pyspark.sql.types import StructType
        arrow_schema = lake.delta(table, version).schema().to_arrow()
        schema = spark_schema(pa.schema(arrow_schema))
        files = lake.file_uris(table, version)
        if not files:
            return self.spark.createDataFrame([], StructType(schema.fields))
        return self.spark.read.schema(schema).option("basePath", path).parquet(*files)

    def register_table(self, view: str, lake: Lake, table: str, version: int | None = None,
                       materialize: bool = False, columns: Sequence[str] | None = None) -> None:
        self._scratch_root = Path(lake.root) / "_tmp"
        df = self.read_delta(lake, table, version)
        if columns:
            df = df.select(*columns)
        (df.cache() if materialize else df).createOrReplaceTempView(view)
        self._views.append(view)

    def _replace(self, view: str, df, materialize: bool) -> None:
        """Register `df` as `view` (materialised as `materialise` says), releasing what the DataFrame it replaces
        (the previous batch's) held."""
        old = self._cached.pop(view, None)
        if old is not None:
            old.unpersist()
        self._drop_written(view)
        if materialize and self.materialise == "parquet":
            df = self._write_scratch(view, df)
        elif materialize:
            df = self._cached[view] = df.cache()
        df.createOrReplaceTempView(view)
        self._views.append(view)

    def _write_scratch(self, view: str, df):
        """`df` written once as Parquet into a scratch folder of the lake (`<lake>/_tmp/spark-mat-*`, where the
        executors can reach it) and read back."""
        import tempfile
        import uuid

        root = self._scratch_root or Path(tempfile.gettempdir())
        folder = root / f"spark-mat-{view}-{uuid.uuid4().hex}"
        df.write.mode("overwrite").option("compression", "snappy").parquet(str(folder))
        self._written[view] = str(folder)
        return self.spark.read.parquet(str(folder))

    def _drop_written(self, view: str | None = None) -> None:
        import shutil

        for v in ([view] if view is not None else list(self._written)):
            folder = self._written.pop(v, None)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def register_arrow(self, view: str, data: pa.Table) -> None:
        self.from_arrow(data).createOrReplaceTempView(view)
        self._views.append(view)

    def from_arrow(self, data: pa.Table):
        return self.spark.createDataFrame(data, schema=spark_schema(data.schema))

    def create_view(self, view: str, spark_sql: str, materialize: bool = False,
                    partition_by: str | None = None, cluster_by: str | None = None) -> None:
        """`cluster_by` is a storage hint for engines with block skipping; Spark's cache has none to use."""
        df = self.spark.sql(spark_sql)
        if partition_by:
            df = df.repartition(partition_by)
        self._replace(view, df, materialize)

    def query_df(self, spark_sql: str):
        return self.spark.sql(spark_sql)

    def query(self, spark_sql: str) -> pa.Table:
        return self.spark.sql(spark_sql).toArrow()

    def collect(self, spark_sql_list: Sequence[str]) -> pa.Table:
        parts = [self.query(q).cast(SUSPECT_SCHEMA) for q in spark_sql_list]
        return pa.concat_tables(parts) if parts else SUSPECT_SCHEMA.empty_table()

    # ---- writing
    def write_df(self, lake: Lake, table: str, df, partition_by: Sequence[str], mode: str = "overwrite") -> int:
        """Write a DataFrame as a Delta table version (delta-spark, or Parquet + delta-rs commit)."""
        path = lake.uri(table)
        if self.use_delta_spark:
            (df.write.format("delta").mode(mode).option("overwriteSchema", "true")
             .partitionBy(*partition_by).save(path))
            return lake.version(table)
        return commit_spark_parquet(lake, table, df, partition_by, mode)

    def write(self, lake: Lake, table: str, data: pa.Table, partition_by: Sequence[str]) -> int:
        return self.write_df(lake, table, self.from_arrow(data), partition_by)

    def close(self) -> None:
        self.release()
        for v in self._views:
            self.spark.catalog.dropTempView(v)


def commit_spark_parquet(lake: Lake, table: str, df, partition_by: Sequence[str], mode: str) -> int:
    """Have Spark write Hive-style Parquet into the table root, then commit exactly those files with delta-rs."""
    copied = write_spark_parquet(lake, table, df, partition_by)
    return lake.commit_files(table, copied.files, copied.schema, partition_by, mode=mode)


def make_engine(name: str, **kwargs):
    if name == "duckdb":
        return DuckDBEngine(**kwargs)
    if name == "spark":
        return SparkEngine(**kwargs)
    raise ValueError(f"unknown engine {name!r}: use duckdb or spark")
