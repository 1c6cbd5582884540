"""The Airflow DAGs: import, policy, structure, the Spark branch, and `dag.test()` end to end.

Everything runs in this one module (one process) so the slow first `dag.test()` (the in-process API
server starting) is paid once. AIRFLOW_HOME is a throw-away folder set up by conftest.py.
"""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from pipelines.app import orchestration as orch

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
CST = ZoneInfo("Asia/Shanghai")
PERIOD = "2023-06"
# a run of the monthly schedule whose data interval is June 2023 (Beijing time)
LOGICAL_DATES = [dt.datetime(2023, 7, 1, tzinfo=CST), dt.datetime(2023, 7, 15, tzinfo=CST),
                 dt.datetime(2023, 7, 20, tzinfo=CST)]

EXPECTED = {
    "fundguard_ingest": {"check_drop": {"load_drop"}, "load_drop": set()},
    "fundguard_screen": {"plan_run": {"screen_gate_publish", "export_packages", "analyze_period"},
                         "screen_gate_publish": {"export_packages", "analyze_period"}, "export_packages": set(),
                         "analyze_period": set()},
    "fundguard_maintenance": {"plan_vacuum": {"optimize_tables", "vacuum_tables"},
                              "optimize_tables": {"vacuum_tables"}, "vacuum_tables": set()},
}


def load_dagbag(folder: Path = DAGS):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder), safe_mode=False)


@pytest.fixture(scope="module")
def dagbag():
    return load_dagbag()


# ------------------------------------------------------------------------------------ import & policy

