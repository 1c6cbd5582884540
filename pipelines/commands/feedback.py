"""`fundguard feedback --lake DIR --institution H --file F`: load an institution's answers to its list.

    fundguard feedback --lake data/lake --institution H001 --file H001_2023/feedback.xlsx

Exit codes: 0 every row loaded (or not answered yet); 1 some rows rejected (listed, recorded in
gold/case_rejects, the rest loaded); 2 the file was refused whole.
"""
from __future__ import annotations

import uuid
from pathlib import Path

from pipelines.commands import _common as _cli


def add_arguments(p) -> None:
    _cli.add_lake(p)
    p.add_argument("--institution", required=True, help="fixmedins_code of the answering institution")
    p.add_argument("--file", required=True, type=Path, help="feedback .xlsx or .csv")
    p.add_argument("--at", help="when the answers were received (yyyy-MM-dd[THH:MM:SS], UTC); default now")


def run(args) -> int:
    from pipelines.workflow.feedback import ingest_feedback
    from pipelines.workflow.sheets import FormError

    lake = _cli.lake_of(args)
    now = _cli.parse_clock(None)
    try:
        result = ingest_feedback(lake, args.file, institution=args.institution,
                                 received_at=_cli.parse_clock(args.at) if args.at else now, recorded_at=now,
                                 batch_id=uuid.uuid4().hex)
    except (FormError, ValueError, FileNotFoundError) as exc:
        return _cli.fail("feedback", str(exc))
    print(result.summary())
    return _cli.EXIT_REJECTED if result.rejected else _cli.EXIT_OK
