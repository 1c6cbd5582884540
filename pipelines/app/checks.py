"""Refuse to screen, gate or publish what is not there: a path that is not a lake, a lake without the
claims the rules read, a period or institution the lake holds no data for. Each refusal is a UsageError
(exit 2) with a plain message; only `ingest` and `run` create a lake."""
from __future__ import annotations

import pyarrow.compute as pc

from pipelines.contract import PERIOD_YEAR, UsageError, period_months
from pipelines.storage import Lake

#: the claim table every screening needs: visits (fee lines, settlements and the rest are optional)
CLAIMS = "silver/mdtrt"


def require_lake(lake: Lake) -> Lake:
    """The lake when its root holds at least one table, else UsageError (nothing is created)."""
    if not lake.root.is_dir():
        raise UsageError(f"不是数据湖 / not a lake: {lake.root} does not exist; load a drop first "
                         "(`fundguard ingest` or `fundguard run`)")
    if not any(lake.tables(layer) for layer in ("bronze", "silver", "staging", "gold")):
        raise UsageError(f"不是数据湖 / not a lake: {lake.root} holds no table; load a drop first "
                         "(`fundguard ingest` or `fundguard run`)")
    return lake


def require_inputs(lake: Lake, period: str | None = None, institutions: list[str] | None = None) -> None:
    """UsageError unless silver holds visits, and visits of `period` and of each of `institutions`."""
    require_lake(lake)
    if not lake.exists(CLAIMS):
        raise UsageError(f"数据湖中没有就诊数据 / no claims to screen: {lake.uri(CLAIMS)} does not exist "
                         "(load a drop with `fundguard ingest` first)")
    if period:
        years = lake.partition_values(CLAIMS, PERIOD_YEAR)
        held = sorted(years)
        months = period_months(period)
        if period[:4] in years and len(months) == 1:
            visits = lake.read(CLAIMS, columns=["period"], filter=pc.field(PERIOD_YEAR) == period[:4])
            held = sorted(set(visits.column("period").drop_null().to_pylist()))
        if not set(months) & set(held) and not (len(months) > 1 and period in years):
            raise UsageError(f"期间 {period} 没有数据 / no claims in period {period}: the lake holds "
                             f"{', '.join(held) or 'no dated visit'}")
    if institutions:
        known = lake.partition_values(CLAIMS, "fixmedins_code")
        unknown = sorted(set(institutions) - known)
        if unknown:
            raise UsageError(f"机构无就诊数据 / no claims of institution(s) {', '.join(unknown)} in the lake")


def kb_param_gaps(lake: Lake, catalog, rules) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The kb_param keys the selected rules read that the lake's kb_param lacks: (key -> the shipped knowledge
    base's value, which `param` then uses (rules/kb/kb_param.csv); key -> the rules that evaluate nothing
    without it, when the shipped knowledge base has no value either, e.g. a national batch's own window)."""
    from pipelines.screen.sql import kb_defaults, param_keys, rule_query

    held = set()
    if lake.exists("silver/kb_param"):
        held = set(lake.read("silver/kb_param", columns=["key"]).column("key").drop_null().to_pylist())
    needed: dict[str, list[str]] = {}
    for rule in rules:
        for key in param_keys(rule_query(catalog, rule)) - held:
            needed.setdefault(key, []).append(rule.id)
    shipped = kb_defaults()
    return ({k: shipped[k] for k in sorted(needed) if k in shipped},
            {k: sorted(ids) for k, ids in sorted(needed.items()) if k not in shipped})
