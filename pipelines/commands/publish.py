"""`fundguard gate` (check the current staging list) and `fundguard publish` (gate it, then publish).

    fundguard gate --lake data/lake
    fundguard publish --lake data/lake [--period 2023] [--accept-drop]

Both read `staging/suspects` as the last `fundguard screen` wrote it, with the (institution, month) scope
that screening recorded (`staging/scope`): publish replaces exactly that scope of gold/suspects. A list that
would empty a scope with input rows or published rows, or shrink it far below its last publication
(conf `gate.drop_ratio`, `gate.drop_min_rows`), is published only with `--accept-drop`. The gate's Data Docs
go to `<lake>/_reports/gate/<run_id>/`: `gate.html` (the verdict, offline) and `index.html` (Data Docs).
Exit codes: 0 passed/published; 1 gate failed (nothing published); 2 nothing to gate, or --period/--institution
name another scope than staging holds; 3 the lake is busy.
"""
from __future__ import annotations

import argparse

from pipelines import config
from pipelines.commands._common import EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_OK, fail, lake_of
from pipelines.contract import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lake", help="lake root (default: conf `lake`)")
    parser.add_argument("--period", action="append",
                        help="YYYY or YYYY-MM: refuse unless staging screened exactly these months (repeatable)")
    parser.add_argument("--institution", action="append",
                        help="fixmedins_code: refuse unless staging screened exactly these institutions (repeatable)")
    parser.add_argument("--include-draft", action="store_true", help="the run also screened draft rules")
    parser.add_argument("--accept-drop", action="store_true",
                        help="publish even when the list empties or shrinks a scope far below its last publication")


def run(args) -> int:
    from pipelines.app.publication import gate_staging
    from pipelines.publish.publisher import PublishError

    publish_it = args.command == "publish"
    conf = config.load()
    try:
        suspects, out = gate_staging(lake_of(args, conf), conf=conf, periods=args.period,
                                     institutions=args.institution, include_draft=args.include_draft,
                                     publish=publish_it, accept_drop=args.accept_drop)
    except UsageError as exc:
        return fail(args.command, str(exc), EXIT_BAD_INPUT)
    except PublishError as exc:
        return fail(args.command, f"未发布 / not published: {exc}", EXIT_GATE_FAILED)
    g = out.gate
    print(f"质量闸门 quality gate: {'通过 passed' if g.success else '未通过 FAILED'} "
          f"({g.results.get('gate_expectations')} expectations, {suspects.num_rows} suspects, "
          f"范围 scope {out.scope_text()})")
    for f in g.failures:
        print(f"  ✗ {f}")
    print(f"  报告 report: {g.summary_path or g.report_path}  (detail: {g.report_path}/index.html)")
    if not g.success:
        if publish_it:
            print("未发布：gold/suspects 保持不变 / not published: gold/suspects left as it was")
        return EXIT_GATE_FAILED
    if publish_it:
        only = (f"；仅替换所筛 {len(out.only_rules)} 条规则的疑点，其他规则的疑点不变 / only the findings of the "
                f"{len(out.only_rules)} rules screened, every other rule's stay" if out.only_rules else "")
        print(f"已发布 published: gold/suspects version {out.version}，替换筛查范围 replaced the screened scope: "
              f"{out.scope_text()}{only}")
    return EXIT_OK