def test_dagbag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(EXPECTED)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_policy_tags_retries_doc_callback(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags and "fundguard" in dag.tags
    assert dag.doc_md and len(dag.doc_md) > 200
    assert dag.on_failure_callback is not None
    assert dag.max_active_runs == 1                  # one writer per lake
    for t in dag.tasks:
        assert t.retries >= 2, t.task_id
        assert t.retry_delay >= dt.timedelta(minutes=1), t.task_id
        assert t.on_failure_callback, t.task_id
        assert orch.on_failure_callback in list(t.on_failure_callback), t.task_id
        assert t.pool == orch.LAKE_POOL, t.task_id       # ingest, screening, maintenance never overlap


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_structure(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == EXPECTED[dag_id]


def test_ingest_produces_the_assets_screen_is_scheduled_on(dagbag):
    outlets = {a.uri for a in dagbag.dags["fundguard_ingest"].get_task("load_drop").outlets}
    assert outlets == set(orch.silver_asset_uris())
    assert "fundguard://silver/fee_list_net" in outlets
    schedule = dagbag.dags["fundguard_screen"].timetable
    assert {a.uri for a in schedule.asset_condition.objects} == outlets
    assert schedule.timetable.expression == "0 0 1 * *"            # monthly, Beijing time
    assert str(schedule.timetable.timezone) in ("Asia/Shanghai", "Timezone('Asia/Shanghai')")


def test_dag_files_stay_thin():
    """No heavy import at module level: pipelines is imported inside tasks, except the light
    orchestration module (asset names, callbacks)."""
    heavy = ("pyarrow", "duckdb", "deltalake", "pyspark", "pandas", "mlflow", "great_expectations",
             "pipelines.app.screening", "pipelines.storage", "pipelines.screen", "pipelines.ingest")
    for path in DAGS.glob("*.py"):
        top = [l for l in path.read_text(encoding="utf-8").splitlines() if l.startswith(("import ", "from "))]
        assert not [l for l in top if any(h in l.split()[1] for h in heavy)], path.name


# ------------------------------------------------------------------------------------ the Spark branch

def write_conf(tmp: Path, fundguard: dict | None = None, spark: dict | None = None) -> Path:
    """A copy of conf/ with a local layer holding the overrides."""
    root = tmp / "conf"
    shutil.copytree(REPO / "conf", root, ignore=shutil.ignore_patterns("local"))
    (root / "local").mkdir()
    if fundguard:
        (root / "local" / "fundguard.yml").write_text(yaml.safe_dump(fundguard), encoding="utf-8")
    if spark:
        (root / "local" / "spark.yml").write_text(yaml.safe_dump(spark), encoding="utf-8")
    return root


def test_spark_branch_submits_the_package_job_with_spark_yml(tmp_path, monkeypatch):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from pipelines import config

    conf_root = write_conf(tmp_path, fundguard={"engine": "spark"},
                           spark={"submit": {"executor_memory": "3g", "deploy_mode": "client"}})
    monkeypatch.setenv("FUNDGUARD_CONF_DIR", str(conf_root))
    monkeypatch.setenv("FUNDGUARD_ENV", "prod")
    bag = load_dagbag(DAGS / "fundguard_screen.py")
    assert bag.import_errors == {}
    dag = bag.dags["fundguard_screen"]
    assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == {
        "plan_run": {"spark_screen_gate_publish", "check_gate", "export_packages", "analyze_period"},
        "spark_screen_gate_publish": {"check_gate"}, "check_gate": {"export_packages", "analyze_period"},
        "export_packages": set(), "analyze_period": set()}
    op = dag.get_task("spark_screen_gate_publish")
    assert isinstance(op, SparkSubmitOperator)
    spark = config.load("spark", "prod")
    assert op.application == orch.spark_job_path() and Path(op.application).is_file()
    assert op.application.endswith("pipelines/jobs/spark_screen.py")
    assert op.conf == {k: str(v) for k, v in spark["conf"].items()}
    assert op.conf["spark.sql.shuffle.partitions"] == "200"        # the prod layer
    assert op._conn_id == spark["submit"]["conn_id"]
    assert op._executor_memory == "3g" and op._num_executors == spark["submit"]["num_executors"]
    assert op._deploy_mode == "client"
    assert op.env_vars == {"FUNDGUARD_ENV": "prod"}
    assert op.retries >= 2 and orch.on_failure_callback in list(op.on_failure_callback)
    args = op.application_args
    assert args[0::2] == ["--lake", "--period", "--outcome"]
    assert all("xcom_pull(task_ids='plan_run')" in a for a in args[1::2])
    assert "engine:spark" in dag.tags


# ------------------------------------------------------------------------------------ dag.test end to end

@pytest.fixture(scope="module")
def drop(make_drop):
    return make_drop(0.2, 3)


@pytest.fixture(scope="module")
def short_retry_dags(airflow_db):
    """The DAGs as dag.test() runs them: a short retry delay so that a retried error cannot stall the
    suite (the policy above checks the real delay)."""
    bag = load_dagbag()
    for dag in bag.dags.values():
        for t in dag.tasks:
            t.retry_delay = dt.timedelta(seconds=1)
    return bag


def run_dag(dag, **kwargs):
    from airflow.utils.session import create_session

    dr = dag.test(**kwargs)
    with create_session() as session:
        tis = {ti.task_id: (str(ti.state), ti.try_number) for ti in dr.get_task_instances(session=session)}
    return str(dr.state), tis


def published(lake_root: Path, period: str = PERIOD) -> tuple[set[str], int | None]:
    import pyarrow.compute as pc

    from pipelines.storage import Lake

    lake = Lake(lake_root)
    if not lake.exists("gold/suspects"):
        return set(), None
    t = lake.read("gold/suspects", columns=["suspect_id", "period"], filter=pc.field("period") == period)
    return set(t.column("suspect_id").to_pylist()), lake.version("gold/suspects")


@pytest.fixture(scope="module")
def pipeline_runs(short_retry_dags, drop, tmp_path_factory):
    """fundguard_ingest then fundguard_screen (period from the data interval) on one lake, and the CLI
    path (load_drop + screen_gate_publish) on another."""
    import time

    from pipelines import config
    from pipelines.app.load import load_drop
    from pipelines.app.screening import screen_gate_publish
    from pipelines.storage import Lake

    base = tmp_path_factory.mktemp("lakes")
    dag_lake, cli_lake = base / "dag_lake", base / "cli_lake"
    timings = {}
    t0 = time.perf_counter()
    ingest = run_dag(short_retry_dags.dags["fundguard_ingest"],
                     run_conf={"landing": str(drop), "lake": str(dag_lake)})
    timings["ingest"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    screen = run_dag(short_retry_dags.dags["fundguard_screen"], logical_date=LOGICAL_DATES[0],
                     run_conf={"lake": str(dag_lake)})
    timings["screen"] = time.perf_counter() - t0
    conf = config.load()
    lake = Lake(cli_lake)
    load_drop(drop, lake, conf, progress=False)
    cli = screen_gate_publish(lake, engine_name="duckdb", period=PERIOD, conf=conf, progress=False)
    return {"dag_lake": dag_lake, "cli_lake": cli_lake, "ingest": ingest, "screen": screen, "cli": cli,
            "timings": timings}


def test_unpausing_on_a_fresh_lake_publishes_nothing_and_says_why(short_retry_dags, tmp_path):
    """The monthly screening and the weekly maintenance on a lake that holds nothing yet: skipped, not
    failed, and nothing is created or published."""
    fresh = tmp_path / "fresh_lake"
    state, tis = run_dag(short_retry_dags.dags["fundguard_screen"], logical_date=LOGICAL_DATES[0],
                         run_conf={"lake": str(fresh)})
    assert state == "success" and tis["plan_run"][0] == "skipped", tis
    assert {s for s, _ in tis.values()} == {"skipped"}, tis
    assert not fresh.exists()
    state, tis = run_dag(short_retry_dags.dags["fundguard_maintenance"], run_conf={"lake": str(fresh)})
    assert state == "success" and {s for s, _ in tis.values()} == {"skipped"}, tis
    assert not fresh.exists()


def test_the_skip_says_why(tmp_path):
    """The reason a fresh lake's screening is skipped, as the task log shows it."""
    from airflow.sdk.exceptions import AirflowSkipException

    from pipelines.app.checks import require_inputs
    from pipelines.contract import UsageError
    from pipelines.storage import Lake

    with pytest.raises(UsageError) as why:
        require_inputs(Lake(tmp_path / "fresh"), "2023-06")
    assert "not a lake" in str(why.value)
    assert issubclass(AirflowSkipException, Exception)


def test_ingest_then_screen_publishes_what_the_cli_publishes(pipeline_runs):
    state, tis = pipeline_runs["ingest"]
    assert state == "success", tis
    state, tis = pipeline_runs["screen"]
    assert state == "success", tis
    assert set(tis) == {"plan_run", "screen_gate_publish", "export_packages", "analyze_period"}
    cli = pipeline_runs["cli"]
    assert cli.published, cli.reason
    dag_ids, _ = published(pipeline_runs["dag_lake"])
    cli_ids, _ = published(pipeline_runs["cli_lake"])
    assert dag_ids == cli_ids
    assert cli_ids == set(cli.suspects.column("suspect_id").to_pylist())      # the run's own period only
    print("timings", pipeline_runs["timings"])


def test_screen_exports_one_package_per_institution(pipeline_runs):
    from pipelines.storage import Lake

    lake = Lake(pipeline_runs["dag_lake"])
    assert published(pipeline_runs["dag_lake"])[0], "the drop has suspects in the period"
    t = lake.read("gold/suspects", columns=["fixmedins_code", "period"])
    institutions = {r["fixmedins_code"] for r in t.to_pylist() if r["period"] == PERIOD}
    packages = {p.name for p in (pipeline_runs["dag_lake"] / "_exports").iterdir() if not p.name.startswith(".")}
    assert packages == {f"{i}_{PERIOD}" for i in institutions}
    for p in packages:
        assert (pipeline_runs["dag_lake"] / "_exports" / p / "manifest.json").is_file()


def test_screen_analyzes_the_published_period(pipeline_runs):
    """`analyze_period` ran after publication: the period's institution risk, from one analyze run."""
    from pipelines.storage import Lake

    lake = Lake(pipeline_runs["dag_lake"])
    risk = lake.read("gold/institution_risk").to_pandas()
    assert set(risk["period"]) == {PERIOD} and risk["risk_rank"].min() == 1
    assert risk["run_id"].nunique() == 1
    assert (lake.read("gold/indicators").to_pandas()["period"] == PERIOD).all()


def test_screen_twice_for_the_same_period_publishes_the_same_list(pipeline_runs, short_retry_dags):
    before, v_before = published(pipeline_runs["dag_lake"])
    state, tis = run_dag(short_retry_dags.dags["fundguard_screen"], logical_date=LOGICAL_DATES[1],
                         run_conf={"lake": str(pipeline_runs["dag_lake"])})
    assert state == "success", tis
    after, v_after = published(pipeline_runs["dag_lake"])
    assert after == before
    assert v_after > v_before                        # it did publish again, the same rows


def test_gate_failure_fails_the_run_and_publishes_nothing(pipeline_runs, short_retry_dags, tmp_path, monkeypatch,
                                                          capfd, caplog):
    # a band so tight that the same hits as the published list are "too many"
    conf_root = write_conf(tmp_path, fundguard={"gate": {"hit_rate_band": 0.5, "hit_rate_min_hits": 1}})
    monkeypatch.setenv("FUNDGUARD_CONF_DIR", str(conf_root))
    ids_before, v_before = published(pipeline_runs["dag_lake"])
    assert ids_before, "needs a published run with hits to compare against"
    state, tis = run_dag(short_retry_dags.dags["fundguard_screen"], logical_date=LOGICAL_DATES[2],
                         run_conf={"lake": str(pipeline_runs["dag_lake"])})
    assert state == "failed"
    assert tis["screen_gate_publish"] == ("failed", 1), "a gate failure is not retried"
    assert tis["export_packages"][0] == "upstream_failed"
    assert tis["analyze_period"][0] == "upstream_failed"
    assert published(pipeline_runs["dag_lake"]) == (ids_before, v_before)
    # the failure callback logged which expectation failed (to the task log: captured here either way)
    out = capfd.readouterr()
    text = out.out + out.err + caplog.text
    assert "FundGuard failure: dag=fundguard_screen task=screen_gate_publish" in text
    assert f"[gate]\n{orch.GATE_FAILED}: period={PERIOD}" in text


def test_maintenance_keeps_every_version_gold_refers_to(pipeline_runs, short_retry_dags):
    import json

    from pipelines.storage import Lake

    lake_root = pipeline_runs["dag_lake"]
    state, tis = run_dag(short_retry_dags.dags["fundguard_maintenance"], run_conf={"lake": str(lake_root),
                                                                             "retention_hours": 1})
    assert state == "success", tis
    lake = Lake(lake_root)
    recorded = lake.read("gold/suspects", columns=["input_versions"]).column("input_versions").unique().to_pylist()
    from pipelines.app.maintenance import referenced_versions

    referenced = referenced_versions(recorded)
    assert referenced, "gold rows record their input versions"
    for table, version in referenced.items():
        for v in {version, *(json.loads(r).get(table) for r in recorded if r)} - {None}:
            lake.read(table, version=v)              # every recorded snapshot is still readable
