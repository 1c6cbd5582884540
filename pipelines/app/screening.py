"""Screening as the commands and the DAGs run it: rules → staging (`screen_to_staging`), or screen, gate
and publish in one MLflow run (`screen_gate_publish`, what `fundguard run` and the screening DAG call).
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from pipelines import config
from pipelines.app.checks import kb_param_gaps, require_inputs
from pipelines.contract import UsageError, check_institutions, check_period
from pipelines.storage import Lake
from pipelines.storage.lock import holds_lease


@dataclass
class RunOutcome:
    run_id: str
    published: bool
    reason: str = ""
    suspects: pa.Table | None = None
    gold_version: int | None = None
    gate_failures: list[str] = field(default_factory=list)
    report_path: Path | None = None
    screen: object = None
    gate: object = None
    scope_note: str = ""        # what an incremental run replaced (a full run's scope is `screen.scope`)


def select_rules(lake: Lake, period: str | None, institutions: list[str] | None, *, tags=None, families=None,
                 rule_ids=None):
    """(catalog, rules) of a screening after its checks: the period and institutions well formed and held by
    the lake, and at least one active rule selected (UsageError otherwise)."""
    from pipelines.catalog import load_catalog

    check_period(period)
    check_institutions(institutions)
    require_inputs(lake, period, institutions)
    catalog = load_catalog()
    rules = catalog.select(tags=tags, families=families, rule_ids=rule_ids)
    if not rules:
        raise UsageError("no active rule matches the selection")
    fallbacks, unevaluated = kb_param_gaps(lake, catalog, rules)
    log = logging.getLogger("fundguard.screen")
    for key, value in fallbacks.items():
        log.warning("知识库参数 %s 缺失，使用随附知识库的取值 %s / kb_param lacks %s: the shipped knowledge base's "
                    "value %s is used", key, value, key, value)
    for key, ids in unevaluated.items():
        log.warning("知识库参数 %s 缺失，规则 %s 不评估 / kb_param lacks %s: %s evaluate nothing without it",
                    key, ", ".join(ids), key, ", ".join(ids))
    return catalog, rules


def screen_memory(value, conf: dict) -> int | None:
    """The screening memory budget in bytes: `--memory` when given, else conf `screen.memory` (none: whole lake)."""
    from pipelines.config import parse_memory
    try:
        return parse_memory(value or (conf.get("screen") or {}).get("memory"))
    except ValueError as exc:
        raise UsageError(f"--memory: {exc}") from exc


def make_engine(engine_name: str, spark=None):
    """The screening engine, a usage error when the name is unknown (an existing Spark session is reused)."""
    from pipelines.screen import engines
    try:
        return engines.make_engine(engine_name, **({"spark": spark} if engine_name == "spark" else {}))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


@holds_lease("fundguard screen, gate, publish")
def screen_gate_publish(lake: Lake, *, engine_name: str = "duckdb", period: str | None = None,
                        institutions: list[str] | None = None, tags: list[str] | None = None,
                        families: list[str] | None = None, rule_ids: list[str] | None = None,
                        publish_result: bool = True, spark=None, conf: dict | None = None,
                        progress: bool = True, memory: str | int | None = None,
                        accept_drop: bool = False, incremental: bool = False) -> RunOutcome:
    """Screen into staging (with the scope it screened), gate, and publish to gold/suspects when the gate
    passes, replacing exactly that scope (`accept_drop`: an emptied or shrunk scope is intended). One MLflow
    run. `incremental`: re-screen and publish only what changed since the last publication
    (`app.incremental`), or the whole district when that publication cannot be the base (the reason is
    printed and recorded)."""
    from pipelines.app.publication import gate_and_publish
    from pipelines.screen.pipeline import screen
    from pipelines.tracking import Tracker, suspect_metrics

    conf = conf or config.load()
    catalog, rules = select_rules(lake, period, institutions, tags=tags, families=families, rule_ids=rule_ids)
    periods = [period] if period else None
    budget = screen_memory(memory, conf)
    if incremental and (period or institutions or tags or families or rule_ids):
        raise UsageError("--incremental screens the whole district with the whole rule set: "
                         "leave out --period, --institution and rule selections")
    with Tracker(lake, conf, tags={"step": "run"}) as tracker:
        run_id = tracker.run_id
        if incremental:
            done = incremental_run(lake, tracker, catalog, rules, engine_name=engine_name, spark=spark, conf=conf,
                                   budget=budget, progress=progress)
            if isinstance(done, RunOutcome):
                return done
        engine = make_engine(engine_name, spark)
        try:
            result = screen(lake, engine, catalog, rules, run_id=run_id, period=period,
                            institutions=institutions, progress=progress, memory=budget)
        finally:
            engine.close()
        tracker.log_run_params(engine=engine_name, periods=periods, fingerprint=result.fingerprint,
                               input_versions=result.input_versions, rule_ids=[r.id for r in rules],
                               institutions=institutions)
        out = gate_and_publish(lake, result.suspects, scope=result.scope, staging_version=result.staging_version,
                               catalog=catalog, rules=rules, conf=conf, accept_drop=accept_drop,
                               publish_when_passed=publish_result, run_id=run_id,
                               fingerprint=result.fingerprint, input_versions=result.input_versions)
        gate = out.gate
        tracker.log_metrics({**suspect_metrics(result.suspects, result.rows_in, rules), **gate.results})
        tracker.log_dict({"seconds_per_rule": result.seconds_per_rule, "seconds_per_phase": result.seconds_per_phase,
                          "gate_failures": gate.failures},
                         "run_summary.json")
        if gate.report_path and Path(gate.report_path).exists():
            tracker.log_artifact(gate.report_path, "gate_report")
        outcome = RunOutcome(run_id, out.version is not None, suspects=result.suspects, gold_version=out.version,
                             gate_failures=list(gate.failures), report_path=gate.report_path, screen=result,
                             gate=gate)
        if not gate.success:
            outcome.reason = "质量门禁未通过 / quality gate failed: " + "; ".join(gate.failures)
        tracker.set_tags({"outcome": "published" if outcome.published else
                          ("gate_failed" if not gate.success else "gated_only"),
                          "gold_version": str(out.version)})
        return outcome


def incremental_run(lake: Lake, tracker, catalog, rules, *, engine_name: str, spark, conf: dict,
                    budget: int | None, progress: bool) -> RunOutcome | str:
    """The incremental run inside `tracker`'s MLflow run: a RunOutcome, or why it must be a full run."""
    from pipelines.app.incremental import by_persons, screen_incremental

    engine = make_engine(engine_name, spark)
    try:
        done = screen_incremental(lake, engine, catalog, rules, run_id=tracker.run_id, conf=conf, budget=budget,
                                  progress=progress)
    finally:
        engine.close()
    if isinstance(done, str):
        print(f"增量筛查不可用，全量筛查 / incremental screening not possible, screening in full: {done}",
              file=sys.stderr)
        tracker.set_tags({"incremental": "full: " + done})
        return done
    gate = done.gate
    scope = done.scope
    how = "re-screened one by one" if by_persons(scope) else f"{len(scope.buckets)} person buckets re-screened"
    tracker.log_run_params(engine=engine_name, periods=None, fingerprint=catalog.fingerprint(rules),
                           input_versions=lake_versions(lake), rule_ids=[r.id for r in rules], institutions=None)
    tracker.log_metrics({"suspects": done.suspects.num_rows, "replaced": done.replaced, "jobs": done.jobs,
                         "institutions_rescreened": len(scope.institutions), "persons_touched": len(scope.persons),
                         **gate.results})
    tracker.set_tags({"incremental": f"base {done.base_run}", "outcome": "published" if done.gold_version
                      is not None else "gate_failed", "gold_version": str(done.gold_version)})
    outcome = RunOutcome(tracker.run_id, done.gold_version is not None, suspects=done.suspects,
                         gold_version=done.gold_version, gate_failures=list(gate.failures),
                         report_path=gate.report_path, screen=done, gate=gate,
                         scope_note=f"增量 incremental: {len(scope.institutions)} 家机构 institutions re-screened, "
                                    f"{len(scope.persons)} 人 persons touched ({how}), "
                                    f"{done.replaced} published findings replaced")
    if not gate.success:
        outcome.reason = "质量门禁未通过 / quality gate failed: " + "; ".join(gate.failures)
    return outcome


