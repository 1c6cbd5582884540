"""Publishing a gated suspect list to `gold/suspects` (contract §5).

A run replaces exactly the (institution, month) partitions its screening recorded as its scope
(`staging/scope`, one row per pair; screen.pipeline.SCOPE_SCHEMA), in ONE Delta commit, and nothing else:
a one-institution screening replaces that institution's months only; a screening of some of the library's
rules (`--family`, `--rule`, `--tags`) replaces only those rules' findings there (`only_rules`). A finding
that disappeared is removed; a re-run is idempotent (stable suspect ids, no duplicates). The commit records
the run's lineage (run id, months, selected institutions, rule ids, fingerprint, input versions) for
`fundguard reproduce`.
"""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import (GOLD_SUSPECTS as GOLD, SUSPECT_PARTITION_BY, SUSPECT_SCHEMA, UsageError,
                                period_months)
from pipelines.storage import Lake, sql_literal

PARTITION_BY = list(SUSPECT_PARTITION_BY)
META_PREFIX = "fundguard."


class PublishError(RuntimeError):
    pass


def months_of(period: str) -> list[str]:
    """`2023` -> 2023-01..2023-12; `2023-03` -> [2023-03] (contract.period_months); PublishError otherwise."""
    try:
        return period_months(period.strip())
    except UsageError as exc:
        raise PublishError(f"not a period (YYYY or YYYY-MM): {period!r}") from exc


def scope_months(scope: pa.Table) -> dict[str, set[str]]:
    """institution -> the months of it a scope holds."""
    out: dict[str, set[str]] = {}
    for r in scope.select(["fixmedins_code", "period"]).to_pylist():
        if r["fixmedins_code"] is None or r["period"] is None:
            raise PublishError("the recorded scope has a pair without institution or period: nothing published")
        out.setdefault(r["fixmedins_code"], set()).add(r["period"])
    return out


def scope_predicate(scope: dict[str, set[str]]) -> str:
    """The Delta predicate of exactly these (institution, month) pairs: institutions with the same months
    share one clause."""
    by_months: dict[tuple[str, ...], list[str]] = {}
    for inst, months in scope.items():
        by_months.setdefault(tuple(sorted(months)), []).append(inst)
    clauses = [f"fixmedins_code IN ({', '.join(sql_literal(i) for i in sorted(insts))}) AND "
               f"period IN ({', '.join(sql_literal(m) for m in months)})"
               for months, insts in sorted(by_months.items(), key=lambda kv: sorted(kv[1]))]
    return clauses[0] if len(clauses) == 1 else " OR ".join(f"({c})" for c in clauses)


def _utc(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=dt.timezone.utc) if ts.tzinfo is None else ts.astimezone(dt.timezone.utc)


def _single(t: pa.Table, column: str) -> str | None:
    values = t.column(column).drop_null().unique().to_pylist() if t.num_rows else []
    if len(values) > 1:
        raise PublishError(f"one run per publication: the suspects carry {len(values)} values of {column}: "
                           "nothing published")
    return values[0] if values else None


def _outside(data: pa.Table, scope: dict[str, set[str]]) -> int:
    keys = pc.binary_join_element_wise(data.column("fixmedins_code"), data.column("period"), "\x1f")
    inside = pa.array(sorted(f"{i}\x1f{m}" for i, ms in scope.items() for m in ms), pa.string())
    return int(pc.sum(pc.invert(pc.fill_null(pc.is_in(keys, value_set=inside), False))).as_py() or 0)


def _selection(scope: pa.Table, column: str):
    values = scope.column(column).unique().to_pylist() if column in scope.column_names and scope.num_rows else []
    return values[0] if len(values) == 1 else None


def publish(lake: Lake, suspects: pa.Table, *, scope: pa.Table, published_at: dt.datetime,
            rule_ids: list[str] | None = None, run_id: str | None = None, fingerprint: str | None = None,
            input_versions: dict[str, int] | None = None, only_rules: list[str] | None = None) -> int:
    """Replace the (institution, month) partitions of gold/suspects that `scope` holds by `suspects` (with
    `only_rules`: only the findings of those rules there; every other rule's stay); returns the new Delta
    version (the current one when the scope is empty: nothing to replace). Call only after the gate passed."""
    data = suspects.select(list(SUSPECT_SCHEMA.names)).cast(SUSPECT_SCHEMA)
    stamp = pa.array([_utc(published_at)] * data.num_rows, SUSPECT_SCHEMA.field("published_at").type)
    data = data.set_column(data.schema.get_field_index("published_at"), "published_at", stamp)
    pairs = scope_months(scope)
    if data.num_rows:
        n_out = _outside(data, pairs)
        if n_out:
            raise PublishError(f"{n_out} suspects lie outside the recorded scope ({len(pairs)} institutions): "
                               "nothing published")
        if only_rules is not None:
            stray = sorted(set(data.column("rule_id").to_pylist()) - set(only_rules))
            if stray:
                raise PublishError(f"suspects of rules the screening did not run ({', '.join(stray[:5])}): "
                                   "nothing published")
        data = data.sort_by([("fixmedins_code", "ascending"), ("period", "ascending"),
                             ("rule_id", "ascending"), ("suspect_id", "ascending")])
    selected = _selection(scope, "selected_institutions")
    meta = {
        "run_id": run_id or _single(data, "run_id"),
        "rule_set_fingerprint": fingerprint or _single(data, "rule_set_fingerprint"),
        "input_versions": json.dumps(input_versions, sort_keys=True) if input_versions is not None
        else _single(data, "input_versions"),
        "months": json.dumps(sorted({m for ms in pairs.values() for m in ms})),
        "institutions": selected,
        "scope_pairs": str(sum(len(ms) for ms in pairs.values())),
        "rule_ids": json.dumps(sorted(set(rule_ids))) if rule_ids is not None else None,
        "only_rules": json.dumps(sorted(set(only_rules))) if only_rules is not None else None,
        "rows": str(data.num_rows),
        "published_at": _utc(published_at).isoformat(),
    }
    meta = {META_PREFIX + k: v for k, v in meta.items() if v is not None}
    if not pairs:
        if lake.exists(GOLD):
            return lake.version(GOLD)
        return lake.replace_where(GOLD, SUSPECT_SCHEMA.empty_table(), "", PARTITION_BY, meta)
    predicate = scope_predicate(pairs)
    if only_rules:
        listed = ", ".join(sql_literal(r) for r in sorted(set(only_rules)))
        predicate = f"({predicate}) AND rule_id IN ({listed})"
    return lake.replace_where(GOLD, data, predicate, PARTITION_BY, meta)


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
