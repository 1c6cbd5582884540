"""Delta maintenance of a lake: optimize (compact small files) and vacuum (remove files no version still
needs) with a retention that never breaks `fundguard reproduce`. The maintenance DAG and `fundguard
maintain` both call `plan_lake_retention` and `maintain`.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from pipelines.contract import GOLD_SUSPECTS, QUARANTINE
from pipelines.storage import Lake

#: Layers the maintenance looks after (the lake's own list, plus the single quarantine table).
MAINTAINED_LAYERS = ("bronze", "silver", "staging", "gold", "_meta")
DEFAULT_RETENTION_HOURS = 168


def referenced_versions(input_versions: Iterable[str | Mapping[str, int] | None]) -> dict[str, int]:
    """The oldest Delta version of each table still named by a published row's `input_versions`."""
    oldest: dict[str, int] = {}
    for value in input_versions:
        if not value:
            continue
        versions = json.loads(value) if isinstance(value, str) else value
        for table, v in versions.items():
            if v is None:
                continue
            oldest[table] = min(int(v), oldest.get(table, int(v)))
    return oldest


@dataclass(frozen=True)
class RetentionPlan:
    table: str
    retention_hours: int
    vacuum: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_retention(tables: Iterable[str], *, conf_hours: int, referenced: Mapping[str, int],
                   version_times: Mapping[str, Mapping[int, dt.datetime]], now: dt.datetime) -> list[RetentionPlan]:
    """Retention per table that keeps every file `reproduce` needs.

    A file live at version V is tombstoned by a later commit, so it is younger as a tombstone than V's
    commit. Vacuum removes tombstones older than `now - retention`: a retention of at least the age of
    the oldest referenced version (rounded up, plus one hour) keeps every file of V and later. So
    retention = max(conf retention, that age). When the commit time of a referenced version is unknown
    (its log entry is gone), the table is not vacuumed at all.
    """
    plans = []
    for table in sorted(tables):
        hours, reason, vacuum = int(conf_hours), f"conf retention {conf_hours} h", True
        if table in referenced:
            v = referenced[table]
            when = (version_times.get(table) or {}).get(v)
            if when is None:
                plans.append(RetentionPlan(table, hours, False,
                                           f"version {v} is referenced by gold/suspects but its commit time "
                                           "is unknown: not vacuumed"))
                continue
            age = math.ceil(max((now - when).total_seconds(), 0) / 3600) + 1
            if age > hours:
                hours, reason = age, (f"raised from {conf_hours} h to {age} h: gold/suspects references "
                                      f"version {v} committed {when.isoformat()}")
            else:
                reason += f" (covers referenced version {v})"
        plans.append(RetentionPlan(table, hours, vacuum, reason))
    return plans


def version_times_from_history(history: Iterable[Mapping[str, Any]]) -> dict[int, dt.datetime]:
    """{version: commit time (UTC)} from `Lake.history()` (delta-rs: `timestamp` in milliseconds)."""
    out = {}
    for h in history:
        if h.get("version") is None or h.get("timestamp") is None:
            continue
        out[int(h["version"])] = dt.datetime.fromtimestamp(int(h["timestamp"]) / 1000, tz=dt.timezone.utc)
    return out


def plan_lake_retention(root: str | Path, conf_hours: int, *, now: dt.datetime) -> list[dict[str, Any]]:
    """The retention plan of every table of a lake (see plan_retention), as JSON-able dicts."""
    lake = Lake(root)
    tables = [t for layer in MAINTAINED_LAYERS for t in lake.tables(layer)]
    if lake.exists(QUARANTINE):
        tables.append(QUARANTINE)
    referenced: dict[str, int] = {}
    if lake.exists(GOLD_SUSPECTS):
        iv = lake.read(GOLD_SUSPECTS, columns=["input_versions"]).column("input_versions").unique().to_pylist()
        referenced = referenced_versions(iv)
    times = {t: version_times_from_history(lake.history(t)) for t in referenced if lake.exists(t)}
    return [p.to_dict() for p in plan_retention(tables, conf_hours=conf_hours, referenced=referenced,
                                                version_times=times, now=now)]


def optimize_tables(root: str | Path, plans: Iterable[Mapping[str, Any]], *, dry_run: bool = False) -> dict:
    """Compact every planned table (nothing on a dry run), under the writer lease: {table: optimize metrics}."""
    lake = Lake(root)
    if dry_run:
        return {}
    with lake.writer("fundguard maintain (optimize)"):
        return {p["table"]: dict(lake.optimize(p["table"])) for p in plans}


def vacuum_tables(root: str | Path, plans: Iterable[Mapping[str, Any]], *, dry_run: bool = False) -> dict:
    """Vacuum the tables the plan allows, with the plan's retention, under the writer lease:
    {table: files removed (or listed)}."""
    lake = Lake(root)
    with lake.writer("fundguard maintain (vacuum)"):
        return {p["table"]: len(lake.vacuum(p["table"], p["retention_hours"], dry_run=dry_run))
                for p in plans if p["vacuum"]}


def maintain(root: str | Path, plans: Iterable[Mapping[str, Any]], *, dry_run: bool = False) -> dict[str, Any]:
    """Optimize, then vacuum: {"optimized": {table: metrics}, "vacuumed": {table: files}}."""
    plans = list(plans)
    return {"optimized": optimize_tables(root, plans, dry_run=dry_run),
            "vacuumed": vacuum_tables(root, plans, dry_run=dry_run)}
