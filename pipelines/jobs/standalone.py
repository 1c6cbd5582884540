"""A Spark standalone cluster on this machine: a master and N workers on 127.0.0.1, started from the installed
pyspark's `spark-class` (no download), for the cluster test and the Spark benchmark.

    with standalone_cluster(workers=2, cores=1, memory="2g", folder=tmp) as (master_url, env):
        ... spark_session(master=master_url) ...

Each worker gets `cores` cores and `memory` for its executors; the master's log says when every worker has
registered. The processes are ended (terminate, then kill) when the block exits.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path


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


@contextmanager
def standalone_cluster(workers: int, folder: Path, cores: int = 1, memory: str = "768m", timeout: float = 60):
    """(master URL, environment for a driver or `fundguard` child to reach it) while the cluster runs."""
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    folder = Path(folder)
    (folder / "work").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1", PYSPARK_PYTHON=sys.executable,
               SPARK_WORKER_DIR=str(folder / "work"))
    port, log = free_port(), folder / "master.log"
    procs = [subprocess.Popen([str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(free_port())], env=env,
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)]
    try:
        wait_for_port(port, timeout)
        for i in range(workers):
            procs.append(subprocess.Popen(
                [str(spark_class), "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores",
                 str(cores), "--memory", memory, "--webui-port", str(free_port()), f"spark://127.0.0.1:{port}"],
                env=env, stdout=open(folder / f"worker{i}.log", "w"), stderr=subprocess.STDOUT))
        deadline = time.time() + timeout
        while time.time() < deadline and log.read_text().count("Registering worker") < workers:
            time.sleep(0.5)
        if log.read_text().count("Registering worker") != workers:
            raise RuntimeError(f"{workers} workers did not register:\n{log.read_text()[-3000:]}")
        yield f"spark://127.0.0.1:{port}", env
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
