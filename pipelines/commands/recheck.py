"""`fundguard recheck --lake DIR --period 2024 [--previous 2023] [--out F.csv]`: 回头看.

Lists the institutions whose problems confirmed or upheld in the previous period are still found
this period (same rule, same institution), from gold/suspects and the case events.

    fundguard recheck --lake data/lake --period 2024 --out recheck.csv

Exit codes: 0 listed (possibly none); 2 bad input or usage.
"""
from __future__ import annotations

from pathlib import Path

from pipelines.commands import _common as _cli


def add_arguments(p) -> None:
    _cli.add_lake(p)
    p.add_argument("--period", required=True, help="this period, YYYY or YYYY-MM")
    p.add_argument("--previous", help="the period whose problems are re-checked (default: the one before)")
    p.add_argument("--out", type=Path, help="write every (institution, rule) row to this .csv")


def run(args) -> int:
    from pipelines.workflow import recheck, store

    lake = _cli.lake_of(args)
    previous = args.previous or store.previous_period(args.period)
    result = recheck.recheck(store.read_cases(lake, period=previous), store.read_suspects(lake, period=args.period))
    for r in result.itertuples(index=False):
        mark = "已整改 rectified" if r.rectified else "未整改 NOT rectified"
        print(f"  {r.fixmedins_code:<12} {r.rule_id:<32} {previous}: {r.problems_before:>4}  "
              f"{args.period}: {r.hits_now:>4}  {mark}")
    codes = recheck.not_rectified(result)
    print(f"回头看 {previous}→{args.period}: {len(codes)} institutions to re-check 需复查机构: {', '.join(codes) or '-'}")
    if args.out:
        result.to_csv(args.out, index=False, encoding="utf-8-sig")
    return 0
