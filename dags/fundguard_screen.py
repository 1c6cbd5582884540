"""
### fundguard_screen — screen, gate, publish and export one period 规则筛查 · 质量门禁 · 发布 · 导出

Runs when `fundguard_ingest` has updated the silver tables (asset events), and monthly (the data
interval of the month that just ended). Same functions as the commands: `screen_gate_publish`
(`pipelines.app.screening`, as `fundguard run`), then one audit package per institution with published
suspects (`pipelines.app.exports.export_period`, through `export_packages` as `fundguard export`), and, once
the list is published, `analyze_period`: indicators, item watch and institution risk of the same period
(`pipelines.app.analyze.analyze_published`, as `fundguard analyze`; its run id in the task's return value).

**Period**: the `period` param (YYYY or YYYY-MM) when given; for a run triggered by new silver data, the
period the ingest run announced (else every period in the lake); for a scheduled or manual run, the month
of `data_interval_start` in Beijing time — never the wall clock. Publishing replaces exactly the
(institution, period) partitions computed, so re-running a period publishes the same list.

**Engine**, chosen when the DAG file is parsed, from `conf/<FUNDGUARD_ENV>/fundguard.yml` `engine`:
- `duckdb`: `screen_gate_publish` runs in the worker (the `engine` param may pick `spark` in-process);
- `spark`: `SparkSubmitOperator` submits `pipelines/jobs/spark_screen.py` with the settings of
  `conf/<env>/spark.yml` (`conf:`, `submit:`); `check_gate` reads the job's outcome file.

**Quality gate**: a failed gate raises `AirflowFailException` (no retry: the verdict would not change),
publishes nothing, fails the DAG run; the failure callback logs each failed expectation.
"""
from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, AssetAll, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, dag, task

from pipelines import logs
from pipelines.app import orchestration as orch

logs.quiet_libraries()             # MLflow and Great Expectations chatter out of the task logs

ENGINE = orch.dag_engine()
SILVER_ASSETS = [Asset(uri) for uri in orch.silver_asset_uris()]


@task
def analyze_period(plan: dict, outcome: dict) -> dict:
    """Indicators, item watch and institution risk of the published period (as `fundguard analyze`)."""
    from pipelines.app.analyze import analyze_published

    return analyze_published(plan["lake"], plan["period"])


@dag(
    dag_id="fundguard_screen",
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 0 1 * *", timezone=orch.TIMEZONE),
        assets=AssetAll(*SILVER_ASSETS),
    ),
    start_date=datetime(2020, 1, 1),            # before any claims period (runs for past months)
    catchup=False,
    max_active_runs=1,                       # one publisher per lake
    tags=["fundguard", "screen", "gate", "publish", "医保", f"engine:{ENGINE}"],
    default_args=orch.default_args(),
    on_failure_callback=orch.on_failure_callback,
    doc_md=__doc__,
    params={
        "period": Param("", type="string", pattern=r"^(\d{4}(-(0[1-9]|1[0-2]))?)?$",
                        description="YYYY or YYYY-MM; empty: from the run (see doc)"),
        "engine": Param(ENGINE, enum=["duckdb", "spark"], description="in-process engine (duckdb branch)"),
        "lake": Param("", type="string", description="lake root; empty: the ingest event's, else conf"),
        "exports": Param("", type="string", description="export folder; empty: <lake>/_exports"),
    },
)
def fundguard_screen():
    @task
    def plan_run() -> dict:
        from airflow.sdk import get_current_context

        return orch.plan_screen_or_skip(get_current_context())

    @task
    def export_packages(plan: dict, outcome: dict) -> list[str]:
        from pipelines.app.exports import export_period
        from pipelines.storage import utcnow

        return export_period(plan["lake"], plan["period"], plan["exports"], generated_at=utcnow())

    plan = plan_run()
    if ENGINE == "spark":
        from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

        xplan = "ti.xcom_pull(task_ids='plan_run')"
        submit = SparkSubmitOperator(
            task_id="spark_screen_gate_publish",
            application_args=["--lake", "{{ %s['lake'] }}" % xplan,
                              "--period", "{{ %s['period'] or '' }}" % xplan,
                              "--outcome", "{{ %s['outcome_path'] }}" % xplan],
            **orch.spark_submit_kwargs(),
        )

        @task
        def check_gate(plan: dict) -> dict:
            summary = orch.read_outcome(plan["outcome_path"])
            orch.raise_if_gate_failed(summary)
            return summary

        outcome = check_gate(plan)
        plan >> submit >> outcome
    else:
        @task
        def screen_gate_publish(plan: dict) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from pipelines import config
            from pipelines.app.screening import screen_gate_publish as run
            from pipelines.contract import UsageError
            from pipelines.storage import Lake

            try:
                result = run(Lake(plan["lake"]), engine_name=plan["engine"], period=plan["period"],
                             conf=config.load(), progress=False)
            except UsageError as exc:
                raise AirflowFailException(str(exc)) from exc
            summary = orch.outcome_summary(result, plan["period"])
            orch.raise_if_gate_failed(summary)
            return summary

        outcome = screen_gate_publish(plan)
    export_packages(plan, outcome)
    analyze_period(plan, outcome)


fundguard_screen()
