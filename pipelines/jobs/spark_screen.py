"""Spark job: screen, gate and publish one period of a lake on the Spark engine.

    spark-submit pipelines/jobs/spark_screen.py --lake /data/fundguard/lake --period 2024-03
        [--institution H001 ...] [--outcome /data/fundguard/lake/_orchestration/<run>.json]

The same function as `fundguard run`/`fundguard screen` (`screen_gate_publish`), with
`engine_name="spark"`. Exit codes: 0 published; 1 the gate refused publication; 2 bad usage.
With `--outcome` (how the Airflow DAG submits it) the verdict is written to that JSON file and a gate
failure exits 0: the DAG's `check_gate` task reads the file and fails the run without retrying, while a
crash of the job (non-zero exit) stays retryable.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_PUBLISHED, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="spark_screen", description=__doc__.splitlines()[0])
    p.add_argument("--lake", required=True, type=Path, help="lake root 数据湖根目录")
    p.add_argument("--period", default="", help="YYYY or YYYY-MM; empty: every period in the lake")
    p.add_argument("--institution", action="append", help="only these institutions (repeatable)")
    p.add_argument("--outcome", type=Path, help="write the outcome JSON here (gate failure then exits 0)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from pipelines import config
    from pipelines.app import orchestration
    from pipelines.app.screening import screen_gate_publish
    from pipelines.contract import UsageError
    from pipelines.storage import Lake

    args = parse_args(argv)
    period = args.period or None
    try:
        outcome = screen_gate_publish(Lake(args.lake), engine_name="spark", period=period,
                                      institutions=args.institution, conf=config.load(), progress=False)
    except UsageError as exc:
        print(f"spark_screen: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    summary = orchestration.outcome_summary(outcome, period)
    print(json.dumps(summary, ensure_ascii=False, default=str))
    if args.outcome:
        orchestration.write_outcome(args.outcome, summary)
        return EXIT_PUBLISHED
    if not outcome.published:
        print(orchestration.gate_failure_message(summary), file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_PUBLISHED


if __name__ == "__main__":
    sys.exit(main())
