"""What the Airflow DAGs need besides the application steps: asset names, the period of a run, the Spark
submit settings, the outcome file a Spark job leaves for the DAG, the gate-failure message and the failure
callback.

Light on purpose: the DAG files import this module at parse time, so it imports only the standard library,
`pipelines.config` (YAML) and `pipelines.contract`. It reads no lake and no clock (callers pass `now`); the
only files it touches are the outcome files (`write_outcome`/`read_outcome`).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from pipelines import config
from pipelines.contract import PERIOD_RE, check_period

log = logging.getLogger("fundguard.orchestration")

#: The district's time zone: a month of claims is a month of Beijing time.
TIMEZONE = "Asia/Shanghai"
ASSET_SCHEME = "fundguard"
#: the Airflow pool of the lake's tasks (1 slot; `airflow pools set fundguard_lake 1 ...`, docs/deploy.md)
LAKE_POOL = "fundguard_lake"
#: The silver tables screening reads (pipelines.screen.pipeline.INPUT_TABLES; a test keeps them equal).
SILVER_TABLES: tuple[str, ...] = (
    "silver/fee_list_net", "silver/mdtrt", "silver/psn", "silver/fixmedins", "silver/diag", "silver/setl",
    "silver/inv_movement", "silver/kb_hilist", "silver/kb_item_pair", "silver/kb_param",
)
GATE_FAILED = "质量门禁未通过 / quality gate failed"


# ------------------------------------------------------------------------------------------ assets

def asset_uri(table: str) -> str:
    """`silver/fee_list_net` -> `fundguard://silver/fee_list_net` (one Airflow Asset per lake table)."""
    return f"{ASSET_SCHEME}://{table}"


def silver_asset_uris() -> list[str]:
    return [asset_uri(t) for t in SILVER_TABLES]


# ------------------------------------------------------------------------------------------ config

def lake_root(param: str | None = None, conf: Mapping[str, Any] | None = None) -> Path:
    """The lake of a run: the `lake` param when given, else the configured one (relative to the repo)."""
    root = Path(param) if param else Path((conf if conf is not None else config.load())["lake"])
    if not root.is_absolute():
        root = config.REPO_ROOT / root
    return root.resolve()


def dag_engine(env: str | None = None) -> str:
    """The configured engine, read at DAG-parse time (YAML only): `duckdb` runs in the worker,
    `spark` goes through SparkSubmitOperator."""
    engine = str(config.load("fundguard", env).get("engine", "duckdb"))
    if engine not in ("duckdb", "spark"):
        raise ValueError(f"conf engine must be duckdb or spark, got {engine!r}")
    return engine


def spark_job_path() -> str:
    """The package's own Spark entry point (pipelines/jobs/spark_screen.py)."""
    return str(Path(__file__).resolve().parent.parent / "jobs" / "spark_screen.py")


def spark_submit_kwargs(env: str | None = None) -> dict[str, Any]:
    """SparkSubmitOperator arguments from conf/<env>/spark.yml.

    `conf:` becomes `--conf` (values as strings), `app_name` the job name; every key of `submit:` is an
    operator argument (conn_id, executor_memory, num_executors, driver_memory, deploy_mode, py_files...),
    `submit.application` overrides the job path. The master is the Airflow connection's (`conn_id`,
    which deploy.md points at spark.yml's `master`); the driver's `spark_session()` reads spark.yml too,
    so FUNDGUARD_ENV is passed on and both see the same configuration layers.
    """
    spark = config.load("spark", env)
    submit = dict(spark.get("submit") or {})
    spark_conf = {str(k): str(v) for k, v in (spark.get("conf") or {}).items()}
    kwargs: dict[str, Any] = {
        "application": str(submit.pop("application", None) or spark_job_path()),
        "conf": spark_conf,
        "name": str(spark.get("app_name", "fundguard")),
        "conn_id": str(submit.pop("conn_id", "spark_default")),
        "env_vars": {"FUNDGUARD_ENV": env or config.env_name(), **(submit.pop("env_vars", None) or {})},
    }
    kwargs.update(submit)
    return kwargs


