"""Reading a lake table correctly from outside FundGuard (analysts' notebooks, other tools).

A Delta table's folder holds every file any version ever wrote; only its log says which files make up
the current snapshot. A plain `pd.read_parquet(folder)` or a DuckDB/Polars/Spark Parquet glob over the
folder therefore also reads rows that Delta has removed (stale rows). Read through the snapshot instead:

    from pipelines import open_table
    ds = open_table("data/lake", "gold/suspects")             # pyarrow Dataset of the current snapshot
    ds.to_table().to_pandas()                                   # pandas
    duckdb.sql("SELECT category, count(*) FROM ds GROUP BY 1")  # DuckDB (a Python variable named ds)
    polars.scan_pyarrow_dataset(ds)                             # Polars (lazy)
    spark_dataframe(spark, "data/lake", "gold/suspects")        # Spark, with or without delta-spark

`version=` reads an older snapshot (time travel). The dataset is opened on a sub-tree file system rooted
at the table (delta-rs' default file system can abort the interpreter at exit, stack notes).
"""
from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as pads


def _resolve(lake_or_table: str | Path, table: str | None):
    """(Lake, table name) from a lake root and a name, or from a table folder alone."""
    from pipelines.storage import SINGLE_TABLES, Lake

    if table is not None:
        return Lake(lake_or_table), table
    path = Path(lake_or_table).resolve()
    if path.name in SINGLE_TABLES:
        return Lake(path.parent), path.name
    return Lake(path.parent.parent), f"{path.parent.name}/{path.name}"


def open_table(lake_or_table: str | Path, table: str | None = None, version: int | None = None) -> pads.Dataset:
    """The current (or `version`'s) snapshot of a lake table as a pyarrow Dataset:
    `open_table("data/lake", "silver/fee_list_net")` or `open_table("data/lake/silver/fee_list_net")`."""
    lake, name = _resolve(lake_or_table, table)
    return lake.dataset(name, version)


def snapshot_files(lake_or_table: str | Path, table: str | None = None, version: int | None = None) -> list[str]:
    """The data files of one snapshot (absolute URIs): what a plain Parquet reader may read, and nothing else."""
    lake, name = _resolve(lake_or_table, table)
    return lake.file_uris(name, version)


def spark_dataframe(spark, lake_or_table: str | Path, table: str | None = None, version: int | None = None):
    """A Spark DataFrame of one snapshot. With delta-spark configured on the session: `format("delta")` (with
    `versionAsOf`); without it: the snapshot's own files, read as Parquet with the table root as basePath
    so the partition columns come back (never the folder: it also holds removed files)."""
    lake, name = _resolve(lake_or_table, table)
    root = lake.uri(name)
    if _has_delta(spark):
        reader = spark.read.format("delta")
        return (reader.option("versionAsOf", version) if version is not None else reader).load(root)
    return spark.read.option("basePath", root).parquet(*lake.file_uris(name, version))


def _has_delta(spark) -> bool:
    try:
        spark._jvm.java.lang.Class.forName("io.delta.sql.DeltaSparkSessionExtension")
        return "DeltaSparkSessionExtension" in (spark.conf.get("spark.sql.extensions", "") or "")
    except Exception:                                   # noqa: BLE001  (py4j raises its own errors)
        return False
