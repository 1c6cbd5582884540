"""`fundguard analyze --lake DIR [--period YYYY|YYYY-MM]`: indicators, peer outliers, the key drugs and
consumables watch and the institution risk ranking (监管指标、同类机构离群、重点药品耗材监测、机构风险排序).

Example:
    fundguard analyze --lake data/lake --period 2023

Writes gold/indicators, gold/peer_outliers, gold/item_watch (when fee lines exist) and gold/institution_risk
for the period (every year with visits when omitted), in one MLflow run.
Exit codes: 0 written; 2 bad input or usage (bad period, no visits or settlements in the lake).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0]
    parser.epilog = "example: fundguard analyze --lake data/lake --period 2023\nexit codes: 0 written, 2 bad input"
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--lake", required=True, type=Path, help="lake root (bronze/silver/gold Delta tables)")
    parser.add_argument("--period", default=None, help="YYYY or YYYY-MM (default: every year with visits)")
    parser.add_argument("--top", type=int, default=10, help="riskiest institutions to print (default 10)")


def run(args: argparse.Namespace) -> int:
    from pipelines import contract
    from pipelines.app.analyze import analyze, summary
    from pipelines.storage import Lake

    try:
        contract.check_period(args.period)
        if not args.lake.is_dir():
            raise contract.UsageError(f"lake {args.lake} does not exist / 数据湖目录不存在")
        res = analyze(Lake(args.lake), args.period)
    except contract.UsageError as exc:
        print(f"analyze: {exc}", file=sys.stderr)
        return 2
    print(summary(res, args.top))
    return 0
