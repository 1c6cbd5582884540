"""Screening wiring: register inputs at recorded Delta versions, build the shared views, run the rules,
write `staging/suspects` and, beside it, `staging/scope`: the (institution, month) pairs the run screened with
their input rows, the run's lineage and the staging version the list was written as (what publication
replaces, and what the gate checks the list against). Reads and writes go through `Lake`; the SQL comes
from the catalog."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import contract
from pipelines.catalog import Catalog, Rule
from pipelines.screen.sql import (input_versions_json, spark_literal, referenced_columns, referenced_tables, rule_query,
                                  view_query)
from pipelines.storage import Lake

#: SQL view name -> lake table the rules read. `fee_list` is the refund-netted table.
INPUT_TABLES: dict[str, str] = {
    "fee_list": "silver/fee_list_net", "mdtrt": "silver/mdtrt", "psn": "silver/psn",
    "fixmedins": "silver/fixmedins", "diag": "silver/diag", "setl": "silver/setl",
    "inv_movement": "silver/inv_movement", "kb_hilist": "silver/kb_hilist",
    "kb_item_pair": "silver/kb_item_pair", "kb_param": "silver/kb_param",
}
STAGING = contract.STAGING_SUSPECTS
#: the scope the last screening computed, written right after staging/suspects (one row per pair)
STAGING_SCOPE = "staging/scope"
SCOPE_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("staging_version", pa.int64()), ("fixmedins_code", pa.string()),
    ("period", pa.string()), ("input_rows", pa.int64()), ("rule_set_fingerprint", pa.string()),
    ("input_versions", pa.string()), ("selected_period", pa.string()), ("selected_institutions", pa.string()),
    ("rule_ids", pa.string())])
#: the inputs whose rows a scope counts (each has fixmedins_code and period)
SCOPE_INPUTS = ("fee_list", "mdtrt", "setl", "inv_movement")
#: the shared views every rule may read, materialised once per run
MATERIALISED_VIEWS = {"fee", "visit", "visit_fund", "visit_diag", "fee_dup_groups"}
#: the order a materialised view is stored in, for engines that skip storage blocks by min/max (DuckDB): most
#: families join fee lines with the few knowledge-base items they restrict, so fee clustered by item lets a
#: scan skip the blocks of other items (the 44 rules' own time halves; the sort costs ~4 s on 10 M lines)
CLUSTER_BY = {"fee": "hilist_code"}
#: inputs read only through a materialised view (`fee_list` → `fee`, `mdtrt` → `visit`): rules read the view,
#: so the input stays a view over its files; every other input is materialised once per run
VIEWED_INPUTS = {"fee_list", "mdtrt"}


@dataclass
class ScreenResult:
    run_id: str
    engine: str
    fingerprint: str
    input_versions: dict[str, int]
    rules: list[Rule]
    suspects: pa.Table
    staging_version: int | None
    seconds_per_rule: dict[str, float] = field(default_factory=dict)
    rows_in: dict[str, int] = field(default_factory=dict)
    scope: pa.Table | None = None  # SCOPE_SCHEMA: the pairs screened, as written to staging/scope
    #: batched runs: seconds spent reading the batches' inputs and building their views ("inputs"), running the
    #: rules and writing their rows ("rules"), committing and reading back the run's list ("finish")
    seconds_per_phase: dict[str, float] = field(default_factory=dict)

    def hits_by_rule(self) -> dict[str, int]:
        counts = {r.id: 0 for r in self.rules}
        if self.suspects.num_rows:
            for row in self.suspects.group_by("rule_id").aggregate([("suspect_id", "count")]).to_pylist():
                counts[row["rule_id"]] = row["suspect_id_count"]
        return counts


def register_inputs(engine, lake: Lake, versions: dict[str, int] | None,
                    columns: set[str] | None = None, *, only: tuple[str, ...] | None = None,
                    materialize: bool = True) -> dict[str, int]:
    """Register every input table at its version and return the versions used.

    Without `versions`, each table is read at its current version. With recorded `versions` (reproduce),
    inputs are pinned exactly: a table the recorded run did not have is registered empty, as it was then.
    Tables the lake does not have are empty tables of the contract schema. With `columns` (the names the
    rules and views use, `sql.referenced_columns`), a table is read with those of its columns only. `only`
    registers just those views; `materialize=False` leaves every input a view over its files (one streaming
    scan per query: what a count needs, where a temp table of the whole district would not fit)."""
    used: dict[str, int] = {}
    for view, table in INPUT_TABLES.items():
        if only is not None and view not in only:
            continue
        pinned_absent = versions is not None and table not in versions
        if lake.exists(table) and not pinned_absent:
            version = versions.get(table) if versions is not None else lake.version(table)
            keep = None
            if columns is not None:
                keep = [c for c in lake.delta(table, version).schema().to_arrow().names if c.lower() in columns]
            engine.register_table(view, lake, table, version, materialize=materialize and view not in VIEWED_INPUTS,
                                  columns=keep or None)
            used[table] = version
        else:
            engine.register_arrow(view, contract.arrow_schema(view).empty_table())
    return used


def view_name(stem: str) -> str:
    """`rules/views/20_fee.sql` defines the view `fee` (the number orders the views)."""
    return stem.split("_", 1)[1] if stem[:2].isdigit() else stem


def needed_views(catalog: Catalog, rules: list[Rule]) -> set[str]:
    """The shared views these rules read, directly or through other views."""
    queries = {view_name(s): view_query(sql) for s, sql in catalog.views.items()}
    need: set[str] = set()
    todo = [rule_query(catalog, r) for r in rules]
    while todo:
        for t in referenced_tables(todo.pop()):
            if t in queries and t not in need:
                need.add(t)
                todo.append(queries[t])
    return need


def build_views(engine, catalog: Catalog, rules: list[Rule] | None = None) -> None:
    """Create the shared views (those `rules` read, when given), materialising MATERIALISED_VIEWS once."""
    need = needed_views(catalog, rules) if rules is not None else None
    for stem, sql in sorted(catalog.views.items()):
        name = view_name(stem)
        if need is None or name in need:
            engine.create_view(name, view_query(sql), materialize=name in MATERIALISED_VIEWS,
                               cluster_by=CLUSTER_BY.get(name))


def scoped_query(catalog: Catalog, rule: Rule, *, run_id: str, fingerprint: str, versions_json: str,
                 period: str | None, institutions: list[str] | None) -> str:
    where = []
    if period:
        where.append(f"period LIKE {spark_literal(period + '%')}")
    if institutions:
        where.append(f"fixmedins_code IN {spark_literal(list(institutions))}")
    return f"""SELECT r.*, {spark_literal(run_id)} AS run_id, {spark_literal(fingerprint)} AS rule_set_fingerprint,
  {spark_literal(versions_json)} AS input_versions, CAST(NULL AS TIMESTAMP) AS published_at
