"""Incremental screening: what changed in the inputs between two sets of Delta versions (those a published
run recorded, and now), as the scope a re-screen must cover so that its list equals a full re-screen.

- A partitioned input (fee lines, visits, settlements, stock movements): the partitions whose files differ
  between the two versions (the Delta log; a partition a load did not touch keeps its files) are the
  changed (institution, period) partitions; their institutions are re-screened whole by the
  institution-partitioned families (split admissions and stock balances cross periods).
- The rows that differ in those partitions, compared on the columns the rules read, name the persons
  touched: their person buckets are re-screened by the person-partitioned families (a late refund or a
  re-sent line changes the person's lines wherever they sit).
- A small input (persons, institutions, diagnoses) is compared row by row: a changed person is touched and
  the institutions where the person has visits change; a changed institution or diagnosis changes its
  institution (a diagnosis through its visit). A changed knowledge base changes every rule: full re-screen.
  A person touched only through a partitioned input (a late refund) does not change the other institutions
  the person visited: an institution-partitioned family sees only its institution's partitions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from pipelines.screen import plan as planning
from pipelines.screen.pipeline import INPUT_TABLES
from pipelines.storage import Lake, native_select, sql_ident

KNOWLEDGE_BASE = ("silver/kb_hilist", "silver/kb_item_pair", "silver/kb_param")
INSTITUTION = "fixmedins_code"


@dataclass
class Scope:
    full: bool = False
    reason: str = ""
    institutions: set = field(default_factory=set)         # re-screened by institution-partitioned families
    persons: set = field(default_factory=set)              # touched persons (psn_no)
    partitions: set = field(default_factory=set)           # (table, institution, period_year) that changed

    @property
    def buckets(self) -> set[int]:
        return {planning.bucket_of(p, planning.BUCKETS) for p in self.persons}

    def describe(self) -> str:
        if self.full:
            return f"full re-screen: {self.reason}"
        return (f"{len(self.partitions)} changed partitions in {len(self.institutions)} institutions; "
                f"{len(self.persons)} persons touched in {len(self.buckets)} of {planning.BUCKETS} person buckets")


def changed_scope(lake: Lake, old: dict[str, int], new: dict[str, int], columns: set[str]) -> Scope:
    """The scope to re-screen between input versions `old` (a published run's) and `new` (now); `columns`
    are the columns the rules read (`sql.referenced_columns`): a change elsewhere cannot change a suspect."""
    inputs = set(INPUT_TABLES.values())
    if {t for t in old if t in inputs} != {t for t in new if t in inputs}:
        return Scope(full=True, reason="an input table appeared or disappeared since the last publication")
    scope = Scope()
    con = duckdb.connect()
    visits_of: list[str] = []          # mdtrt ids whose institution and person must be looked up
    shared_persons: set = set()        # persons whose own row (silver/psn) changed: every institution they visited
    for table in sorted(t for t in new if t in inputs):
        if old[table] == new[table]:
            continue
        if table in planning.PARTITIONED:
            _partitioned_changes(con, lake, table, old[table], new[table], columns, scope)
            continue
        changed = _row_diff(con, lake, table, old[table], new[table], columns, None)
        if table in KNOWLEDGE_BASE:
            if changed.num_rows:
                return Scope(full=True, reason=f"the knowledge base changed ({table})")
            continue
        names = changed.column_names
        if INSTITUTION in names:
            scope.institutions |= set(changed.column(INSTITUTION).to_pylist())
        if "psn_no" in names:
            shared_persons |= set(changed.column("psn_no").to_pylist())
        if "mdtrt_id" in names and INSTITUTION not in names:
            visits_of += [v for v in changed.column("mdtrt_id").to_pylist() if v is not None]
    scope.persons |= shared_persons
    _visits_and_persons(con, lake, new.get("silver/mdtrt"), visits_of, shared_persons, scope)
    return scope


def _files_by_partition(lake: Lake, table: str, version: int) -> dict[tuple, set[str]]:
    actions = pa.table(lake.delta(table, version).get_add_actions(flatten=True))
    cols = [c for c in actions.column_names if c.startswith("partition.")]
    keys = zip(*(actions.column(c).to_pylist() for c in cols)) if cols else [()] * actions.num_rows
    out: dict[tuple, set[str]] = {}
    for key, path in zip(keys, actions.column("path").to_pylist()):
        out.setdefault(tuple(key), set()).add(path)
    return out


def _partitioned_changes(con, lake, table, v_old, v_new, columns, scope: Scope) -> None:
    before, after = _files_by_partition(lake, table, v_old), _files_by_partition(lake, table, v_new)
    changed = sorted((k for k in set(before) | set(after) if before.get(k) != after.get(k)),
                     key=lambda k: tuple("" if x is None else str(x) for x in k))
    if not changed:
        return
    for key in changed:
        scope.institutions.add(key[0])
        scope.partitions.add((table, *key))
    diff = _row_diff(con, lake, table, v_old, v_new, columns, {k[0] for k in changed})
    if "psn_no" in diff.column_names:
        scope.persons |= set(diff.column("psn_no").to_pylist())


def _snapshot_select(lake: Lake, table: str, version: int, cols: list[str], institutions: set | None) -> str:
    """DuckDB SELECT of `cols` of one snapshot (only `institutions`' files when given)."""
    snap = lake.native_files(table, version)
    if snap is None:
        return None
    if institutions is not None:
        keep = [i for i, v in enumerate(snap.values or []) if v.get(INSTITUTION) in institutions]
        snap = type(snap)([snap.files[i] for i in keep], snap.partition_by, snap.schema,
                          [snap.values[i] for i in keep])
        if not snap.files:
            return None
    return native_select(snap, union=True, columns=cols)


def _row_diff(con, lake: Lake, table: str, v_old: int, v_new: int, columns: set[str],
              institutions: set | None) -> pa.Table:
    """Rows of one version not in the other (both ways), on the rule-visible columns."""
    names = lake.delta(table, v_new).schema().to_arrow().names
    cols = [c for c in names if c.lower() in columns and not c.startswith("_")] or \
        [c for c in names if not c.startswith("_")]
    sides = []
    for v in (v_old, v_new):
        sel = _snapshot_select(lake, table, v, cols, institutions)
        if sel is None:
            ds = lake.dataset(table, v)
            con.register(f"_ds_{v}", ds)
            flt = ""
            if institutions is not None:
                flt = f" WHERE {INSTITUTION} IN ({', '.join(_lit(i) for i in institutions if i is not None) or 'NULL'})"
            sel = f"SELECT {', '.join(sql_ident(c) for c in cols)} FROM _ds_{v}{flt}"
        sides.append(sel)
    a, b = sides
    return con.sql(f"({a} EXCEPT ALL {b}) UNION ALL ({b} EXCEPT ALL {a})").to_arrow_table()


def _lit(v) -> str:
    return "'" + str(v).replace("'", "''") + "'"


def _visits_and_persons(con, lake: Lake, mdtrt_version: int | None, visits: list[str], persons: set,
                        scope: Scope) -> None:
    """Institutions of the visits of `persons` (whose own row changed), and institution and person of changed
    diagnoses' visits."""
    if mdtrt_version is None or not (persons or visits):
        return
    sel = _snapshot_select(lake, "silver/mdtrt", mdtrt_version, ["mdtrt_id", "psn_no", INSTITUTION], None)
    if sel is None:
        con.register("_mdtrt_ds", lake.dataset("silver/mdtrt", mdtrt_version))
        sel = f"SELECT mdtrt_id, psn_no, {INSTITUTION} FROM _mdtrt_ds"
    con.register("_persons", pa.table({"p": pa.array(sorted(p for p in persons if p is not None), pa.string())}))
    con.register("_visits", pa.table({"v": pa.array(sorted(set(visits)), pa.string())}))
    rows = con.sql(f"SELECT DISTINCT m.psn_no, m.{INSTITUTION}, m.mdtrt_id IN (SELECT v FROM _visits) AS by_visit "
                   f"FROM ({sel}) m WHERE m.psn_no IN (SELECT p FROM _persons) "
                   f"OR m.mdtrt_id IN (SELECT v FROM _visits)").fetchall()
    for psn, inst, by_visit in rows:
        scope.institutions.add(inst)
        if by_visit:
            scope.persons.add(psn)
