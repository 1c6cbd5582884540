"""`fundguard export`: one institution's audit package from gold/suspects; `--verify DIR` checks one.

    fundguard export --lake data/lake --institution H001 --period 2023-03 --out exports
    fundguard export --verify exports/H001_2023-03

Exit codes: 0 written / verified; 1 verification failed or nothing published yet; 2 refused request.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipelines import config
from pipelines.commands._common import lake_of
from pipelines.contract import GOLD_SUSPECTS as SUSPECTS
from pipelines.export.package import ExportError, check_institution, period_months, verify_manifest
from pipelines.storage import utcnow


def add_arguments(p) -> None:
    p.add_argument("--lake", type=Path, help="lake root (default: conf lake)")
    p.add_argument("--institution", help="ONE institution code (fixmedins_code), e.g. H001")
    p.add_argument("--period", help="YYYY or YYYY-MM")
    p.add_argument("--out", type=Path, help="folder receiving <institution>_<period>/")
    p.add_argument("--verify", type=Path, metavar="DIR", help="check a package folder against its manifest")


def _err(msg: str) -> None:
    print(f"fundguard export: {msg}", file=sys.stderr)


def run(args) -> int:
    if args.verify:
        problems = verify_manifest(args.verify)
        for p in problems:
            print(f"FAIL {p}")
        print(f"{args.verify}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        return 0 if not problems else 1
    try:
        if args.institution is None or not args.period or not args.out:
            raise ExportError("--institution, --period and --out are required (or --verify DIR)")
        check_institution(args.institution)
        period_months(args.period)
    except ExportError as exc:
        _err(str(exc))
        return 2

    conf = config.load()
    lake = lake_of(args, conf)
    if not lake.exists(SUSPECTS):
        _err(f"{SUSPECTS} does not exist under {lake.root}: nothing has been published yet")
        return 1
    from pipelines.app.exports import export_packages, institution_name

    if institution_name(lake, args.institution) is None and lake.exists("silver/fixmedins"):
        print(f"warning: {args.institution} is not in silver/fixmedins", file=sys.stderr)
    try:
        [(target, files)] = export_packages(lake, [(args.institution, args.period)], args.out,
                                            generated_at=utcnow(), conf=conf)
    except ExportError as exc:
        _err(str(exc))
        return 2
    import json
    manifest = json.loads(files["manifest.json"])
    if manifest["empty"]:
        print(f"{args.institution} {args.period}: no suspects (本期无疑点); empty package written to {target}")
    else:
        print(f"{args.institution} {args.period}: {manifest['row_count']} suspects, "
              f"{manifest['total_amount']} CNY -> {target}")
    if not manifest["charts"]["font"]:
        print("note: no CJK font installed, charts labelled in English (install fonts-noto-cjk for Chinese)",
              file=sys.stderr)
    return 0
