"""`fundguard report --lake DIR --period 2023 --out F.html`: the period report (期间报告).

Figures from `report.period_figures` (printed as JSON with --json); charts embedded as PNG; rule
precision logged to MLflow (one run per report, step = period) unless --no-track.

    fundguard report --lake data/lake --period 2023 --out report-2023.html --json report-2023.json

Exit codes: 0 written; 2 bad input or usage (bad period).
"""
from __future__ import annotations

import json
from pathlib import Path

from pipelines.commands import _common as _cli


def add_arguments(p) -> None:
    _cli.add_lake(p)
    p.add_argument("--period", required=True, help="YYYY or YYYY-MM")
    p.add_argument("--out", required=True, type=Path, help="the report, .html")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument("--no-track", action="store_true", help="do not log rule precision to MLflow")


def run(args) -> int:
    import pandas as pd

    from pipelines import config
    from pipelines.contract import UsageError, check_period
    from pipelines.export.summary import find_cjk_font
    from pipelines.workflow import precision, report, store

    try:
        check_period(args.period)
    except UsageError as exc:
        return _cli.fail("report", str(exc))
    lake = _cli.lake_of(args)
    wconf = config.load("workflow")
    inst = store.read_fixmedins(lake)
    figures = report.period_figures(
        store.read_cases(lake, period=args.period), period=args.period, institutions=inst,
        draws=store.read_draws(lake, args.period[:4]),
        previous_cases=store.read_cases(lake, period=store.previous_period(args.period)),
        conf=wconf, strata=wconf["sampling"]["strata"])
    font = find_cjk_font()          # one that draws Chinese, else English labels
    now = _cli.parse_clock(None)
    html = report.render_html(figures, report.charts(figures, font), generated_at=now.isoformat(),
                              names=inst.set_index("fixmedins_code")["fixmedins_name"].to_dict() if len(inst) else {})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(html, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    if not args.no_track:
        run_id = precision.track(lake, config.load(), args.period, pd.DataFrame(figures["precision"],
                                                                                columns=precision.COLUMNS))
        print(f"MLflow run {run_id}: precision of {len(figures['precision'])} rules")
    a = figures["amounts"]
    print(f"{args.period}: findings {figures['findings']['total']}, flagged {a['flagged']:,.2f}, confirmed "
          f"{a['confirmed']:,.2f}, recovered {a['recovered']:,.2f}; rules to review "
          f"{', '.join(figures['rules_to_review']) or '-'}; to re-check {', '.join(figures['not_rectified']) or '-'}"
          f"{'' if font else '  (no CJK font: chart labels in English)'}")
    print(f"报告 report → {args.out}")
    return 0
