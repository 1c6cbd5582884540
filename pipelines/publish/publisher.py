"""Publishing a gated suspect list to `gold/suspects` (contract §5).

A run replaces exactly the (institution, period) partitions it computed, in ONE Delta commit: every month
of the run (the requested YYYY or YYYY-MM expanded to months; without a period, the months present in
the suspects and in silver) for the institutions in scope (all when none). A finding that disappeared is
removed; a re-run is idempotent (stable suspect ids, no duplicates). The commit records the run's
lineage (run id, months, institutions, rule ids, fingerprint, input versions) for `fundguard reproduce`.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import (GOLD_SUSPECTS as GOLD, MONTH_RE, SUSPECT_PARTITION_BY, SUSPECT_SCHEMA, UsageError,
                                period_months)
from pipelines.storage import Lake, sql_literal

PARTITION_BY = list(SUSPECT_PARTITION_BY)
#: silver tables whose `period` values tell which months a run without --period computed
PERIOD_SOURCES = ("silver/fee_list_net", "silver/mdtrt", "silver/setl", "silver/inv_movement")
META_PREFIX = "fundguard."



class PublishError(RuntimeError):
    pass


def months_of(period: str) -> list[str]:
    """`2023` -> 2023-01..2023-12; `2023-03` -> [2023-03] (contract.period_months); PublishError otherwise."""
    try:
        return period_months(period.strip())
    except UsageError as exc:
        raise PublishError(f"not a period (YYYY or YYYY-MM): {period!r}") from exc


def computed_months(lake: Lake, suspects: pa.Table, periods: Iterable[str] | None) -> list[str]:
    if periods:
        return sorted({m for p in periods for m in months_of(p)})
    months = set(suspects.column("period").drop_null().unique().to_pylist()) if suspects.num_rows else set()
    for table in PERIOD_SOURCES:
        if lake.exists(table):
            months |= {m for m in lake.distinct_values(table, "period") if MONTH_RE.match(m)}
    return sorted(months)


def scope_predicate(months: list[str], institutions: list[str] | None) -> str:
    pred = f"period IN ({', '.join(sql_literal(m) for m in months)})"
    if institutions:
        pred += f" AND fixmedins_code IN ({', '.join(sql_literal(i) for i in sorted(set(institutions)))})"
    return pred


def _utc(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=dt.timezone.utc) if ts.tzinfo is None else ts.astimezone(dt.timezone.utc)


def _single(t: pa.Table, column: str) -> str | None:
    values = t.column(column).drop_null().unique().to_pylist() if t.num_rows else []
    if len(values) > 1:
        raise PublishError(f"one run per publication: the suspects carry {len(values)} values of {column}")
    return values[0] if values else None


def publish(lake: Lake, suspects: pa.Table, *, periods: list[str] | None, institutions: list[str] | None,
            published_at: dt.datetime, rule_ids: list[str] | None = None, run_id: str | None = None,
            fingerprint: str | None = None, input_versions: dict[str, int] | None = None) -> int:
    """Replace the computed (institution, period) partitions of gold/suspects by `suspects`; returns the
    new Delta version. Call only after the gate passed."""
    data = suspects.select(list(SUSPECT_SCHEMA.names)).cast(SUSPECT_SCHEMA)
    stamp = pa.array([_utc(published_at)] * data.num_rows, SUSPECT_SCHEMA.field("published_at").type)
    data = data.set_column(data.schema.get_field_index("published_at"), "published_at", stamp)
    months = computed_months(lake, data, periods)
    if data.num_rows:
        outside = pc.invert(pc.is_in(data.column("period"), pa.array(months, pa.string())))
        if institutions:
            outside = pc.or_(outside, pc.invert(pc.is_in(data.column("fixmedins_code"),
                                                         pa.array(sorted(set(institutions)), pa.string()))))
        n_out = pc.sum(pc.fill_null(outside, True).cast(pa.int64())).as_py() or 0
        if n_out:
            raise PublishError(f"{n_out} suspects lie outside the computed scope (periods {months[:3]}…, "
                               f"institutions {institutions or 'all'}): nothing published")
        data = data.sort_by([("fixmedins_code", "ascending"), ("period", "ascending"),
                             ("rule_id", "ascending"), ("suspect_id", "ascending")])
    meta = {
        "run_id": run_id or _single(data, "run_id"),
        "rule_set_fingerprint": fingerprint or _single(data, "rule_set_fingerprint"),
        "input_versions": json.dumps(input_versions, sort_keys=True) if input_versions is not None
        else _single(data, "input_versions"),
        "months": json.dumps(months),
        "institutions": json.dumps(sorted(set(institutions))) if institutions else None,
        "rule_ids": json.dumps(sorted(set(rule_ids))) if rule_ids is not None else None,
        "rows": str(data.num_rows),
        "published_at": _utc(published_at).isoformat(),
    }
    meta = {META_PREFIX + k: v for k, v in meta.items() if v is not None}
    if not months:
        if lake.exists(GOLD):
            return lake.version(GOLD)
        return lake.replace_where(GOLD, SUSPECT_SCHEMA.empty_table(), "", PARTITION_BY, meta)
    return lake.replace_where(GOLD, data, scope_predicate(months, institutions), PARTITION_BY, meta)


def publication(lake: Lake, run_id: str) -> tuple[int, dict] | None:
    """The gold/suspects version that published `run_id`, and the lineage recorded in that commit."""
    if not lake.exists(GOLD):
        return None
    for entry in lake.history(GOLD):  # newest first
        if entry.get(META_PREFIX + "run_id") == run_id:
            meta = {k[len(META_PREFIX):]: v for k, v in entry.items() if k.startswith(META_PREFIX)}
            for k in ("months", "institutions", "rule_ids", "input_versions"):
                if isinstance(meta.get(k), str):
                    meta[k] = json.loads(meta[k])
            return int(entry["version"]), meta
    return None
