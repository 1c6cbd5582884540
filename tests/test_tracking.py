"""MLflow tracking: a run in a tmp sqlite store under the lake records params, metrics and artifacts."""
from __future__ import annotations

import os
from decimal import Decimal

import pyarrow as pa
import pytest

from pipelines.contract import SUSPECT_SCHEMA
from pipelines.storage import Lake
from pipelines.tracking import Tracker, log_rule_precision, metric_key, suspect_metrics, tracking_uri

CONF = {"mlflow": {"tracking_uri": "", "experiment": "fundguard-test"}}


def suspects() -> pa.Table:
    rows = [dict(suspect_id=f"s{i}", rule_id=r, rule_version=1, family=f, category=c, severity="violation",
                 fixmedins_code=h, period="2023-03", amount=Decimal(a))
            for i, (r, f, c, h, a) in enumerate([
                ("daily_cap_item", "daily_cap", "超量收费", "H1", "40.00"),
                ("daily_cap_item", "daily_cap", "超量收费", "H2", "10.50"),
                ("gender_restricted_drug", "gender_restricted", "超医保支付范围", "H1", "5.00")])]
    return pa.Table.from_pylist([{n: r.get(n) for n in SUSPECT_SCHEMA.names} for r in rows], schema=SUSPECT_SCHEMA)


def test_metric_keys_are_ascii_and_allowed():
    assert metric_key("hits", "category", "超量收费") == "hits.category.over_quantity"
    assert metric_key("hits", "institution", "H1:第一医院") == "hits.institution.H1_____"
    m = suspect_metrics(suspects(), rows_in={"silver/fee_list_net": 12})
    assert m["rows_in.silver/fee_list_net"] == 12
    assert m["hits.rule.daily_cap_item"] == 2 and m["amount.rule.daily_cap_item"] == 50.5
    assert m["hits.category.outside_payment_scope"] == 1
    assert m["hits.institution.H1"] == 2 and m["amount.total"] == 55.5


def test_tracker_records_a_run_under_the_lake(tmp_path, monkeypatch):
    from mlflow import MlflowClient
    monkeypatch.chdir(tmp_path)
    lake = Lake(tmp_path / "lake")
    report = tmp_path / "gate_report"
    report.mkdir()
    (report / "index.html").write_text("<html></html>", encoding="utf-8")
    with Tracker(lake, CONF, run_name="R1", tags={"fundguard.run_id": "R1"}) as t:
        t.log_run_params(engine="duckdb", periods=["2023-03"], fingerprint="abc123",
                         input_versions={"silver/fee_list_net": 3, "silver/mdtrt": 1})
        t.log_metrics(suspect_metrics(suspects(), rows_in={"silver/fee_list_net": 12}))
        t.log_metrics({"gate_success": 1, "gate.suspect_id_unique.unexpected": 0})
        t.log_artifact(report, "gate_report")
        t.log_dict({"failures": []}, "gate/results.json")
        t.log_rule_precision({"daily_cap_item": 0.75})
        run_id = t.run_id
    uri, artifacts = tracking_uri(lake, CONF)
    assert uri == f"sqlite:///{lake.root / '_mlflow' / 'mlflow.db'}"
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert p["engine"] == "duckdb" and p["periods"] == "2023-03" and p["rule_set_fingerprint"] == "abc123"
    assert p["input_version.silver/fee_list_net"] == "3"
    assert p["git_commit"] and run.data.tags["fundguard.run_id"] == "R1"
    m = run.data.metrics
    assert m["hits.rule.daily_cap_item"] == 2 and m["gate_success"] == 1
    assert m["precision.rule.daily_cap_item"] == 0.75
    names = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(run_id)}
    assert names == {"gate_report", "gate"}
    assert (lake.root / "_mlflow" / "artifacts").is_dir()
    assert sorted(os.listdir(tmp_path)) == ["gate_report", "lake"]  # no ./mlruns
    # feedback later: precision added to the finished run
    log_rule_precision(lake, CONF, run_id, {"daily_cap_item": 0.5})
    assert MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics["precision.rule.daily_cap_item"] == 0.5


