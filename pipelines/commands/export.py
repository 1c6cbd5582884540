"""`fundguard export`: one institution's audit package from gold/suspects; `--verify DIR` checks one.

    fundguard export --lake data/lake --institution H001 --period 2023-03 --out exports
    fundguard export --verify exports/H001_2023-03

Exit codes: 0 written / verified; 1 verification failed or nothing published yet; 2 refused request.
"""
from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

from pipelines import config
from pipelines.export.package import (
    ExportError, build_package, check_institution, package_name, period_months, rule_info, suspects_filter,
    verify_manifest, write_package,
)
from pipelines.storage import Lake, StorageError, utcnow

SUSPECTS = "gold/suspects"


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
    lake = Lake(args.lake or conf["lake"])
    if not lake.exists(SUSPECTS):
        _err(f"{SUSPECTS} does not exist under {lake.root}: nothing has been published yet")
        return 1
    if _institution_name(lake, args.institution) is None and lake.exists("silver/fixmedins"):
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


def export_packages(lake: Lake, pairs, out, *, generated_at, conf: dict | None = None,
                    rows=None, version: int | None = None) -> list[tuple[Path, dict]]:
    """Write one package per (institution, period) from one snapshot of gold/suspects; the command and the
    Airflow task both call this. Returns (package folder, files) pairs."""
    conf = conf if conf is not None else config.load()
    version = version if version is not None else lake.version(SUSPECTS)
    try:
        from pipelines.catalog import load_catalog
        rules = rule_info(load_catalog())
    except (OSError, ValueError) as exc:  # names fall back to rule ids
        print(f"warning: rule catalog not loaded ({exc}); rule names fall back to ids", file=sys.stderr)
        rules = {}
    high = (conf.get("export") or {}).get("high_amount")
    written = []
    for institution, period in pairs:
        check_institution(institution)
        part = rows if rows is not None else lake.read(SUSPECTS, version=version,
                                                       filter=suspects_filter(institution, period))
        files = build_package(part, institution, period, rules=rules, generated_at=generated_at,
                              institution_name=_institution_name(lake, institution), source_version=version,
                              high_amount=Decimal(str(high)) if high is not None else None)
        written.append((write_package(files, out, package_name(institution, period)), files))
    return written


def _institution_name(lake: Lake, code: str) -> str | None:
    if not lake.exists("silver/fixmedins"):
        return None
    import pyarrow.compute as pc
    try:
        t = lake.read("silver/fixmedins", columns=["fixmedins_code", "fixmedins_name"],
                      filter=pc.field("fixmedins_code") == code)
    except (StorageError, KeyError, ValueError):
        return None
    names = [n for n in t.column("fixmedins_name").to_pylist() if n]
    return names[-1] if names else None
