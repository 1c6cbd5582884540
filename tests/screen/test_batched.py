"""Screening in bounded memory: batches of institutions and buckets of persons publish exactly the list of the
whole-lake run (the scale-1 sample, both engines); budgets too small fail early, naming what does not fit."""
from __future__ import annotations

import io

import duckdb
import pytest

from pipelines import config
from pipelines.catalog import load_catalog
from pipelines.contract import GOLD_SUSPECTS, SUSPECT_SCHEMA
from pipelines.app.load import load_drop
from pipelines.screen import plan as planning
from pipelines.screen.batched import Progress, lake_layout
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import STAGING, screen
from pipelines.storage import Lake
from pipelines.synth.generator import generate

CATALOG = load_catalog()
RULES = CATALOG.select()


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory) -> Lake:
    drop = tmp_path_factory.mktemp("district") / "landing"
    generate(drop, scale=1, seed=7)
    lake = Lake(tmp_path_factory.mktemp("lake"))
    load_drop(drop, lake, config.load(), progress=False)
    return lake


def small_budget(lake: Lake) -> int:
    """A budget that holds the shared tables and about a third of the partitioned rows."""
    sizes = lake_layout(lake, None).sizes
    p = planning.plan(sizes, None)
    return p.shared_bytes + (p.whole_bytes - p.shared_bytes) // 3


def staged(lake: Lake):
    return lake.read(STAGING).select(SUSPECT_SCHEMA.names).sort_by([("rule_id", "ascending"),
                                                                    ("suspect_id", "ascending")])


def run_both(lake: Lake, make_engine):
    whole = screen(lake, make_engine(), CATALOG, RULES, run_id="r", progress=False)
    whole_list = staged(lake)
    batched = screen(lake, make_engine(), CATALOG, RULES, run_id="r", progress=False, memory=small_budget(lake))
    return whole, whole_list, batched, staged(lake)


def test_plan_batches_the_sample_under_a_small_budget(sample_lake):
    p = planning.plan(lake_layout(sample_lake, None).sizes, small_budget(sample_lake))
    assert p.partitioned and len(p.institution_batches) >= 3 and len(p.person_jobs) >= 3
    assert sorted(b for j in p.person_jobs for b in j) == list(range(planning.BUCKETS))
    insts = [i for b in p.institution_batches for i in b]
    assert len(insts) == len(set(insts)) == 20          # every institution in exactly one batch


def test_duckdb_batched_run_publishes_the_whole_lake_list(sample_lake):
    whole, whole_list, batched, batched_list = run_both(sample_lake, DuckDBEngine)
    assert batched.jobs >= 6 and batched.plan.partitioned
    assert whole_list.num_rows == whole.suspects.num_rows > 100
    assert {r["family"] for r in whole_list.select(["family"]).to_pylist()} >= {"daily_cap", "min_interval",
                                                                                 "duplicate_line", "bundled_item"}
    assert batched_list.equals(whole_list)
    assert batched.suspects.equals(whole.suspects.select(SUSPECT_SCHEMA.names))
    assert batched.hits_by_rule() == whole.hits_by_rule()
    assert batched.input_versions == whole.input_versions
    assert batched.rows_in["silver/fee_list_net"] == whole.rows_in["silver/fee_list_net"]
    # where the run's time went: reading inputs and building views, the rules, committing the list
    assert set(batched.seconds_per_phase) == {"inputs", "rules", "finish"}
    assert all(s > 0 for s in batched.seconds_per_phase.values())
    assert whole.seconds_per_phase == {}           # the whole-lake run is not batched


def test_batched_run_frees_the_engine_before_building_its_list_and_scope(sample_lake):
    """At the end of the batches DuckDB drops what they materialised (at 100 M lines the list and the scope
    were built beside the last batch's tables: 7.3 GB under a 6 GB budget); the list is the batches' rows and
    the scope counts the same (institution, month) rows as the whole-lake run's."""
    whole = screen(sample_lake, DuckDBEngine(), CATALOG, RULES, run_id="w", progress=False)
    engine = DuckDBEngine()
    batched = screen(sample_lake, engine, CATALOG, RULES, run_id="w", progress=False,
                     memory=small_budget(sample_lake))
    assert batched.jobs >= 6
    assert engine.con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0
    assert batched.suspects.equals(staged(sample_lake))
    cols = ["fixmedins_code", "period", "input_rows"]
    assert batched.scope.select(cols).equals(whole.scope.select(cols))
    assert batched.scope.num_rows > 20


