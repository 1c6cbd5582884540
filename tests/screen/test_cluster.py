"""Spark beyond one machine: a standalone master and two workers on 127.0.0.1, started from the installed
pyspark, run the rule library through spark://127.0.0.1:<port>; the staging list equals DuckDB's."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import config
from pipelines.app.load import load_drop
from pipelines.catalog import load_catalog
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import screen
from pipelines.storage import Lake

pytestmark = [pytest.mark.cluster, pytest.mark.spark]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1",
               PYSPARK_PYTHON=sys.executable, SPARK_WORKER_DIR=str(tmp_path_factory.mktemp("work")))
    port, ui = free_port(), free_port()
    logs = tmp_path_factory.mktemp("logs")
    procs = [subprocess.Popen([str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)], env=env,
                              stdout=open(logs / "master.log", "w"), stderr=subprocess.STDOUT)]
    try:
        wait_for_port(port)
        for i in range(2):
            procs.append(subprocess.Popen(
                [str(spark_class), "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                 "--cores", "1", "--memory", "768m", "--webui-port", str(free_port()), f"spark://127.0.0.1:{port}"],
                env=env, stdout=open(logs / f"worker{i}.log", "w"), stderr=subprocess.STDOUT))
        deadline = time.time() + 60
        while time.time() < deadline and (logs / "master.log").read_text().count("Registering worker") < 2:
            time.sleep(0.5)
        assert (logs / "master.log").read_text().count("Registering worker") == 2, (logs / "master.log").read_text()
        yield f"spark://127.0.0.1:{port}", env
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


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
