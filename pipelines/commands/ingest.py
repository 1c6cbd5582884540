"""`fundguard ingest --landing DIR --lake DIR`: load a drop, print the reconciliation 入库对账."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--landing", required=True, type=Path, help="the drop folder 落地数据目录")
    parser.add_argument("--lake", type=Path, default=None, help="lake root (default: config `lake`)")
    parser.add_argument("--drop-id", default=None, help="drop id (default: the folder name)")
    parser.add_argument("--batch-rows", type=int, default=None, help="rows per streamed batch")
    parser.add_argument("--kb-dir", type=Path, default=None,
                        help="load this knowledge base (default: config kb_dir) when silver has none")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from pipelines import config
    from pipelines.ingest.pipeline import IngestError, ingest_drop, load_knowledge_base
    from pipelines.storage import Lake

    cfg = config.load("fundguard")
    lake = Lake(args.lake or (config.REPO_ROOT / cfg.get("lake", "data/lake")))
    batch_rows = args.batch_rows or int(cfg.get("ingest", {}).get("batch_rows", 250_000))
    salt = cfg["pii_salt"]
    try:
        report = ingest_drop(args.landing, lake, drop_id=args.drop_id, salt=salt, batch_rows=batch_rows,
                             progress=not args.no_progress)
        print(report.to_text())
        kb_dir = args.kb_dir or (config.REPO_ROOT / cfg.get("kb_dir", "rules/kb"))
        if Path(kb_dir).is_dir():
            kb = load_knowledge_base(kb_dir, lake, salt=salt, batch_rows=batch_rows, progress=False)
            if kb is not None:
                print(kb.to_text())
    except IngestError as exc:
        print(f"fundguard ingest: {exc}", file=sys.stderr)
        return 2
    return 0 if report.balanced else 1
