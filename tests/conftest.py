"""Shared fixtures: one Spark session for the whole run (local[2], UI off, few shuffle partitions)."""
from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("FUNDGUARD_ENV", "ci")
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
warnings.filterwarnings("ignore", message=".*SADeprecationWarning.*")


@pytest.fixture(scope="session")
def spark():
    from pipelines.screen.engines import spark_session

    session = spark_session(master="local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_engine(spark):
    from pipelines.screen.engines import SparkEngine

    return SparkEngine(spark=spark)

# py4j logs "Closing down clientserver connection" at interpreter exit, after pytest closed its streams
import logging  # noqa: E402

logging.getLogger("py4j").setLevel(logging.WARNING)
