"""`fundguard ingest`: load a landing drop into bronze/silver and print the reconciliation 入库对账.

    fundguard ingest --landing data/landing --lake data/lake

The knowledge base of `--kb-dir` (default: conf `kb_dir`, the shipped sample) fills the kb tables silver lacks.
The silver suite checks the load as in `fundguard run` and the ingest DAG (its warnings, e.g. an incomplete
settlement, are printed; its failures restore silver).
Exit codes: 0 loaded and reconciled; 1 the reconciliation does not balance; 2 a refused drop or file, or a
load the silver suite failed (rolled back).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pipelines import config
from pipelines.logs import show_progress
from pipelines.commands._common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REJECTED, fail, lake_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--landing", required=True, type=Path, help="the drop folder 落地数据目录")
    parser.add_argument("--lake", type=Path, default=None, help="lake root (default: config `lake`)")
    parser.add_argument("--drop-id", default=None, help="drop id (default: the folder name)")
    parser.add_argument("--batch-rows", type=int, default=None, help="rows per streamed batch")
    parser.add_argument("--kb-dir", type=Path, default=None,
                        help="load this knowledge base (default: config kb_dir) for the kb tables silver lacks")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from pipelines.app.load import load_drop
    from pipelines.ingest.pipeline import IngestError

    conf = config.load()
    try:
        progress = not args.no_progress and show_progress()
        report, kb = load_drop(args.landing, lake_of(args, conf), conf, progress=progress,
                               drop_id=args.drop_id, batch_rows=args.batch_rows,
                               kb_dir=args.kb_dir)
    except IngestError as exc:
        return fail("ingest", str(exc), EXIT_BAD_INPUT)
    print(report.to_text())
    if kb is not None:
        print(kb.to_text())
    return EXIT_OK if report.balanced else EXIT_REJECTED
