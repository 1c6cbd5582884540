"""Audit packages per (institution, period) from one snapshot of gold/suspects: what `fundguard export` and
the screening DAG's export task both call."""
from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from pipelines import config
from pipelines.logs import show_progress
from pipelines.contract import GOLD_SUSPECTS as SUSPECTS, period_months
from pipelines.export.package import build_package, check_institution, package_name, rule_info, suspects_filter, \
    write_package
from pipelines.storage import Lake, StorageError


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
    pairs = list(pairs)
    progress = show_progress() and len(pairs) > 1
    for n, (institution, period) in enumerate(pairs, 1):
        check_institution(institution)
        if progress:
            print(f"  导出 export [{n}/{len(pairs)}] {institution} {period}", file=sys.stderr, flush=True)
        part = rows if rows is not None else lake.read(SUSPECTS, version=version,
                                                       filter=suspects_filter(institution, period))
        files = build_package(part, institution, period, rules=rules, generated_at=generated_at,
                              institution_name=institution_name(lake, institution), source_version=version,
                              high_amount=Decimal(str(high)) if high is not None else None)
        written.append((write_package(files, out, package_name(institution, period)), files))
    return written


def institution_name(lake: Lake, code: str) -> str | None:
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


def export_period(lake_root: str | Path, period: str | None, out: str | Path, *,
                  generated_at: dt.datetime, conf: Mapping[str, Any] | None = None) -> list[str]:
    """One audit package per institution with published suspects in `period` (every period of the lake
    when None: one package per institution and month). Returns the package folders written."""
    import pyarrow.compute as pc

    lake = Lake(lake_root)
    if not lake.exists(SUSPECTS):
        return []
    version = lake.version(SUSPECTS)
    filt = pc.field("period").isin(period_months(period)) if period else None
    rows = lake.read(SUSPECTS, version=version, filter=filt)
    if rows.num_rows == 0:
        return []
    pairs = sorted({(r["fixmedins_code"], period or r["period"])
                    for r in rows.select(["fixmedins_code", "period"]).to_pylist()})
    done = export_packages(lake, pairs, out, generated_at=generated_at,
                           conf=dict(conf) if conf is not None else config.load(), version=version)
    return [str(target) for target, _ in done]
