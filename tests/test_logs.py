"""pipelines/logs.py: one logging configuration; progress only for a person at a terminal."""
from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import pytest

from pipelines import logs


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_at_a_terminal_and_never_under_airflow(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    assert logs.show_progress(Tty()) is True
    assert logs.show_progress(io.StringIO()) is False               # piped
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "fundguard_screen")
    assert logs.show_progress(Tty()) is False                       # a task log


def test_configure_holds_the_libraries_at_warning_and_fundguard_at_info():
    logs.configure()
    assert logging.getLogger("fundguard.ingest").getEffectiveLevel() == logging.INFO
    for name in ("mlflow.store.db.utils", "great_expectations.expectations.registry", "alembic.runtime"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name
    logs.configure()
    assert sum(getattr(h, "_fundguard", False) for h in logging.getLogger().handlers) == 1   # configured once


@pytest.mark.slow
def test_a_piped_run_reads_top_to_bottom_without_library_noise(small_drop, tmp_path):
    """`fundguard run` piped: the reconciliation comes first (as the load ends), then the summary; no MLflow
    or Great Expectations INFO line, no progress bar."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_LOGGING")}
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--landing", str(small_drop), "--lake",
                           str(tmp_path / "lake")], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out, err = proc.stdout, proc.stderr
    assert out.index("入库对账 reconciliation") < out.index("疑点 Suspects")
    assert "INFO mlflow" not in err and "Skipping registering" not in err and "Creating initial MLflow" not in err
    assert "\r" not in err                                          # no progress bar when piped


def test_export_shows_progress_per_institution_only_at_a_terminal(monkeypatch, capsys, tmp_path):
    import pyarrow as pa

    from pipelines.app import exports
    from pipelines.contract import SUSPECT_SCHEMA
    from pipelines.storage import utcnow

    empty = SUSPECT_SCHEMA.empty_table()
    monkeypatch.setattr(exports, "institution_name", lambda lake, code: None)
    pairs = [("H1", "2023-01"), ("H2", "2023-01")]
    monkeypatch.setattr(exports, "show_progress", lambda: True)
    exports.export_packages(None, pairs, tmp_path / "a", generated_at=utcnow(), conf={}, rows=empty, version=0)
    err = capsys.readouterr().err
    assert "[1/2] H1" in err and "[2/2] H2" in err
    monkeypatch.setattr(exports, "show_progress", lambda: False)
    exports.export_packages(None, pairs, tmp_path / "b", generated_at=utcnow(), conf={}, rows=empty, version=0)
    assert capsys.readouterr().err == ""
    assert isinstance(empty, pa.Table)