def default_args(retry_minutes: float = 5) -> dict[str, Any]:
    """Task defaults shared by the DAGs: two retries for what a retry can fix (a gate failure is raised
    as AirflowFailException and is not retried), the failure callback, and the lake's pool: one slot, so
    ingest, screening and maintenance tasks never run at once (the lake's writer lease is the guarantee;
    the pool keeps tasks from waiting on it)."""
    return {
        "owner": "fundguard",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=retry_minutes),
        "on_failure_callback": on_failure_callback,
        "pool": LAKE_POOL,
    }


# ------------------------------------------------------------------------------------------ periods

def period_from_interval(start: dt.datetime, tz: str = TIMEZONE) -> str:
    """The month a monthly data interval covers, `YYYY-MM`, read in the district's time zone.

    `data_interval_start` of the March run is 2024-03-01 00:00 Beijing time = 2024-02-29 16:00 UTC:
    formatting it in UTC would name February.
    """
    if start.tzinfo is not None:
        start = start.astimezone(ZoneInfo(tz))
    return start.strftime("%Y-%m")


def covering_period(periods: Iterable[str | None]) -> str | None:
    """The narrowest period that covers all of `periods`: one month, one year, or None (all)."""
    ps = {p for p in periods if p}
    if not ps or any(not PERIOD_RE.match(p) for p in ps):
        return None
    if len(ps) == 1:
        return next(iter(ps))
    years = {p[:4] for p in ps}
    return years.pop() if len(years) == 1 else None


def resolve_period(param: str | None, *, asset_triggered: bool, event_periods: Iterable[str | None] = (),
                   data_interval_start: dt.datetime | None = None, tz: str = TIMEZONE) -> str | None:
    """The period a screening run covers, never from the wall clock:

    1. the `period` param when given;
    2. a run triggered by new silver data: the period(s) the ingest runs announced in their asset events
       (covering_period), else None = every period in the lake (partitions are replaced, so this is
       idempotent too);
    3. a scheduled or manual run: the month of `data_interval_start` (monthly timetable).
    """
    explicit = check_period(param)
    if explicit:
        return explicit
    if asset_triggered:
        return covering_period(event_periods)
    if data_interval_start is None:
        return None
    return period_from_interval(data_interval_start, tz)


# ------------------------------------------------------------------------------------------ outcomes

def outcome_summary(outcome, period: str | None) -> dict[str, Any]:
    """A JSON-able summary of a `RunOutcome` (XCom, the Spark job's outcome file)."""
    suspects = getattr(outcome, "suspects", None)
    institutions: list[str] = []
    n = 0
    if suspects is not None and suspects.num_rows:
        n = suspects.num_rows
        institutions = sorted({c for c in suspects.column("fixmedins_code").to_pylist() if c})
    return {
        "run_id": outcome.run_id, "published": bool(outcome.published), "reason": outcome.reason or "",
        "gold_version": outcome.gold_version, "gate_failures": [str(f) for f in outcome.gate_failures or []],
        "report_path": str(outcome.report_path) if outcome.report_path else None,
        "suspects": n, "institutions": institutions, "period": period,
    }


