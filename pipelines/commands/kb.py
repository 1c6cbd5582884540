"""`fundguard kb`: the national knowledge base (医保智能监管"两库"知识库) as published, imported as versioned releases.

  fundguard kb import --from DIR [--lake DIR] [--effective-date YYYY-MM-DD] [--local DIR] [--partial]
  fundguard kb diff A B [--lake DIR]
  fundguard kb releases [--lake DIR]

Example:
  fundguard kb import --from ~/nhsa-kb-2025 --lake data/lake --effective-date 2025-07-01 --local rules/kb

Exit codes: 0 done; 1 imported, but points need curation, rows were rejected or counts differ (see the
reconciliation); 2 bad input or usage (a file refused, no batch file, an unknown release).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kb_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="import a folder of batch files as a new release 导入知识库批次")
    imp.add_argument("--from", dest="src", required=True, type=Path, help="folder of batch files (.xlsx, .csv)")
    imp.add_argument("--lake", type=Path, default=None, help="lake root (default: config `lake`)")
    imp.add_argument("--effective-date", type=_date, default=None,
                     help="date the release takes effect, YYYY-MM-DD (default: today) 生效日期")
    imp.add_argument("--local", type=Path, default=None,
                     help="a district's own kb CSVs (kb_hilist/kb_item_pair/kb_param), merged over the national "
                          "release (local wins) 本地知识库")
    imp.add_argument("--partial", action="store_true",
                     help="write the release from the accepted files when some are refused")
    d = sub.add_parser("diff", help="points added, removed and changed between two releases 版本比较")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--lake", type=Path, default=None)
    d.add_argument("--json", action="store_true", help="print the difference as JSON")
    r = sub.add_parser("releases", help="list the releases 版本列表")
    r.add_argument("--lake", type=Path, default=None)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from exc


def _lake(path):
    from pipelines import config
    from pipelines.storage import Lake
    return Lake(path or (config.REPO_ROOT / config.load("fundguard").get("lake", "data/lake")))


def run(args: argparse.Namespace) -> int:
    return {"import": _import, "diff": _diff, "releases": _releases}[args.kb_command](args)


def _import(args) -> int:
    from pipelines.kb.pipeline import KbImportError, import_release
    from pipelines.kb.reconcile import to_text

    try:
        res = import_release(args.src, _lake(args.lake), effective=args.effective_date or dt.date.today(),
                             local_dir=args.local, partial=args.partial)
    except KbImportError as exc:
        print(f"fundguard kb import: {exc}", file=sys.stderr)
        return 2
    print(to_text(res.reconciliation, res.release_id if res.written else None))
    print(res.message)
    rec = res.reconciliation
    if rec.refused:
        for r in rec.refused:
            print(f"fundguard kb import: refused {r}", file=sys.stderr)
        return 2
    return 1 if rec.rejected or rec.mismatches or rec.curation else 0


def _diff(args) -> int:
    from pipelines.kb.io import read_release
    from pipelines.kb.release import diff

    lake = _lake(args.lake)
    try:
        a, b = read_release(lake, args.a), read_release(lake, args.b)
    except KeyError as exc:
        print(f"fundguard kb diff: {exc.args[0]}", file=sys.stderr)
        return 2
    d = diff(*a, *b)
    if args.json:
        print(json.dumps(d, ensure_ascii=False, indent=1))
        return 0
    print(f"知识库版本比较 releases {args.a} → {args.b}: 新增 added {len(d['added'])}, 删除 removed "
          f"{len(d['removed'])}, 变更 changed {len(d['changed'])}")
    for label, rows in (("新增 added", d["added"]), ("删除 removed", d["removed"])):
        for p in rows:
            print(f"  {label}: 第{p['batch']}批 {p['kind']} {p['name']} (row {p['row']}, {p['status']})")
    for c in d["changed"]:
        print(f"  变更 changed: 第{c['batch']}批 {c['kind']} {c['name']}: {', '.join(c['changed'])} "
              f"{json.dumps(c['before'], ensure_ascii=False)} → {json.dumps(c['after'], ensure_ascii=False)}"
              + (f" codes +{c['codes_added']} -{c['codes_removed']}" if "codes" in c["changed"] else ""))
    return 0


def _releases(args) -> int:
    from pipelines.kb.io import releases

    rows = releases(_lake(args.lake))
    print(f"{'版本 release':<20} {'生效 effective':<14} {'知识点 points':>13} {'已映射 mapped':>13} {'待整理 curation':>15}  文件 files")
    for r in rows:
        files = ", ".join(s["file"] for s in json.loads(r["sources"]))
        print(f"{r['release_id']:<20} {str(r['effective_date']):<14} {r['points']:>13} {r['points_mapped']:>13} "
              f"{r['points_curation']:>15}  {files}")
    return 0