def lake_versions(lake: Lake) -> dict[str, int]:
    from pipelines.screen.pipeline import INPUT_TABLES
    return {t: lake.version(t) for t in INPUT_TABLES.values() if lake.exists(t)}


@holds_lease("fundguard screen")
def screen_to_staging(lake: Lake, *, engine_name: str, period: str | None = None,
                      institutions: list[str] | None = None, tags: list[str] | None = None,
                      families: list[str] | None = None, rule_ids: list[str] | None = None,
                      conf: dict | None = None, progress: bool = True, memory: str | int | None = None):
    """The rule library over the lake into staging/suspects (no gate, no publication), in one MLflow run,
    within the memory budget (`memory`, else conf `screen.memory`). Returns (ScreenResult, rules);
    UsageError for a bad selection or a budget too small for one institution."""
    from pipelines.screen.pipeline import screen
    from pipelines.tracking import Tracker, suspect_metrics

    conf = conf or config.load()
    catalog, rules = select_rules(lake, period, institutions, tags=tags, families=families, rule_ids=rule_ids)
    budget = screen_memory(memory, conf)
    engine = make_engine(engine_name)
    with Tracker(lake, conf, tags={"step": "screen"}) as tracker:
        t0 = time.perf_counter()
        try:
            result = screen(lake, engine, catalog, rules, run_id=tracker.run_id, period=period,
                            institutions=institutions, progress=progress, memory=budget)
        finally:
            engine.close()
        result.wall_seconds = time.perf_counter() - t0
        tracker.log_run_params(engine=engine.name, periods=[period] if period else None,
                               fingerprint=result.fingerprint, input_versions=result.input_versions,
                               rule_ids=[r.id for r in rules], institutions=institutions)
        tracker.log_metrics({**suspect_metrics(result.suspects, result.rows_in, rules),
                             "screen_seconds": result.wall_seconds})
    return result, rules


def group_counts(t: pa.Table, dim: str) -> list[tuple[str, int, float]]:
    if t is None or t.num_rows == 0:
        return []
    g = t.group_by(dim).aggregate([("suspect_id", "count"), ("amount", "sum")])
    return [(r[dim], r["suspect_id_count"], float(r["amount_sum"] or 0)) for r in g.to_pylist()]
