"""Spark beyond one machine: a standalone master and two workers on 127.0.0.1, started from the installed
pyspark, run the rule library through spark://127.0.0.1:<port>; the staging list equals DuckDB's."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines import config
from pipelines.app.load import load_drop
from pipelines.catalog import load_catalog
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import screen
from pipelines.storage import Lake

pytestmark = [pytest.mark.cluster, pytest.mark.spark]


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    from pipelines.jobs.standalone import standalone_cluster as cluster

    with cluster(workers=2, folder=tmp_path_factory.mktemp("cluster"), cores=1, memory="768m") as (master, env):
        yield master, env


def test_library_runs_on_a_standalone_cluster(standalone_cluster, small_drop, tmp_path):
    master, env = standalone_cluster
    lake = Lake(tmp_path / "lake")
    load_drop(small_drop, lake, config.load(), progress=False)
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "screen", "--lake", str(lake.root), "--engine", "spark", "--quiet"],
        env=dict(env, SPARK_MASTER=master, SPARK_EXECUTOR_MEMORY="512m"),
        capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    staged = lake.read("staging/suspects")
    catalog = load_catalog()
    expected = screen(lake, DuckDBEngine(), catalog, catalog.select(), run_id="x", write_staging=False,
                      progress=False).suspects
    cols = ["suspect_id", "amount", "evidence"]
    key = lambda r: r["suspect_id"]
    assert staged.num_rows > 0
    assert sorted(staged.select(cols).to_pylist(), key=key) == sorted(expected.select(cols).to_pylist(), key=key)
