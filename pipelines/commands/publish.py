"""`fundguard gate` (check the current staging list) and `fundguard publish` (gate it, then publish).

    fundguard gate --lake data/lake
    fundguard publish --lake data/lake --period 2023

Both read `staging/suspects` as the last `fundguard screen` wrote it. The gate's Data Docs go to
`<lake>/_reports/gate/<run_id>/index.html`.
Exit codes: 0 passed/published; 1 gate failed (nothing published); 2 nothing to gate.
"""
from __future__ import annotations

import argparse

from pipelines import config
from pipelines.commands._common import EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_OK, fail, lake_of
from pipelines.contract import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lake", help="lake root (default: conf `lake`)")
    parser.add_argument("--period", action="append", help="YYYY or YYYY-MM the run computed (repeatable)")
    parser.add_argument("--institution", action="append", help="fixmedins_code in scope (repeatable)")
    parser.add_argument("--include-draft", action="store_true", help="the run also screened draft rules")


def run(args) -> int:
    from pipelines.app.publication import gate_staging

    publish_it = args.command == "publish"
    conf = config.load()
    try:
        suspects, out = gate_staging(lake_of(args, conf), conf=conf, periods=args.period,
                                     institutions=args.institution, include_draft=args.include_draft,
                                     publish=publish_it)
    except UsageError as exc:
        return fail(args.command, str(exc), EXIT_BAD_INPUT)
    g = out.gate
    print(f"质量闸门 quality gate: {'通过 passed' if g.success else '未通过 FAILED'} "
          f"({g.results.get('gate_expectations')} expectations, {suspects.num_rows} suspects)")
    for f in g.failures:
        print(f"  ✗ {f}")
    print(f"  报告 report: {g.report_path}/index.html")
    if not g.success:
        if publish_it:
            print("未发布：gold/suspects 保持不变 / not published: gold/suspects left as it was")
        return EXIT_GATE_FAILED
    if publish_it:
        print(f"已发布 published: gold/suspects version {out.version}")
    return EXIT_OK