def test_a_failing_run_is_marked_failed(tmp_path):
    from mlflow import MlflowClient
    lake = Lake(tmp_path / "lake")
    with pytest.raises(RuntimeError):
        with Tracker(lake, CONF) as t:
            raise RuntimeError("gate blew up")
    run = MlflowClient(tracking_uri=tracking_uri(lake, CONF)[0]).get_run(t.run_id)
    assert run.info.status == "FAILED" and "gate blew up" in run.data.tags["error"]


def test_a_run_is_named_after_what_ran_and_logs_its_input_tables(tmp_path):
    from mlflow import MlflowClient
    lake = Lake(tmp_path / "lake")
    with Tracker(lake, CONF, tags={"step": "screen"}) as t:
        t.log_run_params(engine="duckdb", periods=["2023"], fingerprint="510ab6913e7b1cb0",
                         input_versions={"silver/psn": 3, "silver/fee_list_net": 7})
    run = MlflowClient(tracking_uri=t.uri).get_run(t.run_id)
    assert run.info.run_name == "screen 2023 duckdb 510ab691"
    inputs = {d.dataset.name: d.dataset.source for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"silver/psn", "silver/fee_list_net"}
    assert '"delta_table_version": 3' in inputs["silver/psn"] and str(lake.uri("silver/psn")) in inputs["silver/psn"]


def test_the_git_commit_comes_from_the_image_when_set(tmp_path, monkeypatch):
    from pipelines.tracking import git_commit
    monkeypatch.setenv("FUNDGUARD_GIT_COMMIT", "abc1234")
    assert git_commit() == "abc1234"
    monkeypatch.delenv("FUNDGUARD_GIT_COMMIT")
    monkeypatch.setattr("pipelines.tracking.REPO_ROOT", tmp_path)         # no .git: unknown, never a crash
    assert git_commit(tmp_path) == "unknown"


def test_a_report_run_is_updated_not_piled_up(tmp_path):
    import pandas as pd
    from mlflow import MlflowClient

    from pipelines.workflow import precision

    lake = Lake(tmp_path / "lake")
    table = pd.DataFrame({"rule_id": ["r1"], "findings": [4], "decided": [2], "precision": [0.5],
                          "precision_floor": [0.1], "review": [False]})
    first = precision.track(lake, CONF, "2023", table)
    again = precision.track(lake, CONF, "2023", table.assign(precision=[0.75]))
    other = precision.track(lake, CONF, "2024", table)
    assert first == again != other
    c = MlflowClient(tracking_uri=tracking_uri(lake, CONF)[0])
    history = c.get_metric_history(first, "precision.rule.r1")
    assert [m.value for m in history][-1] == 0.75


def test_a_half_created_store_is_repaired_and_a_store_with_runs_is_not_touched(tmp_path, capsys):
    import sqlite3

    from pipelines.tracking import open_store
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as con:                       # what a kill during table creation leaves
        con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        con.execute("INSERT INTO alembic_version VALUES ('0000')")
    client = open_store(f"sqlite:///{db}")
    assert client.search_experiments() is not None
    assert "half-created" in capsys.readouterr().err
    assert len(list(tmp_path.glob("mlflow.db.broken-*"))) == 1

    kept = tmp_path / "kept.db"
    with sqlite3.connect(kept) as con:                      # a store holding runs that does not open
        con.execute("CREATE TABLE runs (run_uuid VARCHAR(32))")
        con.execute("INSERT INTO runs VALUES ('r1')")
        con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        con.execute("INSERT INTO alembic_version VALUES ('0000')")
    with pytest.raises(RuntimeError, match="does not open"):
        open_store(f"sqlite:///{kept}")
    assert kept.exists()
