"""`fundguard screen`: run the rule library over the lake into staging/suspects (no publication)."""
from __future__ import annotations

import sys
from pathlib import Path

from pipelines import config
from pipelines.storage import Lake


def add_arguments(p) -> None:
    from pipelines.run import add_screen_arguments

    add_screen_arguments(p)
    p.add_argument("--family", action="append", help="only these rule families")
    p.add_argument("--rule", action="append", help="only these rule ids")


def run(args) -> int:
    from pipelines.run import UsageError, check_institutions, check_period, group_counts, make_engine, screen_memory
    from pipelines.catalog import load_catalog
    from pipelines.screen.pipeline import screen
    from pipelines.screen.plan import BudgetError

    conf = config.load()
    lake = Lake(args.lake or conf["lake"])
    try:
        check_period(args.period)
        check_institutions(args.institution)
        catalog = load_catalog()
        rules = catalog.select(tags=args.tags, families=args.family, rule_ids=args.rule)
        if not rules:
            raise UsageError("no active rule matches the selection")
        budget = screen_memory(args.memory, conf)
        engine = make_engine(args.engine or conf["engine"])
    except UsageError as exc:
        print(f"fundguard screen: {exc}", file=sys.stderr)
        return 2
    from pipelines.tracking import Tracker, suspect_metrics

    with Tracker(lake, conf, tags={"step": "screen"}) as tracker:
        try:
            result = screen(lake, engine, catalog, rules, run_id=tracker.run_id, period=args.period,
                            institutions=args.institution, progress=not args.quiet, memory=budget)
        except BudgetError as exc:
            print(f"fundguard screen: {exc}", file=sys.stderr)
            return 2
        finally:
            engine.close()
        tracker.log_run_params(engine=engine.name, periods=[args.period] if args.period else None,
                               fingerprint=result.fingerprint, input_versions=result.input_versions,
                               rule_ids=[r.id for r in rules], institutions=args.institution)
        tracker.log_metrics(suspect_metrics(result.suspects, result.rows_in, rules))
    print(f"规则 rules: {len(rules)}  疑点 suspects: {result.suspects.num_rows}  "
          f"staging version {result.staging_version}  run_id {result.run_id}")
    for key, n, amt in sorted(group_counts(result.suspects, "family"), key=lambda r: -r[2]):
        print(f"  {n:>7} 条 {amt:>14,.2f} 元   {key}")
    return 0
