"""`fundguard worksheet make|ingest`: on-site worksheets (现场检查工作底稿).

    fundguard worksheet make   --lake DIR --period 2023 --out DIR [--institution H ...]
    fundguard worksheet ingest --lake DIR --file F.xlsx [--institution H]

`make` writes one worksheet per institution: the named ones, else the targets of the period's latest
双随机 draw (their teams pre-filled), else every institution with open items. `ingest` records the
conclusions.

Exit codes: 0 written / all rows loaded; 1 some rows rejected; 2 the file was refused or bad usage.
"""
from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

from pipelines.commands import _common as _cli


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    mk = sub.add_parser("make", help="write pre-filled worksheets 生成工作底稿")
    _cli.add_lake(mk)
    mk.add_argument("--period", required=True, help="YYYY or YYYY-MM: the lists whose items are verified")
    mk.add_argument("--out", required=True, type=Path)
    mk.add_argument("--institution", action="append", help="only these institutions (repeatable)")
    ing = sub.add_parser("ingest", help="record a filled worksheet 导入核查结论")
    _cli.add_lake(ing)
    ing.add_argument("--file", required=True, type=Path)
    ing.add_argument("--institution", help="refuse the file unless it is this institution's worksheet")


def run(args) -> int:
    from pipelines import config
    from pipelines.workflow import store, worksheet
    from pipelines.workflow.sheets import FormError

    lake = _cli.lake_of(args)
    if args.action == "ingest":
        try:
            result = worksheet.ingest_worksheet(lake, args.file, recorded_at=_cli.parse_clock(None),
                                                batch_id=uuid.uuid4().hex, institution=args.institution)
        except (FormError, FileNotFoundError) as exc:
            return _cli.fail("worksheet", str(exc))
        print(result.summary())
        return _cli.EXIT_REJECTED if result.rejected else _cli.EXIT_OK

    conf = config.load("workflow")["worksheet"]
    draws = store.read_draws(lake, args.period[:4])
    teams = dict(zip(draws["fixmedins_code"], draws["inspector_names"].str.replace("|", "、", regex=False)))
    wanted = args.institution or (sorted(teams) if teams else None)
    cases = store.read_cases(lake, period=args.period, institutions=wanted)
    names = store.read_fixmedins(lake).set_index("fixmedins_code")["fixmedins_name"].to_dict()
    codes = wanted or sorted(set(cases.loc[cases["status"].isin(worksheet.OPEN_STATES), "fixmedins_code"]))
    args.out.mkdir(parents=True, exist_ok=True)
    for code in codes:
        items = worksheet.items_to_verify(cases[cases["fixmedins_code"] == code],
                                          high_amount=Decimal(str(conf["high_amount"])),
                                          max_items=int(conf.get("max_items") or 0))
        data = worksheet.build_worksheet(items, institution=code, institution_name=names.get(code, ""),
                                         period=args.period, inspectors=teams.get(code))
        path = args.out / f"worksheet_{code}_{args.period}.xlsx"
        path.write_bytes(data)
        print(f"  {code}: {len(items):>5} items → {path}")
    print(f"工作底稿 worksheets: {len(codes)}")
    return 0