def test_run_with_a_budget_gates_and_publishes_the_batched_list(sample_lake):
    """`fundguard run --memory` (screen, gate, publish in one): the gate gets the batched run's scope and gold
    receives the whole-lake list."""
    from pipelines.app.screening import screen_gate_publish

    whole = screen(sample_lake, DuckDBEngine(), CATALOG, RULES, run_id="w", progress=False).suspects
    out = screen_gate_publish(sample_lake, memory=small_budget(sample_lake), progress=False)
    assert out.screen.plan.partitioned and out.screen.scope is not None
    assert out.published, out.reason
    key = [("suspect_id", "ascending")]
    gold = sample_lake.read(GOLD_SUSPECTS).select(["suspect_id", "rule_id", "amount", "evidence"]).sort_by(key)
    assert gold.num_rows == whole.num_rows > 100
    assert gold.equals(whole.select(gold.column_names).cast(gold.schema).sort_by(key))


def test_person_jobs_read_a_bucketed_copy_written_once_and_removed(sample_lake, monkeypatch):
    """With several person jobs, the inputs they read are copied once split by bucket (each job then reads its
    buckets' files, not the whole district); the copy is gone after the run and the list is unchanged."""
    from pipelines.screen.engine_batches import DuckDBBatches

    calls, read = [], []
    real_copy, real_files = DuckDBBatches.bucket_copy, DuckDBBatches.register_files

    def bucket_copy(self, lake, table, version, columns, buckets, folder, budget):
        out = real_copy(self, lake, table, version, columns, buckets, folder, budget)
        calls.append((table, folder, out))
        return out

    def register_files(self, view, files, schema, *, materialize):
        read.append((view, len(files)))
        return real_files(self, view, files, schema, materialize=materialize)

    import pipelines.screen.batched as batched_module

    monkeypatch.setattr(batched_module, "BUCKET_COPY_MIN_JOBS", 2)
    monkeypatch.setattr(DuckDBBatches, "bucket_copy", bucket_copy)
    monkeypatch.setattr(DuckDBBatches, "register_files", register_files)
    whole = staged_after(sample_lake, None)
    batched = screen(sample_lake, DuckDBEngine(), CATALOG, RULES, run_id="r", progress=False,
                     memory=small_budget(sample_lake))
    person_jobs = sum(1 for j in planning.plan(lake_layout(sample_lake, None).sizes, small_budget(sample_lake)).person_jobs)
    assert person_jobs >= 3 and batched.jobs >= 6
    tables = {t for t, _, _ in calls}
    assert "silver/fee_list_net" in tables and len(calls) == len(tables)          # each table copied once
    assert all(len(files) == planning.BUCKETS for _, _, files in calls)           # every bucket has rows
    assert {v for v, _ in read} >= {"fee_list"} and len(read) == person_jobs * len(tables)
    assert not any(folder.exists() for _, folder, _ in calls)
    assert staged(sample_lake).equals(whole)


def staged_after(lake: Lake, memory):
    screen(lake, DuckDBEngine(), CATALOG, RULES, run_id="r", progress=False, memory=memory)
    return staged(lake)


def test_a_lake_not_partitioned_by_institution_is_batched_by_value_with_the_same_list(sample_lake, tmp_path):
    """Silver written by another writer, without the institution partitions: the batches select institutions
    by value (the files cannot be split) and the list is the whole-lake list."""
    from pipelines.screen.pipeline import INPUT_TABLES

    flat = Lake(tmp_path / "flat")
    for table in INPUT_TABLES.values():
        if sample_lake.exists(table):
            flat.overwrite(table, sample_lake.read(table))
    assert not flat.delta("silver/fee_list_net").metadata().partition_columns
    layout = lake_layout(flat, None)
    assert layout.native["silver/fee_list_net"] is False
    assert len(layout.sizes.by_institution) == 20
    assert layout.sizes.totals == lake_layout(sample_lake, None).sizes.totals
    whole = staged_after(sample_lake, None)
    assert staged_after(flat, small_budget(flat)).equals(whole)