FROM ({rule_query(catalog, rule)}) r
{('WHERE ' + ' AND '.join(where)) if where else ''}"""


def screen(lake: Lake, engine, catalog: Catalog, rules: list[Rule], *, run_id: str,
           period: str | None = None, institutions: list[str] | None = None,
           versions: dict[str, int] | None = None, write_staging: bool = True,
           progress: bool = True, memory: int | None = None) -> ScreenResult:
    """Run `rules` over the lake's silver tables (at `versions` when given) into staging/suspects.

    With a `memory` budget (bytes) a lake that does not fit it at once is screened in batches of
    institutions and buckets of persons (`batched.screen_batched`); the list is the same. An engine whose
    executors write (`executor_writes`: Spark) always takes that path, as one batch when the lake fits."""
    if memory is not None or getattr(engine, "executor_writes", False):
        from pipelines.screen.batched import screen_batched

        batched = screen_batched(lake, engine, catalog, rules, run_id=run_id, budget=memory, period=period,
                                 institutions=institutions, versions=versions, write_staging=write_staging,
                                 progress=progress, force=getattr(engine, "executor_writes", False))
        if batched is not None:
            if write_staging:
                batched.scope = _write_batched_scope(lake, batched, period=period, institutions=institutions)
            return batched
        if hasattr(engine, "set_memory"):
            engine.set_memory(memory)
    used = register_inputs(engine, lake, versions, referenced_columns(catalog, rules))
    build_views(engine, catalog, rules)
    fingerprint = catalog.fingerprint(rules)
    vjson = input_versions_json(used)
    parts, timings = [], {}
    for i, rule in enumerate(rules, 1):
        t0 = time.perf_counter()
        q = scoped_query(catalog, rule, run_id=run_id, fingerprint=fingerprint, versions_json=vjson,
                         period=period, institutions=institutions)
        parts.append(engine.query(q).cast(contract.SUSPECT_SCHEMA))
        timings[rule.id] = time.perf_counter() - t0
        if progress:
            print(f"  [{i}/{len(rules)}] {rule.id:<40} {parts[-1].num_rows:>7} 疑点 suspects "
                  f"{timings[rule.id]:6.2f}s", file=sys.stderr)
    suspects = pa.concat_tables(parts) if parts else contract.SUSPECT_SCHEMA.empty_table()
    suspects = sort_suspects(suspects)
    pairs = screened_pairs(engine, suspects, period=period, institutions=institutions)
    scope = scope_table(pairs, run_id=run_id, fingerprint=fingerprint, input_versions=vjson,
                        period=period, institutions=institutions, rule_ids=[r.id for r in rules])
    staging_version = None
    if write_staging:
        staging_version, scope = write_staging_list(lake, engine, suspects, scope)
    rows_in = {t: engine_count(engine, v) for v, t in INPUT_TABLES.items() if t in used}
    return ScreenResult(run_id, engine.name, fingerprint, used, rules, suspects, staging_version, timings, rows_in,
                        scope)


def write_staging_list(lake: Lake, engine, suspects: pa.Table, scope: pa.Table) -> tuple[int, pa.Table]:
    """staging/suspects, then staging/scope naming the staging version just written: a scope that names
    another version (an interrupted screening, a list rewritten since) is refused by the gate."""
    version = engine.write(lake, STAGING, suspects, list(contract.SUSPECT_PARTITION_BY))
    scope = scope.set_column(scope.schema.get_field_index("staging_version"), "staging_version",
                             pa.array([version] * scope.num_rows, pa.int64()))
    lake.overwrite(STAGING_SCOPE, scope)
    return version, scope


def _write_batched_scope(lake: Lake, result: "ScreenResult", *, period: str | None,
                         institutions: list[str] | None) -> pa.Table:
    """staging/scope of a batched run, written and returned: its (institution, month) pairs counted from the
    inputs it read (at the versions it read), as the whole-lake path counts them."""
    from pipelines.screen.engines import DuckDBEngine

    counter = DuckDBEngine()
    if result.plan.budget:
        counter.set_memory(result.plan.budget)
    try:
        register_inputs(counter, lake, result.input_versions, {"fixmedins_code", "period"}, only=SCOPE_INPUTS,
                        materialize=False)
        pairs = screened_pairs(counter, result.suspects, period=period, institutions=institutions)
    finally:
        counter.close()
    scope = scope_table(pairs, run_id=result.run_id, fingerprint=result.fingerprint,
                        input_versions=input_versions_json(result.input_versions), period=period,
                        institutions=institutions, staging_version=result.staging_version,
                        rule_ids=[r.id for r in result.rules])
    lake.overwrite(STAGING_SCOPE, scope)
    return scope


def screened_pairs(engine, suspects: pa.Table, *, period: str | None,
                   institutions: list[str] | None) -> dict[tuple[str, str], int]:
    """(institution, month) → input rows (fee lines, visits, settlements, inventory movements) of every pair
    the run screened: the selected institutions (all with input rows or suspects when none) × the months of
    the selected period (the months with input rows or suspects when none)."""
    where = []
    if period:
        where.append(f"period LIKE {spark_literal(period + '%')}")
    if institutions:
        where.append(f"fixmedins_code IN {spark_literal(list(institutions))}")
    cond = f"WHERE {' AND '.join(where)}" if where else ""
    union = " UNION ALL ".join(f"SELECT CAST(fixmedins_code AS STRING) AS fixmedins_code, "
                               f"CAST(period AS STRING) AS period FROM {v}" for v in SCOPE_INPUTS)
    counts = engine.query(f"SELECT fixmedins_code, period, count(*) AS n FROM ({union}) u {cond} "
                          "GROUP BY fixmedins_code, period").to_pylist()
    rows = {(r["fixmedins_code"], r["period"]): int(r["n"]) for r in counts
            if r["fixmedins_code"] is not None and r["period"] is not None}
    found = set(rows) | {(r["fixmedins_code"], r["period"]) for r in
                         suspects.select(["fixmedins_code", "period"]).to_pylist()}
    insts = sorted(institutions) if institutions else sorted({i for i, _ in found if i})
    months = contract.period_months(period) if period else sorted({m for _, m in found if m})
    return {(i, m): rows.get((i, m), 0) for i in insts for m in months}


def scope_table(pairs: dict[tuple[str, str], int], *, run_id: str, fingerprint: str, input_versions: str,
                period: str | None = None, institutions: list[str] | None = None,
                staging_version: int | None = None, rule_ids: list[str] | None = None) -> pa.Table:
    """The scope of one screening in SCOPE_SCHEMA: one row per (institution, month) with its input rows, the
    run's lineage, its selection (`--period`, `--institution`; null when not selected) and the rules it ran
    (a JSON list; null when not recorded): publishing replaces those rules' findings in the scope."""
    selected = json.dumps(sorted(set(institutions))) if institutions else None
    ran = json.dumps(sorted(set(rule_ids))) if rule_ids is not None else None
    rows = [{"run_id": run_id, "staging_version": staging_version, "fixmedins_code": i, "period": m,
             "input_rows": n, "rule_set_fingerprint": fingerprint, "input_versions": input_versions,
             "selected_period": period, "selected_institutions": selected, "rule_ids": ran}
            for (i, m), n in sorted(pairs.items())]
    return pa.Table.from_pylist(rows, schema=SCOPE_SCHEMA)


def engine_count(engine, view: str) -> int:
    return int(engine.query(f"SELECT count(*) AS n FROM {view}").column("n")[0].as_py())


def sort_suspects(t: pa.Table) -> pa.Table:
    if t.num_rows == 0:
        return t
    return t.take(pc.sort_indices(t, sort_keys=[("rule_id", "ascending"), ("suspect_id", "ascending")]))
