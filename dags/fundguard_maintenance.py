"""
### fundguard_maintenance — Delta optimize and vacuum of the lake 表维护

Weekly: compacts small files (`optimize`) of every lake table, then removes files no version still
needs (`vacuum`), without ever breaking `fundguard reproduce`.

**Retention that keeps what `reproduce` needs.** Every published row of `gold/suspects` records the
Delta version of each input table it was computed from (`input_versions`); `reproduce` re-reads those
versions. For each table, `plan_vacuum` takes the oldest version still referenced and its commit time,
and uses

    retention = max(retention_hours param / conf `maintenance.retention_hours` (168 h),
                    age of that commit in hours, rounded up, + 1)

A file of version V (or later) is tombstoned by a commit made after V, so with this retention vacuum
(which deletes tombstones older than now − retention) keeps it. The retention is never lowered below
what is needed; when the commit time of a referenced version is unknown the table is not vacuumed.
Tables no published row refers to use the configured retention. `dry_run` lists what would go.
"""
from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from pipelines import logs
from pipelines.app import orchestration as orch


logs.quiet_libraries()             # MLflow and Great Expectations chatter out of the task logs

@dag(
    dag_id="fundguard_maintenance",
    schedule=CronTriggerTimetable("0 3 * * 0", timezone=orch.TIMEZONE),   # Sundays 03:00 Beijing time
    start_date=datetime(2020, 1, 1),            # before any claims period (runs for past months)
    catchup=False,
    max_active_runs=1,
    tags=["fundguard", "maintenance", "delta"],
    default_args=orch.default_args(),
    on_failure_callback=orch.on_failure_callback,
    doc_md=__doc__,
    params={
        "lake": Param("", type="string", description="lake root; empty: conf lake"),
        "retention_hours": Param(0, type="integer", minimum=0,
                                 description="0: conf maintenance.retention_hours (default 168)"),
        "dry_run": Param(False, type="boolean"),
    },
)
def fundguard_maintenance():
    @task
    def plan_vacuum() -> dict:
        import logging

        from airflow.sdk import get_current_context

        from pipelines import config
        from pipelines.app.maintenance import DEFAULT_RETENTION_HOURS, plan_lake_retention
        from pipelines.storage import utcnow

        from airflow.sdk.exceptions import AirflowSkipException

        from pipelines.app.checks import require_lake
        from pipelines.contract import UsageError
        from pipelines.storage import Lake

        params = get_current_context()["params"]
        conf = config.load()
        try:
            require_lake(Lake(orch.lake_root(params["lake"], conf)))
        except UsageError as exc:
            raise AirflowSkipException(f"nothing to maintain: {exc}") from exc
        hours = int(params["retention_hours"] or (conf.get("maintenance") or {}).get(
            "retention_hours", DEFAULT_RETENTION_HOURS))
        plans = plan_lake_retention(orch.lake_root(params["lake"], conf), hours, now=utcnow())
        for p in plans:
            logging.getLogger("fundguard.maintenance").info("%s: %s", p["table"], p["reason"])
        return {"lake": str(orch.lake_root(params["lake"], conf)), "dry_run": bool(params["dry_run"]),
                "tables": plans}

    @task
    def optimize_tables(plan: dict) -> dict:
        from pipelines.app import maintenance

        return maintenance.optimize_tables(plan["lake"], plan["tables"], dry_run=plan["dry_run"])

    @task
    def vacuum_tables(plan: dict) -> dict:
        from pipelines.app import maintenance

        return maintenance.vacuum_tables(plan["lake"], plan["tables"], dry_run=plan["dry_run"])

    plan = plan_vacuum()
    optimize_tables(plan) >> vacuum_tables(plan)


fundguard_maintenance()
