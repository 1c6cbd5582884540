"""`fundguard run`: load the drop, screen, gate and publish in one go (contract §6).

The same functions back the single-step commands and the Airflow tasks:
`load_drop` (ingest + knowledge base), `screen_step` (rules → staging), `gate_and_publish`.
Exit codes: 0 published; 1 the gate blocked publication; 2 bad input or usage (refused file, bad period).
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from pipelines import config
from pipelines.storage import Lake, utcnow

EXIT_PUBLISHED, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2
_PERIOD_RE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2]))?$")


class UsageError(ValueError):
    pass


def check_period(period: str | None) -> str | None:
    if period and not _PERIOD_RE.match(period):
        raise UsageError(f"--period must be YYYY or YYYY-MM, got {period!r}")
    return period


def check_institutions(codes: list[str] | None) -> list[str] | None:
    for c in codes or []:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", c):
            raise UsageError(f"not an institution code: {c!r}")
    return codes or None


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


def load_drop(landing: Path, lake: Lake, conf: dict, progress: bool = True):
    """Ingest a landing drop; make sure a knowledge base is in silver (the shipped sample otherwise)."""
    from pipelines.ingest.pipeline import ingest_drop, load_knowledge_base
    from pipelines.quality.silver import validate_silver

    report = ingest_drop(Path(landing), lake, salt=conf["pii_salt"], batch_rows=int(conf["ingest"]["batch_rows"]),
                         progress=progress, validate=validate_silver)
    if not lake.exists("silver/kb_hilist"):
        kb_dir = Path(conf["kb_dir"])
        if not kb_dir.is_absolute():
            kb_dir = config.REPO_ROOT / kb_dir
        load_knowledge_base(kb_dir, lake, salt=conf["pii_salt"], batch_rows=int(conf["ingest"]["batch_rows"]),
                            progress=False)
    return report


def screen_memory(value, conf: dict) -> int | None:
    """The screening memory budget in bytes: `--memory` when given, else conf `screen.memory` (none: whole lake)."""
    from pipelines.screen.plan import parse_memory
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


def screen_gate_publish(lake: Lake, *, engine_name: str = "duckdb", period: str | None = None,
                        institutions: list[str] | None = None, tags: list[str] | None = None,
                        families: list[str] | None = None, rule_ids: list[str] | None = None,
                        publish_result: bool = True, spark=None, conf: dict | None = None,
                        progress: bool = True, memory: str | int | None = None) -> RunOutcome:
    """Screen into staging, gate, and publish to gold/suspects when the gate passes. One MLflow run."""
    from pipelines.publish.cli import gate_and_publish
    from pipelines.catalog import load_catalog
    from pipelines.screen.pipeline import screen
    from pipelines.tracking import Tracker, suspect_metrics

    conf = conf or config.load()
    check_period(period)
    check_institutions(institutions)
    catalog = load_catalog()
    rules = catalog.select(tags=tags, families=families, rule_ids=rule_ids)
    if not rules:
        raise UsageError("no active rule matches the selection")
    periods = [period] if period else None
    budget = screen_memory(memory, conf)
    with Tracker(lake, conf) as tracker:
        run_id = tracker.run_id
        engine = make_engine(engine_name, spark)
        try:
            result = screen(lake, engine, catalog, rules, run_id=run_id, period=period,
                            institutions=institutions, progress=progress, memory=budget)
        finally:
            engine.close()
        tracker.log_run_params(engine=engine_name, periods=periods, fingerprint=result.fingerprint,
                               input_versions=result.input_versions, rule_ids=[r.id for r in rules],
                               institutions=institutions)
        out = gate_and_publish(lake, result.suspects, catalog=catalog, rules=rules, conf=conf, periods=periods,
                               institutions=institutions, publish_when_passed=publish_result, run_id=run_id,
                               fingerprint=result.fingerprint, input_versions=result.input_versions)
        gate = out.gate
        tracker.log_metrics({**suspect_metrics(result.suspects, result.rows_in, rules), **gate.results})
        tracker.log_dict({"seconds_per_rule": result.seconds_per_rule, "gate_failures": gate.failures},
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


def group_counts(t: pa.Table, dim: str) -> list[tuple[str, int, float]]:
    if t is None or t.num_rows == 0:
        return []
    g = t.group_by(dim).aggregate([("suspect_id", "count"), ("amount", "sum")])
    return [(r[dim], r["suspect_id_count"], float(r["amount_sum"] or 0)) for r in g.to_pylist()]


# ------------------------------------------------------------------------------------------ summary

def summarize(outcome: RunOutcome, lake: Lake, load_report=None) -> str:
    """The short summary `fundguard run` prints (Chinese + English)."""
    import duckdb

    lines = []
    if load_report is not None:
        lines.append(load_report.to_text())
    t = outcome.suspects
    lines.append(f"\n疑点 Suspects: {t.num_rows if t is not None else 0}   运行 run_id: {outcome.run_id}")
    if t is not None and t.num_rows:
        con = duckdb.connect()
        con.register("s", t)
        for dim, label in (("family", "规则族 family"), ("category", "违规类别 category"),
                           ("fixmedins_code", "定点医药机构 institution")):
            rows = con.sql(f"SELECT {dim}, count(*) n, sum(amount) amt FROM s GROUP BY 1 ORDER BY 3 DESC").fetchall()
            lines.append(f"\n  {label}:")
            lines.extend(f"    {n:>7} 条 {amt:>14,.2f} 元   {k}" for k, n, amt in rows)
        total = con.sql("SELECT sum(amount) FROM s").fetchall()[0][0]
        lines.append(f"\n  涉及金额合计 amount at stake: {total:,.2f} 元")
    if outcome.published:
        lines.append(f"\n已发布 Published: {lake.path('gold/suspects')} (Delta version {outcome.gold_version})")
    else:
        lines.append(f"\n未发布 NOT published: {outcome.reason}")
    if outcome.report_path:
        lines.append(f"质量报告 Gate report: {outcome.report_path}")
    lines.append(f"数据湖 Lake: {lake.root}  (bronze/ silver/ quarantine staging/ gold/)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ command

def add_screen_arguments(p) -> None:
    """The options `fundguard run` and `fundguard screen` share."""
    p.add_argument("--lake", type=Path, help="lake root 数据湖根目录 (default: conf lake)")
    p.add_argument("--engine", choices=["duckdb", "spark"], help="screening engine (default: conf engine)")
    p.add_argument("--period", help="YYYY or YYYY-MM 期间")
    p.add_argument("--institution", action="append", help="only these institutions (repeatable)")
    p.add_argument("--tags", action="append", help="only rules with these focus tags, e.g. 血液净化 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--memory", help="memory budget, e.g. 4GB (default: conf screen.memory); a lake that does not "
                                    "fit it is screened in batches of institutions and persons 内存预算")


def add_arguments(p) -> None:
    p.add_argument("--landing", required=True, type=Path, help="landing drop folder 数据包目录")
    add_screen_arguments(p)


def run(args) -> int:
    from pipelines.ingest.pipeline import IngestError
    from pipelines.screen.plan import BudgetError

    conf = config.load()
    lake = Lake(args.lake or conf["lake"])
    try:
        check_period(args.period)
        check_institutions(args.institution)
        if not Path(args.landing).is_dir():
            raise UsageError(f"landing drop not found: {args.landing}")
        report = load_drop(args.landing, lake, conf, progress=not args.quiet)
        outcome = screen_gate_publish(lake, engine_name=args.engine or conf["engine"], period=args.period,
                                      institutions=args.institution, tags=args.tags, conf=conf,
                                      progress=not args.quiet, memory=args.memory)
    except (UsageError, IngestError, BudgetError) as exc:
        print(f"fundguard run: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(summarize(outcome, lake, report))
    if not outcome.published:
        print(f"fundguard run: not published: {outcome.reason}", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_PUBLISHED
