"""
### fundguard_ingest — load one landing drop into the lake 数据入湖

One DAG run per landing drop: trigger it with `{"landing": "/path/to/drop", "lake": "/path/to/lake"}`
(`lake` empty: the configured lake). Calls the same function as `fundguard ingest` / `fundguard run`
(`pipelines.app.load.load_drop`): bronze, silver, quarantine, refund netting, the sample knowledge base when
the lake has none.

- `check_drop`: the drop folder exists and is not empty; resolves the lake.
- `load_drop`: loads it and logs the reconciliation (every row loaded or quarantined). On success it
  updates the silver assets (`fundguard://silver/...`), which schedules `fundguard_screen`; the asset
  events carry the lake and the drop's `period` when given.

A refused drop (unknown entity, unreadable file) fails at once without retry: the same files will be
refused again. Other errors are retried twice.
"""
from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, Param, dag, task

from pipelines import logs
from pipelines.app import orchestration as orch
from pipelines.contract import check_period

SILVER_ASSETS = [Asset(uri) for uri in orch.silver_asset_uris()]


logs.quiet_libraries()             # MLflow and Great Expectations chatter out of the task logs

@dag(
    dag_id="fundguard_ingest",
    schedule=None,
    start_date=datetime(2020, 1, 1),            # before any claims period (runs for past months)
    catchup=False,
    max_active_runs=1,                       # one writer per lake
    tags=["fundguard", "ingest", "医保"],
    default_args=orch.default_args(),
    on_failure_callback=orch.on_failure_callback,
    doc_md=__doc__,
    params={
        "landing": Param("", type="string", description="landing drop folder 数据包目录"),
        "lake": Param("", type="string", description="lake root; empty: conf `lake`"),
        "period": Param("", type="string", pattern=r"^(\d{4}(-(0[1-9]|1[0-2]))?)?$",
                        description="YYYY or YYYY-MM the drop covers (optional, passed to screening)"),
    },
)
def fundguard_ingest():
    @task
    def check_drop() -> dict:
        from pathlib import Path

        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        params = get_current_context()["params"]
        landing = Path(params["landing"] or "").expanduser()
        if not params["landing"] or not landing.is_dir():
            raise AirflowFailException(f"landing drop not found / 落地目录不存在: {params['landing']!r}")
        if not any(landing.iterdir()):
            raise AirflowFailException(f"landing drop is empty / 数据包为空: {landing}")
        return {"landing": str(landing.resolve()), "lake": str(orch.lake_root(params["lake"])),
                "period": check_period(params["period"])}

    @task(outlets=SILVER_ASSETS)
    def load_drop(plan: dict) -> dict:
        import logging
        from pathlib import Path

        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines import config
        from pipelines.ingest.pipeline import IngestError
        from pipelines.app.load import load_drop as load
        from pipelines.storage import Lake

        try:
            report, _ = load(Path(plan["landing"]), Lake(plan["lake"]), config.load(), progress=False)
        except IngestError as exc:
            raise AirflowFailException(f"drop refused / 数据包被拒收: {exc}") from exc
        logging.getLogger("fundguard.ingest").info("%s", report.to_text())
        events = get_current_context()["outlet_events"]
        for asset in SILVER_ASSETS:
            events[asset].extra = {"lake": plan["lake"], "load_id": report.load_id, "period": plan["period"]}
        return {"load_id": report.load_id, "status": report.status, "rows_read": report.rows_read,
                "rows_loaded": report.rows_loaded, "rows_quarantined": report.rows_quarantined,
                "balanced": report.balanced, "versions": report.versions, **plan}

    load_drop(check_drop())


fundguard_ingest()
