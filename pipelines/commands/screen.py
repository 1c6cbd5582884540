"""`fundguard screen`: run the rule library over the lake into staging/suspects (no publication).

    fundguard screen --lake data/lake --period 2023 [--engine spark] [--tags 血液净化] [--institution H001]

Exit codes: 0 screened into staging; 2 bad input or usage (bad period, no rule matches the selection).
"""
from __future__ import annotations

from pipelines import config
from pipelines.logs import show_progress
from pipelines.commands._common import EXIT_BAD_INPUT, EXIT_OK, add_screen_arguments, fail, lake_of
from pipelines.contract import UsageError


def add_arguments(p) -> None:
    add_screen_arguments(p)
    p.add_argument("--family", action="append", help="only these rule families")
    p.add_argument("--rule", action="append", help="only these rule ids")


def run(args) -> int:
    from pipelines.app.screening import group_counts, screen_to_staging

    conf = config.load()
    try:
        result, rules = screen_to_staging(lake_of(args, conf), engine_name=args.engine or conf["engine"],
                                          period=args.period, institutions=args.institution, tags=args.tags,
                                          families=args.family, rule_ids=args.rule, conf=conf,
                                          progress=not args.quiet and show_progress(), memory=args.memory)
    except UsageError as exc:
        return fail("screen", str(exc), EXIT_BAD_INPUT)
    print(f"规则 rules: {len(rules)}  疑点 suspects: {result.suspects.num_rows}  "
          f"staging version {result.staging_version}  run_id {result.run_id}")
    print(f"用时 time: screen() {result.wall_seconds:.1f}s, {getattr(result, 'jobs', 1)} 批 batches")
    for key, n, amt in sorted(group_counts(result.suspects, "family"), key=lambda r: -r[2]):
        print(f"  {n:>7} 条 {amt:>14,.2f} 元   {key}")
    return EXIT_OK
