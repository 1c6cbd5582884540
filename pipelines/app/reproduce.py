"""Re-screen a published run from its recorded inputs (`fundguard reproduce`).

The published rows of run R (gold/suspects at the version that published R) carry the Delta version of
each input table and the rule-set fingerprint; the publishing commit also records the run's months,
institutions and rule ids. The rules are taken from the current catalog and must produce the recorded
fingerprint (otherwise the run cannot be reproduced with this catalog: exit 2). The inputs are read by
time travel at the recorded versions, screened without writing staging, and the suspect ids, amounts and
evidence compared with what was published.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipelines.publish.publisher import GOLD, publication
from pipelines.storage import Lake

COMPARED = ("amount", "evidence")


class NotReproducible(RuntimeError):
    pass


@dataclass
class Reproduction:
    run_id: str
    gold_version: int | None
    fingerprint: str
    published: pa.Table
    rescreened: pa.Table
    missing: list[str] = field(default_factory=list)     # published, not found again
    extra: list[str] = field(default_factory=list)       # found again, not published
    changed: list[tuple[str, str, object, object]] = field(default_factory=list)  # id, column, published, now

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.changed)


def published_rows(lake: Lake, run_id: str) -> tuple[pa.Table, int | None, dict]:
    """Rows of `run_id` as published (at the version that published it), that version, its lineage."""
    if not lake.exists(GOLD):
        raise NotReproducible(f"没有已发布的疑点清单 / no published list: {lake.uri(GOLD)} does not exist")
    pub = publication(lake, run_id)
    version, meta = pub if pub else (None, {})
    rows = lake.read(GOLD, version, filter=pads.field("run_id") == run_id)
    if pub is None and rows.num_rows == 0:
        raise NotReproducible(f"运行 {run_id} 没有发布记录 / run {run_id} was never published to {GOLD}")
    return rows, version, meta


def _one(rows: pa.Table, column: str) -> str | None:
    values = rows.column(column).drop_null().unique().to_pylist() if rows.num_rows else []
    return values[0] if values else None


def recorded_rules(catalog, fingerprint: str, rule_ids: list[str] | None, published: pa.Table):
    """The catalog's rules that produce the recorded fingerprint, or NotReproducible saying why."""
    candidates = []
    if rule_ids is not None:
        unknown = sorted(set(rule_ids) - set(catalog.by_id))
        if unknown:
            raise NotReproducible(f"当前规则目录缺少运行时的规则 {unknown} / the current catalog lacks rules "
                                  f"{unknown} of the recorded run")
        candidates.append([catalog.by_id[r] for r in sorted(rule_ids)])
    else:  # older publications: try the active selection, then the rules that produced hits
        candidates.append(catalog.select())
        seen = sorted(set(published.column("rule_id").to_pylist())) if published.num_rows else []
        if set(seen) <= set(catalog.by_id):
            candidates.append([catalog.by_id[r] for r in seen])
    for rules in candidates:
        if catalog.fingerprint(rules) == fingerprint:
            return rules
    got = catalog.fingerprint(candidates[0]) if candidates else "-"
    raise NotReproducible(
        f"当前规则目录生成的指纹 {got} 与发布时的指纹 {fingerprint} 不一致：规则或模板已修改，无法用当前目录复现 / "
        f"the current catalog gives rule-set fingerprint {got} for the recorded rules, the run used "
        f"{fingerprint}: rules or templates changed since, check out the commit of the run to reproduce it")


def reproduce(lake: Lake, run_id: str, *, engine=None, catalog=None) -> Reproduction:
    from pipelines.catalog import load_catalog
    from pipelines.screen.engines import DuckDBEngine
    from pipelines.screen.pipeline import screen

    published, version, meta = published_rows(lake, run_id)
    fingerprint = meta.get("rule_set_fingerprint") or _one(published, "rule_set_fingerprint")
    versions = meta.get("input_versions")
    if versions is None:
        raw = _one(published, "input_versions")
        versions = json.loads(raw) if raw else None
    if not fingerprint or versions is None:
        raise NotReproducible(f"运行 {run_id} 没有记录规则集指纹或输入版本 / run {run_id} recorded no "
                              f"fingerprint or input versions")
    versions = {k: int(v) for k, v in versions.items()}
    catalog = catalog or load_catalog()
    rules = recorded_rules(catalog, fingerprint, meta.get("rule_ids"), published)
    for table, v in versions.items():
        try:
            lake.delta(table, v)
        except Exception as exc:
            raise NotReproducible(f"输入表 {table} 的版本 {v} 已不可读（可能已被 vacuum）/ input {table} version "
                                  f"{v} can no longer be read (vacuumed?): {exc}") from exc
    engine = engine or DuckDBEngine()
    institutions = meta.get("institutions")
    res = screen(lake, engine, catalog, rules, run_id=run_id, institutions=institutions, versions=versions,
                 write_staging=False, progress=False)
    again = res.suspects
    months = meta.get("months")
    if months is not None and again.num_rows:
        again = again.filter(pc.is_in(again.column("period"), pa.array(months, pa.string())))
    out = Reproduction(run_id, version, fingerprint, published, again)
    pub = {r["suspect_id"]: r for r in published.select(["suspect_id", *COMPARED]).to_pylist()}
    now = {r["suspect_id"]: r for r in again.select(["suspect_id", *COMPARED]).to_pylist()}
    out.missing = sorted(set(pub) - set(now))
    out.extra = sorted(set(now) - set(pub))
    for sid in sorted(set(pub) & set(now)):
        for col in COMPARED:
            if pub[sid][col] != now[sid][col]:
                out.changed.append((sid, col, pub[sid][col], now[sid][col]))
    return out
