"""`fundguard gate` (check the current staging list) and `fundguard publish` (gate it, then publish).

Both read `staging/suspects` as the last `fundguard screen` wrote it. The gate's Data Docs go to
`<lake>/_reports/gate/<run_id>/index.html`. Exit codes: 0 passed/published, 1 gate failed (nothing
published), 2 nothing to gate.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from pipelines import config
from pipelines.storage import Lake, utcnow

STAGING = "staging/suspects"


@dataclass
class Outcome:
    gate: object            # GateResult
    version: int | None     # gold version written, None when blocked


def report_dir_for(lake: Lake, run_id: str | None) -> Path:
    safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in (run_id or "unknown"))
    return lake.folder("reports", "gate", safe)


def gate_and_publish(lake: Lake, suspects: pa.Table, *, catalog, rules, conf: dict, periods: list[str] | None,
                     institutions: list[str] | None, published_at=None, report_dir: Path | None = None,
                     publish_when_passed: bool = True, **lineage) -> Outcome:
    """Gate `suspects`; publish them only when the gate passed (gold is left as it was otherwise)."""
    from pipelines.publish.publisher import publish
    from pipelines.quality.gate import run_gate

    gate_conf = conf.get("gate") or {}
    run_id = suspects.column("run_id")[0].as_py() if suspects.num_rows and "run_id" in suspects.column_names \
        else lineage.get("run_id")
    result = run_gate(lake, suspects, catalog=catalog, rules=rules,
                      report_dir=report_dir or report_dir_for(lake, run_id),
                      band=float(gate_conf.get("hit_rate_band", 10.0)),
                      min_hits=int(gate_conf.get("hit_rate_min_hits", 20)))
    if not result.success or not publish_when_passed:
        return Outcome(result, None)
    version = publish(lake, suspects, periods=periods, institutions=institutions,
                      published_at=published_at or utcnow(), rule_ids=[r.id for r in rules], **lineage)
    return Outcome(result, version)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lake", help="lake root (default: conf `lake`)")
    parser.add_argument("--period", action="append", help="YYYY or YYYY-MM the run computed (repeatable)")
    parser.add_argument("--institution", action="append", help="fixmedins_code in scope (repeatable)")
    parser.add_argument("--include-draft", action="store_true", help="the run also screened draft rules")


def run(args) -> int:
    from pipelines.catalog import load_catalog

    conf = config.load()
    lake = Lake(args.lake or conf["lake"])
    if not lake.exists(STAGING):
        print(f"没有待检查的疑点清单 / no staging list at {lake.uri(STAGING)}: run `fundguard screen` first",
              file=sys.stderr)
        return 2
    suspects = lake.read(STAGING)
    catalog = load_catalog(Path(conf["rules_dir"]) if conf.get("rules_dir") and Path(conf["rules_dir"]).is_absolute()
                           else None)
    rules = catalog.select(include_draft=getattr(args, "include_draft", False))
    publish_it = args.command == "publish"
    out = gate_and_publish(lake, suspects, catalog=catalog, rules=rules, conf=conf, periods=args.period,
                           institutions=args.institution, publish_when_passed=publish_it)
    g = out.gate
    print(f"质量闸门 quality gate: {'通过 passed' if g.success else '未通过 FAILED'} "
          f"({g.results.get('gate_expectations')} expectations, {suspects.num_rows} suspects)")
    for f in g.failures:
        print(f"  ✗ {f}")
    print(f"  报告 report: {g.report_path}/index.html")
    if not g.success:
        if publish_it:
            print("未发布：gold/suspects 保持不变 / not published: gold/suspects left as it was")
        return 1
    if publish_it:
        print(f"已发布 published: gold/suspects version {out.version}")
    return 0
