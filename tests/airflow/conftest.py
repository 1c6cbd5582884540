"""Airflow test environment, set before anything imports airflow: a throw-away AIRFLOW_HOME (SQLite,
migrated once per session), this repo's dags/ folder, no example DAGs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
AIRFLOW_HOME = Path(tempfile.gettempdir()) / f"fundguard-airflow-{os.getpid()}"

if "airflow" not in sys.modules:    # airflow reads its configuration once, at import
    os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"] = "120"


@pytest.fixture(scope="session")
def airflow_db():
    """`airflow db migrate` once on the fresh AIRFLOW_HOME (about 6 s)."""
    if os.environ.get("AIRFLOW_HOME") != str(AIRFLOW_HOME):
        pytest.skip("airflow was imported before tests/airflow/conftest.py could set AIRFLOW_HOME")
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=os.environ.copy(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    yield AIRFLOW_HOME
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)
