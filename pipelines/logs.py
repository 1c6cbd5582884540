"""One logging configuration, and whether progress is shown.

`configure()` is called once by the command line (and by nothing else: under Airflow the task's own
logging stays in charge). FundGuard logs under `fundguard.*` at INFO; the libraries it drives (MLflow,
Great Expectations, Alembic, SQLAlchemy, py4j, Airflow's providers) are held at WARNING, so a run prints
what FundGuard did, not the libraries' chatter ("Skipping registering function", "Creating initial MLflow
database tables", …). `quiet_libraries()` applies only the library levels (what a DAG task calls).

Progress (bars, per-file and per-batch lines) is for a person at a terminal: `show_progress()` is false
when stderr is not a TTY (piped, in CI) or under Airflow (`AIRFLOW_CTX_DAG_ID` is set in task processes).
"""
from __future__ import annotations

import logging
import os
import sys

#: libraries whose INFO lines are noise for FundGuard's users
NOISY = ("mlflow", "great_expectations", "alembic", "sqlalchemy", "py4j", "urllib3", "numexpr", "matplotlib",
         "airflow.providers", "httpx", "git")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def quiet_libraries(level: int = logging.WARNING) -> None:
    """Hold the libraries at `level` (MLflow sets its own level when imported: it reads MLFLOW_LOGGING_LEVEL)."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", logging.getLevelName(level))
    for name in NOISY:
        logging.getLogger(name).setLevel(level)


def under_airflow() -> bool:
    return bool(os.environ.get("AIRFLOW_CTX_DAG_ID"))


def show_progress(stream=None) -> bool:
    """Progress only for a person at a terminal: not when piped, not under Airflow."""
    stream = stream or sys.stderr
    return not under_airflow() and bool(getattr(stream, "isatty", lambda: False)())


def configure(verbose: bool = False) -> None:
    """The command line's logging: FundGuard at INFO (DEBUG when verbose) to stderr, libraries at WARNING."""
    root = logging.getLogger()
    if not any(getattr(h, "_fundguard", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
        handler._fundguard = True
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("fundguard").setLevel(logging.DEBUG if verbose else logging.INFO)
    quiet_libraries()