def test_person_buckets_are_the_same_in_python_duckdb_and_spark(spark):
    ids = ["P1", "P00017", "", None, "3301021990"]
    py = [planning.bucket_of(i, 7) for i in ids]
    con = duckdb.connect()
    duck = [con.execute(f"SELECT {DuckDBEngine.bucket_expr('x', 7)} FROM (SELECT ?::VARCHAR AS x)", [i]).fetchone()[0]
            for i in ids]
    from pipelines.screen.engines import SparkEngine
    df = spark.createDataFrame([(i,) for i in ids], "x string")
    sp = [r[0] for r in df.selectExpr(SparkEngine.bucket_expr("x", 7)).collect()]
    assert py == duck == sp
    assert len(set(planning.bucket_of(f"P{i}", 7) for i in range(200))) == 7


def test_budget_too_small_for_one_institution_names_it_and_the_budget_needed(sample_lake):
    sizes = lake_layout(sample_lake, None).sizes
    p = planning.plan(sizes, None)
    budget = p.shared_bytes + 1024          # the shared tables fit; no institution does
    with pytest.raises(planning.BudgetError) as err:
        planning.plan(sizes, budget)
    msg = str(err.value)
    first = sorted(k for k in sizes.by_institution if k)[0]
    assert f"institution {first}" in msg and "fixmedins_code=" in msg and "use --memory" in msg
    needed = config.parse_memory(msg.split("use --memory ")[1].split()[0])
    planning.plan(sizes, needed)            # the budget the message names is enough for that institution
    with pytest.raises(planning.BudgetError, match="every batch shares"):
        planning.plan(sizes, p.shared_bytes // 2)


def test_screen_command_refuses_a_budget_too_small(sample_lake, capsys):
    from pipelines.cli import main
    rc = main(["screen", "--lake", str(sample_lake.root), "--memory", "300MB", "--quiet"])
    assert rc == 2
    assert "use --memory" in capsys.readouterr().err
    assert main(["screen", "--lake", str(sample_lake.root), "--memory", "lots", "--quiet"]) == 2


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_shows_batches_and_eta_on_a_terminal_only():
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = Progress(2, True, stream)
        bar.step("institutions H1")
        bar.step("person bucket 1/1")
    assert "batches 1/2" in tty.getvalue() and "batches 2/2" in tty.getvalue() and "ETA" in tty.getvalue()
    assert pipe.getvalue() == ""


@pytest.mark.parametrize("materialise", ["parquet", "cache"])
def test_spark_runs_the_plan_with_its_executors_writing_and_publishes_duckdbs_list(sample_lake, spark_engine,
                                                                                   monkeypatch, materialise):
    """Spark screens on the partitioned plan (without a budget too, as one batch of each kind: the end-to-end and
    knowledge-base tests run that): no rule's rows are collected on the driver (the
    engine's `query`/`collect` are never called), each batch is written by one partitioned job of the executors,
    and the committed list equals DuckDB's, finding for finding — with a batch's inputs and views written once as
    Parquet scratch files (the default) or held in Spark's cache."""
    import pipelines.screen.engine_batches as engine_batches
    from pipelines.screen.engines import SparkEngine

    def refuse(*args, **kwargs):
        raise AssertionError("a rule's rows were collected on the driver")

    writes, real = [], engine_batches.write_spark_parquet

    def spy(lake, table, df, partition_by):
        out = real(lake, table, df, partition_by)
        writes.append(out)
        return out

    monkeypatch.setattr(SparkEngine, "query", refuse)
    monkeypatch.setattr(SparkEngine, "collect", refuse)
    monkeypatch.setattr(engine_batches, "write_spark_parquet", spy)
    monkeypatch.setattr(spark_engine, "materialise", materialise)
    scratch, real_scratch = [], spark_engine._write_scratch
    monkeypatch.setattr(spark_engine, "_write_scratch", lambda view, df: scratch.append(view) or real_scratch(view, df))
    budget = small_budget(sample_lake)
    duck = staged_after(sample_lake, budget)
    batched = screen(sample_lake, spark_engine, CATALOG, RULES, run_id="r", progress=False, memory=budget)
    assert batched.jobs >= 6 and len(writes) == batched.jobs
    assert staged(sample_lake).cast(duck.schema).equals(duck)
    assert not list((sample_lake.root / "_tmp").glob("spark-stage-*"))          # the scratch folders are gone
    assert not list((sample_lake.root / "_tmp").glob("spark-mat-*"))
    assert ({"fee", "visit"} <= set(scratch)) == (materialise == "parquet")
    assert bool(scratch) == (materialise == "parquet")
