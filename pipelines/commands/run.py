"""`fundguard run`: load the drop, screen, gate and publish in one go (contract §6).

    fundguard run --landing data/landing --lake data/lake --engine duckdb --period 2023 [--accept-drop]
    fundguard run --landing data/drop-2024-02 --lake data/lake --incremental

`--incremental` re-screens only what the drop changed since the last publication (the changed institutions'
partitions and the buckets of the persons it touched) and replaces only those findings: the published list
equals a full re-screen. When the last publication cannot be its base (nothing published, a partial or
different rule set, a changed knowledge base), the run is a full one and says why.

Publication replaces exactly the (institution, month) scope screened; a list that would empty that scope or
shrink it far below its last publication needs `--accept-drop`.
Exit codes: 0 published; 1 the gate blocked publication; 2 bad input or usage (refused file, bad period);
3 the lake is busy.
"""
from __future__ import annotations

from pathlib import Path

from pipelines import config
from pipelines.logs import show_progress
from pipelines.commands._common import (EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_OK, add_screen_arguments, fail,
                                        lake_of)
from pipelines.contract import GOLD_SUSPECTS, UsageError, check_institutions, check_period


def add_arguments(p) -> None:
    p.add_argument("--landing", required=True, type=Path, help="landing drop folder 数据包目录")
    add_screen_arguments(p)
    p.add_argument("--accept-drop", action="store_true",
                   help="publish even when the list empties or shrinks a scope far below its last publication")
    p.add_argument("--incremental", action="store_true",
                   help="re-screen only the institutions and persons the drop changed since the last publication "
                        "and replace only their findings (a full run, saying why, when that publication cannot "
                        "be the base) 增量筛查")


def run(args) -> int:
    from pipelines.app.load import load_drop
    from pipelines.app.screening import screen_gate_publish
    from pipelines.ingest.pipeline import IngestError
    from pipelines.publish.publisher import PublishError

    conf = config.load()
    lake = lake_of(args, conf)
    try:
        check_period(args.period)
        check_institutions(args.institution)
        if not Path(args.landing).is_dir():
            raise UsageError(f"landing drop not found: {args.landing}")
        report, _ = load_drop(args.landing, lake, conf, progress=not args.quiet and show_progress())
        print(report.to_text(), flush=True)                 # the reconciliation as soon as the load ends
        outcome = screen_gate_publish(lake, engine_name=args.engine or conf["engine"], period=args.period,
                                      institutions=args.institution, tags=args.tags, conf=conf,
                                      progress=not args.quiet and show_progress(), accept_drop=args.accept_drop,
                                      memory=args.memory, incremental=args.incremental)
    except (UsageError, IngestError) as exc:
        return fail("run", str(exc), EXIT_BAD_INPUT)
    except PublishError as exc:
        return fail("run", f"未发布 / not published: {exc}", EXIT_GATE_FAILED)
    print(summarize(outcome, lake))
    if not outcome.published:
        return fail("run", f"not published: {outcome.reason}", EXIT_GATE_FAILED)
    return EXIT_OK


def summarize(outcome, lake, load_report=None) -> str:
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
        from pipelines.app.publication import scope_text
        scope = getattr(outcome.screen, "scope", None)
        replaced = outcome.scope_note or f"替换范围 replaced {scope_text(scope)}"
        lines.append(f"\n已发布 Published: {lake.path(GOLD_SUSPECTS)} (Delta version {outcome.gold_version}; {replaced})")
    else:
        lines.append(f"\n未发布 NOT published: {outcome.reason}")
    if outcome.report_path:
        summary = getattr(outcome.gate, "summary_path", None)
        lines.append(f"质量报告 Gate report: {summary or outcome.report_path}")
    lines.append(f"数据湖 Lake: {lake.root}  (bronze/ silver/ quarantine staging/ gold/)")
    return "\n".join(lines)


