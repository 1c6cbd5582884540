"""Reading a lake table from outside FundGuard returns the snapshot, never the rows Delta removed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from pipelines import open_table
from pipelines.storage import Lake
from pipelines.storage.readers import snapshot_files, spark_dataframe

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def overwritten(tmp_path) -> Lake:
    """gold/suspects written twice: version 0 holds s1, s2; version 1 (current) holds s3 only."""
    lake = Lake(tmp_path / "lake")
    lake.append("gold/suspects", pa.table({"suspect_id": ["s1", "s2"], "period": ["2023-01", "2023-02"]}),
                partition_by=["period"])
    lake.overwrite("gold/suspects", pa.table({"suspect_id": ["s3"], "period": ["2023-01"]}), partition_by=["period"])
    return lake


def test_a_folder_glob_reads_stale_rows_the_snapshot_does_not(overwritten):
    folder = overwritten.path("gold/suspects")
    stale = pd.read_parquet(folder)                              # what an analyst gets without the log
    assert sorted(stale["suspect_id"]) == ["s1", "s2", "s3"]
    ds = open_table(overwritten.root, "gold/suspects")
    assert ds.to_table().to_pandas()["suspect_id"].tolist() == ["s3"]                              # pandas
    assert duckdb.sql("SELECT suspect_id FROM ds").fetchall() == [("s3",)]                          # DuckDB
    assert pl.scan_pyarrow_dataset(ds).collect()["suspect_id"].to_list() == ["s3"]                  # Polars
    assert open_table(folder).to_table().column("suspect_id").to_pylist() == ["s3"]   # the folder alone
    assert sorted(open_table(folder, version=0).to_table().column("suspect_id").to_pylist()) == ["s1", "s2"]
    assert len(snapshot_files(folder)) == 1


@pytest.mark.spark
def test_spark_without_delta_jars_reads_the_snapshot_with_partitions(overwritten, spark):
    df = spark_dataframe(spark, overwritten.root, "gold/suspects")
    assert [(r.suspect_id, r.period) for r in df.collect()] == [("s3", "2023-01")]
    old = spark_dataframe(spark, overwritten.root, "gold/suspects", version=0)
    assert sorted(r.suspect_id for r in old.collect()) == ["s1", "s2"]


SNIPPET = """
from pipelines import open_table
import duckdb
ds = open_table("{lake}", "gold/suspects")
print(duckdb.sql("SELECT count(*) FROM ds").fetchall()[0][0])
"""


@pytest.mark.slow
def test_the_readme_snippet_never_aborts(overwritten):
    """The README's DuckDB snippet, run 50 times in fresh interpreters: never rc 134 (delta-rs at exit)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'open_table("data/lake", "gold/suspects")' in readme, "the README shows the same snippet"
    code = SNIPPET.format(lake=overwritten.root)
    codes = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode
             for _ in range(50)]
    assert codes == [0] * 50
