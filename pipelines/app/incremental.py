"""Incremental screening (application step): after a new drop, re-screen only what changed since the last
published run and publish exactly that scope; the published list equals a full re-screen.

1. The last publication of gold/suspects records its input versions, rule set and scope. It can be the
   base of an incremental run when it covered the whole district (no institution or period restriction)
   with the same rule set; otherwise the run is a full one.
2. `screen.incremental.changed_scope` compares those versions with the lake's current ones: the changed
   institutions and the touched persons (a full re-screen when the knowledge base changed).
3. Institution-partitioned families run on the changed institutions, person-partitioned families on the
   touched persons themselves (up to `PERSONS_LISTED`, else their person buckets) (`screen.batched`,
   within the memory budget).
4. The gate checks the list gold would hold; `publish.scoped.publish_replacing` replaces the findings of
   the scope (those of the changed institutions for institution families, of the re-screened buckets for
   person families) in one commit.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from pipelines.catalog import Catalog, Rule
from pipelines.contract import GOLD_SUSPECTS, SUSPECT_SCHEMA
from pipelines.publish.publisher import META_PREFIX
from pipelines.screen import plan as planning
from pipelines.screen.batched import Job, lake_layout, screen_batched, split_rules
from pipelines.screen.incremental import Scope, changed_scope
from pipelines.screen.sql import referenced_columns
from pipelines.storage import Lake, utcnow


@dataclass
class IncrementalOutcome:
    scope: Scope
    jobs: int
    suspects: pa.Table          # the scope's new findings
    replaced: int               # published findings of the scope removed (some re-added when still found)
    gold_version: int | None
    gate: object = None
    base_run: str | None = None


def last_publication(lake: Lake) -> dict | None:
    """The lineage recorded by the newest commit of gold/suspects that published a run."""
    if not lake.exists(GOLD_SUSPECTS):
        return None
    for entry in lake.history(GOLD_SUSPECTS):
        if entry.get(META_PREFIX + "run_id"):
            meta = {k[len(META_PREFIX):]: v for k, v in entry.items() if k.startswith(META_PREFIX)}
            for k in ("institutions", "rule_ids", "input_versions", "months"):
                if isinstance(meta.get(k), str):
                    meta[k] = json.loads(meta[k])
            return meta
    return None


def base_problem(last: dict | None, catalog: Catalog, rules: list[Rule]) -> str | None:
    """Why the last publication cannot be the base of an incremental run (None: it can)."""
    if last is None:
        return "nothing published yet"
    if last.get("institutions"):
        return "the last publication covered only some institutions"
    if last.get("rule_set_fingerprint") != catalog.fingerprint(rules):
        return "the rule set changed since the last publication"
    if last.get("input_versions") is None:
        return "the last publication recorded no input versions"
    return None


def scope_jobs(scope: Scope, layout, budget: int | None, catalog: Catalog, rules: list[Rule]) -> list[Job]:
    """Batches of the changed institutions and jobs of the touched person buckets, within `budget`."""
    groups = split_rules(catalog, rules)
    sizes = layout.sizes
    sizes.by_institution = {k: v for k, v in sizes.by_institution.items() if k in scope.institutions}
    p = planning.plan(sizes, budget, institution_families=bool(groups["institution"]),
                      person_families=bool(groups["person"]))
    jobs = [Job("institution", institutions=b) for b in p.institution_batches] if scope.institutions else []
    if groups["person"] and scope.persons:
        if by_persons(scope):
            return jobs + [Job("person", persons=sorted(scope.persons))]
        room = (budget - p.shared_bytes) if budget else None
        person_bytes = planning.cost(sizes.totals, planning.PERSON_TABLES)
        jobs += [Job("person", buckets=b) for b in planning.person_jobs(scope.buckets, person_bytes, room)]
    return jobs


#: up to this many touched persons, person families re-screen exactly those persons (a person-partitioned
#: family's verdict on a person depends on that person's rows only); beyond it, their buckets
PERSONS_LISTED = 20_000


def by_persons(scope: Scope) -> bool:
    """Whether the person families re-screen the touched persons themselves (else their buckets)."""
    return 0 < len(scope.persons) <= PERSONS_LISTED and None not in scope.persons


def replaced_ids(lake: Lake, scope: Scope, catalog: Catalog, rules: list[Rule]) -> set[str]:
    """Suspect ids of the published findings the scope covers."""
    gold = lake.read(GOLD_SUSPECTS, columns=["suspect_id", "rule_id", "fixmedins_code", "psn_no"])
    kind = {r.id: catalog.families[r.family].partition for r in rules}
    out = set()
    listed = by_persons(scope)
    buckets = scope.buckets

    def rescreened(psn_no) -> bool:
        return psn_no in scope.persons if listed else planning.bucket_of(psn_no, planning.BUCKETS) in buckets

    for r in gold.to_pylist():
        k = kind.get(r["rule_id"])
        if (k == "institution" and r["fixmedins_code"] in scope.institutions) or (k == "person" and
                                                                                 rescreened(r["psn_no"])):
            out.add(r["suspect_id"])
    return out


def run_scope(lake: Lake, listed: pa.Table, institutions: list[str], run_id: str, fingerprint: str) -> pa.Table:
    """The scope the gate checks an incremental run's new findings against: every (institution, month) of the
    institutions it re-screened or found something in, with its input rows (it writes gold, not staging)."""
    from pipelines.screen.engines import DuckDBEngine
    from pipelines.screen.pipeline import register_inputs, scope_table, screened_pairs
    from pipelines.screen.sql import input_versions_json

    counter = DuckDBEngine()
    try:
        used = register_inputs(counter, lake, None, {"fixmedins_code", "period"})
        pairs = screened_pairs(counter, listed, period=None, institutions=institutions or None)
    finally:
        counter.close()
    return scope_table(pairs, run_id=run_id, fingerprint=fingerprint, input_versions=input_versions_json(used))


def screen_incremental(lake: Lake, engine, catalog: Catalog, rules: list[Rule], *, run_id: str, conf: dict,
                       budget: int | None, progress: bool = True) -> IncrementalOutcome | str:
    """Re-screen and publish the scope changed since the last publication; returns the reason instead when
    the run must be a full one (the caller then runs `screen_gate_publish`)."""
    from pipelines.app.publication import gate_settings, report_dir_for
    from pipelines.publish.scoped import publish_replacing
    from pipelines.quality.gate import run_gate

    last = last_publication(lake)
    problem = base_problem(last, catalog, rules)
    if problem:
        return problem
    layout = lake_layout(lake, None)
    scope = changed_scope(lake, {k: int(v) for k, v in last["input_versions"].items()}, layout.versions,
                          referenced_columns(catalog, rules))
    if scope.full:
        return scope.reason
    jobs = scope_jobs(scope, layout, budget, catalog, rules)
    res = screen_batched(lake, engine, catalog, rules, run_id=run_id, budget=budget, layout=lake_layout(lake, None),
                         only=jobs, progress=progress) if jobs else None
    new = res.suspects if res is not None else SUSPECT_SCHEMA.empty_table()
    replaced = replaced_ids(lake, scope, catalog, rules)
    gate_conf = conf.get("gate") or {}
    # The gate checks this run's new findings (nulls, duplicates, personal data, periods, scope, lineage);
    # its drop check compares a scope's whole list with gold, which an incremental run does not produce (it
    # keeps the findings of persons and rules it did not re-screen): equality with a full re-screen is tested.
    rescreened = sorted({i for i in scope.institutions if i is not None}
                        | set(new.column("fixmedins_code").drop_null().to_pylist()))
    gate = run_gate(lake, new, catalog=catalog, rules=rules, report_dir=Path(report_dir_for(lake, run_id)),
                    scope=gate_settings(conf, run_scope(lake, new, rescreened, run_id, catalog.fingerprint(rules)),
                                        None, accept_drop=True),   # see below
                    band=float(gate_conf.get("hit_rate_band", 10.0)),
                    min_hits=int(gate_conf.get("hit_rate_min_hits", 20)))
    version = None
    if gate.success:
        version = publish_replacing(
            lake, new, replaced, published_at=utcnow(), run_id=run_id, fingerprint=catalog.fingerprint(rules),
            input_versions=layout.versions, rule_ids=[r.id for r in rules],
            scope={"institutions": sorted(i for i in scope.institutions if i is not None),
                   "person_buckets": [] if by_persons(scope) else sorted(scope.buckets),
                   "persons": len(scope.persons)})
    return IncrementalOutcome(scope, len(jobs), new, len(replaced), version, gate, last.get("run_id"))