def outcome_path(lake: Path, dag_run_id: str) -> Path:
    """Where the Spark job leaves its outcome for the DAG to read (`<lake>/_orchestration/<run>.json`)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dag_run_id)
    return Path(lake) / "_orchestration" / f"{safe}.json"


def write_outcome(path: Path, summary: Mapping[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


def read_outcome(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def gate_failure_message(summary: Mapping[str, Any]) -> str:
    """The text of the exception a gate failure raises: the period, the run and every failed
    expectation (each names its rule or institution), one per line."""
    lines = [f"{GATE_FAILED}: period={summary.get('period') or 'all'} run_id={summary.get('run_id')} "
             f"- nothing published"]
    failures = list(summary.get("gate_failures") or [])
    lines += [f"  - {f}" for f in failures] or [f"  - {summary.get('reason') or 'no detail'}"]
    if summary.get("report_path"):
        lines.append(f"  report: {summary['report_path']}")
    return "\n".join(lines)


def raise_if_gate_failed(summary: Mapping[str, Any]) -> None:
    """Fail the task without retrying when the gate refused the run: re-running cannot change a verdict
    on the same data, and retries would only republish nothing three times."""
    if summary.get("published"):
        return
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(gate_failure_message(summary))


# ------------------------------------------------------------------------------------------ callback

def describe_failure(context: Mapping[str, Any]) -> str:
    """One message naming the DAG, task, run, period and, for a gate failure, each failed expectation."""
    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", None) or "-"
    run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", "?")
    params = context.get("params") or {}
    period = params.get("period") if hasattr(params, "get") else None
    exc = context.get("exception")
    detail = str(exc) if exc is not None else str(context.get("reason") or "no exception recorded")
    head = f"FundGuard failure: dag={dag_id} task={task_id} run={run_id}"
    if period:
        head += f" period={period}"
    kind = "gate" if GATE_FAILED in detail else "error"
    return f"{head} [{kind}]\n{detail}"


def on_failure_callback(context: Mapping[str, Any]) -> None:
    """Task and DAG failure callback: log which institution / expectation failed (the gate's failures
    are in the exception message). Wire an alert (mail, IM webhook) here."""
    log.error(describe_failure(context))


# ------------------------------------------------------------------------------------------ run context

def triggering_extras(context: Mapping[str, Any]) -> list[dict]:
    """The `extra` of every asset event that triggered this run (empty for scheduled/manual runs)."""
    events = context.get("triggering_asset_events") or {}
    try:
        groups = list(events.values())
    except (AttributeError, TypeError):
        return []
    return [dict(getattr(e, "extra", None) or {}) for group in groups for e in group]


def is_asset_triggered(context: Mapping[str, Any]) -> bool:
    run_type = getattr(context.get("dag_run"), "run_type", "")
    return str(getattr(run_type, "value", run_type)) == "asset_triggered" or bool(triggering_extras(context))


def plan_screen(context: Mapping[str, Any], conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Lake, period and engine of one fundguard_screen run (see resolve_period)."""
    params = context.get("params") or {}
    extras = triggering_extras(context)
    asset_triggered = is_asset_triggered(context)
    lakes = {e["lake"] for e in extras if e.get("lake")}
    lake_param = params.get("lake") or (lakes.pop() if len(lakes) == 1 else None)
    lake = lake_root(lake_param, conf)
    period = resolve_period(params.get("period"), asset_triggered=asset_triggered,
                            event_periods=[e.get("period") for e in extras],
                            data_interval_start=context.get("data_interval_start"))
    run_id = str(context.get("run_id") or getattr(context.get("dag_run"), "run_id", "run"))
    return {"lake": str(lake), "period": period, "engine": params.get("engine") or "duckdb",
            "asset_triggered": asset_triggered, "outcome_path": str(outcome_path(lake, run_id)),
            "exports": str(Path(params["exports"]) if params.get("exports") else lake / "_exports")}


def plan_screen_or_skip(context: Mapping[str, Any], conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`plan_screen`, or the run skipped (AirflowSkipException) saying why while the lake holds no claims
    for the period (a fresh lake, a month not loaded yet): nothing is then screened or published."""
    from airflow.sdk.exceptions import AirflowSkipException

    from pipelines.app.checks import require_inputs
    from pipelines.contract import UsageError
    from pipelines.storage import Lake

    plan = plan_screen(context, conf)
    try:
        require_inputs(Lake(plan["lake"]), plan["period"])
    except UsageError as exc:
        raise AirflowSkipException(f"无可筛查数据，未发布 / nothing to screen, nothing published: {exc}") from exc
    return plan
