"""pipelines.app.orchestration: pure DAG support (no Airflow run needed)."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from pipelines.app import orchestration as orch

UTC = dt.timezone.utc
CST = ZoneInfo("Asia/Shanghai")


def test_silver_assets_are_what_screening_reads():
    from pipelines.screen.pipeline import INPUT_TABLES

    assert sorted(orch.SILVER_TABLES) == sorted(INPUT_TABLES.values())
    assert orch.asset_uri("silver/fee_list_net") == "fundguard://silver/fee_list_net"
    assert len(set(orch.silver_asset_uris())) == len(orch.SILVER_TABLES)


def test_module_is_light_enough_for_dag_parsing():
    code = ("import sys, pipelines.app.orchestration; "
            "print(sorted(m for m in ('pyarrow','duckdb','deltalake','pyspark','mlflow','pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("start, expected", [
    (dt.datetime(2024, 3, 1, tzinfo=CST), "2024-03"),                 # Beijing midnight, the normal case
    (dt.datetime(2024, 2, 29, 16, 0, tzinfo=UTC), "2024-03"),         # the same instant in UTC: still March
    (dt.datetime(2024, 12, 1, tzinfo=UTC), "2024-12"),                # UTC midnight is 08:00 in Beijing
    (dt.datetime(2024, 7, 1), "2024-07"),                             # naive: taken as is
])
def test_period_from_interval(start, expected):
    assert orch.period_from_interval(start) == expected


@pytest.mark.parametrize("periods, expected", [
    ([], None), ([None, ""], None), (["2024-03"], "2024-03"), (["2024-03", "2024-03", None], "2024-03"),
    (["2024-03", "2024-04"], "2024"), (["2023-12", "2024-01"], None), (["2024"], "2024"), (["bad"], None),
])
def test_covering_period(periods, expected):
    assert orch.covering_period(periods) == expected


def test_resolve_period_order():
    start = dt.datetime(2024, 3, 1, tzinfo=CST)
    # explicit param wins over everything
    assert orch.resolve_period("2023-11", asset_triggered=True, event_periods=["2024-01"],
                               data_interval_start=start) == "2023-11"
    # asset-triggered: the events' period, never the interval (which is just the event time)
    assert orch.resolve_period("", asset_triggered=True, event_periods=["2024-01"],
                               data_interval_start=start) == "2024-01"
    assert orch.resolve_period(None, asset_triggered=True, event_periods=[None], data_interval_start=start) is None
    # scheduled / manual: the month of the data interval
    assert orch.resolve_period("", asset_triggered=False, data_interval_start=start) == "2024-03"
    with pytest.raises(ValueError):
        orch.resolve_period("2024-13", asset_triggered=False, data_interval_start=start)


def test_plan_screen_from_context(tmp_path):
    events = {"fundguard://silver/fee_list_net": [SimpleNamespace(extra={"lake": str(tmp_path), "period": "2024-02"})]}
    ctx = {"params": {"period": "", "engine": "duckdb", "lake": "", "exports": ""},
           "triggering_asset_events": events, "dag_run": SimpleNamespace(run_type="asset_triggered"),
           "run_id": "asset_triggered__2024-05-01T00:00:00", "data_interval_start": dt.datetime(2024, 5, 1, tzinfo=UTC)}
    plan = orch.plan_screen(ctx, conf={"lake": "data/lake"})
    assert plan["lake"] == str(tmp_path.resolve()) and plan["period"] == "2024-02" and plan["asset_triggered"]
    assert plan["outcome_path"].startswith(str(tmp_path.resolve() / "_orchestration"))
    assert plan["exports"] == str(tmp_path.resolve() / "_exports")
    manual = {"params": {"period": "", "engine": "spark", "lake": "", "exports": "/x"}, "run_id": "manual__1",
              "dag_run": SimpleNamespace(run_type="manual"), "data_interval_start": dt.datetime(2024, 2, 29, 16, tzinfo=UTC)}
    plan = orch.plan_screen(manual, conf={"lake": "data/lake"})
    from pipelines.config import REPO_ROOT
    assert plan["lake"] == str((REPO_ROOT / "data/lake").resolve()) and plan["period"] == "2024-03"
    assert plan["engine"] == "spark" and plan["exports"] == "/x" and not plan["asset_triggered"]


def test_gate_failure_message_and_fail_exception():
    from airflow.sdk.exceptions import AirflowFailException

    summary = {"run_id": "r1", "published": False, "period": "2024-03", "reason": "x",
               "gate_failures": ["H001: hit rate of age_restricted_drug 120 > 10.0 x 10", "expect_column_values_to_not_be_null(psn_no)"],
               "report_path": "/lake/_reports/r1"}
    with pytest.raises(AirflowFailException) as exc:
        orch.raise_if_gate_failed(summary)
    text = str(exc.value)
    assert orch.GATE_FAILED in text and "period=2024-03" in text and "H001: hit rate" in text
    assert "not_be_null(psn_no)" in text and "/lake/_reports/r1" in text
    orch.raise_if_gate_failed({**summary, "published": True})     # published: nothing raised


def test_failure_callback_logs_the_expectations(caplog):
    summary = {"run_id": "r1", "published": False, "period": "2024-03",
               "gate_failures": ["H002: expect_column_values_to_be_between(amount)"]}
    ctx = {"task_instance": SimpleNamespace(dag_id="fundguard_screen", task_id="screen_gate_publish"),
           "run_id": "manual__x", "params": {"period": "2024-03"},
           "exception": RuntimeError(orch.gate_failure_message(summary))}
    with caplog.at_level("ERROR", logger="fundguard.orchestration"):
        orch.on_failure_callback(ctx)
    msg = caplog.records[-1].getMessage()
    assert "dag=fundguard_screen task=screen_gate_publish" in msg and "[gate]" in msg
    assert "H002: expect_column_values_to_be_between(amount)" in msg
    # a DAG-level callback has no task and no exception, only a reason
    assert "[error]" in orch.describe_failure({"dag": SimpleNamespace(dag_id="d"), "reason": "task_failure"})


def test_outcome_round_trip(tmp_path):
    import pyarrow as pa

    outcome = SimpleNamespace(run_id="r", published=True, reason="", gold_version=4, gate_failures=[],
                              report_path=tmp_path / "rep", suspects=pa.table({"fixmedins_code": ["H2", "H1", "H2"]}))
    s = orch.outcome_summary(outcome, "2024-03")
    assert s["institutions"] == ["H1", "H2"] and s["suspects"] == 3 and s["gold_version"] == 4
    path = orch.outcome_path(tmp_path, "manual__2024-03-01T00:00:00+00:00")
    assert path.parent == tmp_path / "_orchestration" and ":" not in path.name and "+" not in path.name
    orch.write_outcome(path, s)
    assert orch.read_outcome(path) == json.loads(json.dumps(s))


def test_spark_submit_kwargs_from_spark_yml(monkeypatch):
    from pipelines import config

    spark = config.load("spark", "prod")
    kw = orch.spark_submit_kwargs("prod")
    assert kw["application"] == orch.spark_job_path() and kw["application"].endswith("pipelines/jobs/spark_screen.py")
    assert kw["conf"] == {k: str(v) for k, v in spark["conf"].items()}
    assert kw["conn_id"] == spark["submit"]["conn_id"] and kw["executor_memory"] == spark["submit"]["executor_memory"]
    assert kw["num_executors"] == spark["submit"]["num_executors"]
    assert kw["env_vars"]["FUNDGUARD_ENV"] == "prod" and kw["name"] == spark.get("app_name", "fundguard")


def test_spark_job_parses_its_arguments():
    from pipelines.jobs.spark_screen import parse_args

    a = parse_args(["--lake", "/l", "--period", "2024-03", "--outcome", "/o.json"])
    assert str(a.lake) == "/l" and a.period == "2024-03" and str(a.outcome) == "/o.json"
    assert parse_args(["--lake", "/l"]).period == ""


@pytest.mark.parametrize("published, with_outcome, code", [
    (True, False, 0), (False, False, 1),      # CLI use: the exit code is the verdict
    (True, True, 0), (False, True, 0),        # Airflow use: the verdict is in the file, exit 0 = job ran
])
def test_spark_job_exit_codes_and_outcome_file(tmp_path, monkeypatch, published, with_outcome, code):
    import pipelines.app.screening
    from pipelines.jobs import spark_screen

    calls = {}

    def fake(lake, **kw):
        calls.update(kw, lake=lake)
        return SimpleNamespace(run_id="r9", published=published, reason="" if published else "gate", gold_version=2,
                               gate_failures=[] if published else ["H001: band"], report_path=None, suspects=None)

    monkeypatch.setattr(pipelines.app.screening, "screen_gate_publish", fake)
    argv = ["--lake", str(tmp_path), "--period", "2024-03"]
    out = tmp_path / "o.json"
    if with_outcome:
        argv += ["--outcome", str(out)]
    assert spark_screen.main(argv) == code
    assert calls["engine_name"] == "spark" and calls["period"] == "2024-03" and calls["lake"].root == tmp_path
    if with_outcome:
        assert orch.read_outcome(out)["published"] is published
        assert orch.read_outcome(out)["gate_failures"] == ([] if published else ["H001: band"])
