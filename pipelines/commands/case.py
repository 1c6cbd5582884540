"""`fundguard case status|history|close`: where the cases stand, one case's history, and closing cases
from a recovery file (suspect_id, recovered_amount, closed_on, handled_by, note) 案件跟踪与追回.

    fundguard case status  --lake data/lake --period 2023 --out cases.csv
    fundguard case history --lake data/lake --suspect 3f9c…
    fundguard case close   --lake data/lake --file recovered.xlsx

Exit codes: 0 done; 1 some rows of the recovery file were rejected (the rest recorded); 2 bad input or usage.
"""
from __future__ import annotations

import uuid
from pathlib import Path

from pipelines.commands import _common as _cli


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    st = sub.add_parser("status", help="cases by status 案件状态")
    _cli.add_lake(st)
    st.add_argument("--period", help="YYYY or YYYY-MM")
    st.add_argument("--institution")
    st.add_argument("--out", type=Path, help="write every case's current state to this .csv")
    hi = sub.add_parser("history", help="one case's history 案件轨迹")
    _cli.add_lake(hi)
    hi.add_argument("--suspect", required=True)
    cl = sub.add_parser("close", help="close cases from a recovery file 追回结案")
    _cli.add_lake(cl)
    cl.add_argument("--file", required=True, type=Path)


def run(args) -> int:
    from pipelines.workflow import cases, store
    from pipelines.workflow.sheets import FormError

    lake = _cli.lake_of(args)
    if args.action == "status":
        cur = store.read_cases(lake, period=args.period, institution=args.institution)
        counts = cur.groupby("status").size().to_dict() if not cur.empty else {}
        for s in cases.STATES:
            print(f"{s:<10} {cases.STATUS_LABELS[s]:<4} {counts.get(s, 0):>8}")
        if args.out:
            cur.to_csv(args.out, index=False, encoding="utf-8-sig")
            print(f"written {args.out}")
        return 0
    if args.action == "history":
        s = store.read_suspects(lake, ids={args.suspect})
        if s.empty:
            return _cli.fail("case", f"unknown or unpublished suspect {args.suspect}")
        import pandas as pd

        def show(v) -> str:
            return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

        for e in cases.history(s.iloc[0].to_dict(), store.read_events(lake, ids={args.suspect})):
            print(f"{show(e['decided_at']):<26} {e['status']:<10} {show(e.get('actor')):<20} "
                  f"{show(e.get('amount')):>12} {show(e.get('reason'))} {show(e.get('evidence_ref'))}")
        return 0
    from pipelines.workflow.recovery import ingest_recoveries

    try:
        result = ingest_recoveries(lake, args.file, recorded_at=_cli.parse_clock(None), batch_id=uuid.uuid4().hex)
    except (FormError, FileNotFoundError) as exc:
        return _cli.fail("case", str(exc))
    print(result.summary())
    return _cli.EXIT_REJECTED if result.rejected else _cli.EXIT_OK
