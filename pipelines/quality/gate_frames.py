"""The frames the gate suite (`gate_suite.yml`) validates, each computed by one pure function registered
in `FRAMES` under the name the suite gives it:
- `columns`: one row per column of the list or of contract §5 (present, type, outside the contract,
  personal data: psn_name, certno, or any column named like them);
- `suspects`: one row per suspect with the cross-table checks computed by DuckDB: the rule's grain, whether
  it is active, the grain's keys missing, the silver record it should refer to when it does not (line →
  fee_list_net, visit → mdtrt, self_pay_ratio → setl, item-month → inv_movement), the amount and the
  amount it may not exceed (line amount, the visit's netted total, the settlement's medfee_sumamt), an
  18-digit ID number in the evidence;
- `rules`: one row per selected rule with its hits, its hits in the published list within the scope and whether the growth
  leaves the band (once it has `min_hits`);
- `staging` and `scope` (`scope_frames`): the list against the scope its screening recorded.
The suspects frame also has: a null amount, the same finding (rule and record keys) under more than one
suspect_id, an identity number or an insured person's name in any text column (`personal`), a period that is
not the month of event_time, a lineage (run id, rule-set fingerprint, input versions) other than the recorded
scope's, a pair (institution, period) outside that scope.
The functions read nothing: the silver references come in `GateInputs.references` (read by `gate`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import contract
from pipelines.catalog import Catalog, Rule
from pipelines.quality import personal, scope_frames

#: grain -> the silver table a suspect of that grain must refer to
REFERENCE_TABLES = {"line": "silver/fee_list_net", "visit": "silver/mdtrt", "settlement": "silver/setl",
                    "item-month": "silver/inv_movement"}
#: view of a reference in CHECKS_SQL -> (grain, entity, the columns it reads)
REFERENCE_VIEWS = {"fee": ("line", "fee_list", ("mdtrt_id", "feedetl_sn", "det_item_fee_sumamt")),
                   "mdtrt": ("visit", "mdtrt", ("mdtrt_id",)),
                   "setl": ("settlement", "setl", ("setl_id", "medfee_sumamt")),
                   "inv": ("item-month", "inv_movement", ("fixmedins_code", "hilist_code"))}
#: visit-grain families whose suspect record is a settlement (contract §4 "Period and event time")
SETTLEMENT_FAMILIES = frozenset({"self_pay_ratio"})
#: column names that carry personal data (contract §2: psn_name, certno never leave bronze in clear)
PII_NAME_RE = re.compile(r"(psn_?name|cert_?no|id_?card|id_?no\b|身份证|证件|姓名|^name$)", re.I)
PII_NAME_OK = frozenset({"hilist_name"})  # an item name is not personal data
#: the record keys of a finding: two suspects of one rule with equal keys are one finding
FINDING_KEYS = ("rule_id", "fixmedins_code", "period", "mdtrt_id", "setl_id", "feedetl_sn", "hilist_code")


@dataclass(frozen=True)
class GateInputs:
    """What the gate's frames are computed from."""

    suspects: pa.Table
    catalog: Catalog
    rules: list[Rule]
    references: Mapping[str, object]  # REFERENCE_VIEWS name -> Arrow table or dataset with its columns
    previous: Mapping[str, int]       # rule id -> its hits in the published list (same scope)
    band: float
    min_hits: int
    scope: pa.Table | None = None     # staging/scope of the list (screen.pipeline.SCOPE_SCHEMA); None: none recorded
    staging_version: int | None = None  # the staging version the list was read at (None: not written)
    published: pa.Table | None = None   # gold now: fixmedins_code, period, n (rows)
    persons: object = None            # silver/psn: psn_no, psn_name_hash (table or dataset); None: no names
    pii_key: str = ""                 # conf pii_key: the key ingestion hashed psn_name with
    drop_ratio: float = 0.5           # a scope's list below this share of the last published one is a drop
    drop_min_rows: int = 10           # ... when the last published one had at least this many rows

    @property
    def active_ids(self) -> list[str]:
        """The selected rules active in the catalog."""
        return sorted({r.id for r in self.catalog.rules if r.active} & {r.id for r in self.rules})


# ------------------------------------------------------------------------------------ columns

def columns_frame(inputs: GateInputs) -> pa.Table:
    schema = contract.SUSPECT_SCHEMA
    expected = {f.name: f.type for f in schema}
    actual = {f.name: f.type for f in inputs.suspects.schema}
    labels = dict(contract.SUSPECT_COLUMNS)
    rows = []
    for name in list(expected) + [n for n in actual if n not in expected]:
        personal = bool(PII_NAME_RE.search(name)) and name not in PII_NAME_OK and name not in expected
        rows.append({
            "column": name,
            "label": labels.get(name),
            "expected_type": str(expected[name]) if name in expected else None,
            "actual_type": str(actual[name]) if name in actual else None,
            "present": name in actual,
            "in_contract": None if personal else name in expected,  # a PII column: its own check
            "type_ok": None if name not in expected or name not in actual else actual[name] == expected[name],
            "personal_data": personal,
        })
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("column", pa.string()), ("label", pa.string()), ("expected_type", pa.string()),
        ("actual_type", pa.string()), ("present", pa.bool_()), ("in_contract", pa.bool_()),
        ("type_ok", pa.bool_()), ("personal_data", pa.bool_())]))


# ------------------------------------------------------------------------------------ suspects

def normalised(suspects: pa.Table) -> pa.Table:
    """The suspects in SUSPECT_SCHEMA: a missing or uncastable column becomes nulls (reported elsewhere);
    plus `_row`, each suspect's number from 1."""
    schema = contract.SUSPECT_SCHEMA
    cols = []
    for f in schema:
        if f.name in suspects.column_names:
            try:
                cols.append(suspects.column(f.name).cast(f.type))
                continue
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                pass
        cols.append(pa.nulls(suspects.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema).append_column(
        "_row", pa.array(range(1, suspects.num_rows + 1), pa.int64()))


CHECKS_SQL = f"""
WITH s AS (
    SELECT *, count(DISTINCT suspect_id) OVER (PARTITION BY {", ".join(FINDING_KEYS)}) AS finding_ids FROM sus),
j AS (
    SELECT s.*, r.active AS rule_known_active,
           CASE WHEN coalesce(r.family, s.family) IN (SELECT family FROM settlement_families) THEN 'settlement'
                ELSE coalesce(r.grain, fam.grain) END AS grain
    FROM s LEFT JOIN rulemap r ON r.rule_id = s.rule_id
           LEFT JOIN families fam ON fam.family = s.family),
line_ref AS (SELECT mdtrt_id, feedetl_sn, max(det_item_fee_sumamt) AS cap FROM fee
             WHERE mdtrt_id IN (SELECT mdtrt_id FROM sus) GROUP BY ALL),
visit_ref AS (SELECT m.mdtrt_id, coalesce(max(t.total), 0) AS cap
              FROM (SELECT DISTINCT mdtrt_id FROM mdtrt WHERE mdtrt_id IN (SELECT mdtrt_id FROM sus)) m
              LEFT JOIN (SELECT mdtrt_id, sum(det_item_fee_sumamt) AS total FROM fee
                         WHERE mdtrt_id IN (SELECT mdtrt_id FROM sus) GROUP BY ALL) t USING (mdtrt_id)
              GROUP BY ALL),
setl_ref AS (SELECT setl_id, max(medfee_sumamt) AS cap FROM setl
             WHERE setl_id IN (SELECT setl_id FROM sus) GROUP BY ALL),
item_ref AS (SELECT DISTINCT fixmedins_code, hilist_code FROM inv),
k AS (
    SELECT j.*,
        nullif(concat_ws(', ',
            CASE WHEN nullif(j.rule_id, '') IS NULL THEN 'rule_id' END,
            CASE WHEN nullif(j.fixmedins_code, '') IS NULL THEN 'fixmedins_code' END,
            CASE WHEN nullif(j.period, '') IS NULL THEN 'period' END,
            CASE WHEN j.grain IN ('line', 'visit', 'settlement') AND nullif(j.mdtrt_id, '') IS NULL THEN 'mdtrt_id' END,
            CASE WHEN j.grain = 'line' AND nullif(j.feedetl_sn, '') IS NULL THEN 'feedetl_sn' END,
            CASE WHEN j.grain = 'settlement' AND nullif(j.setl_id, '') IS NULL THEN 'setl_id' END,
            CASE WHEN j.grain = 'item-month' AND nullif(j.hilist_code, '') IS NULL THEN 'hilist_code' END
        ), '') AS missing_keys,
        CASE j.grain
            WHEN 'line' THEN (lr.mdtrt_id IS NOT NULL)
            WHEN 'visit' THEN (vr.mdtrt_id IS NOT NULL)
            WHEN 'settlement' THEN (sr.setl_id IS NOT NULL)
            WHEN 'item-month' THEN (ir.hilist_code IS NOT NULL)
        END AS found,
        CASE j.grain WHEN 'line' THEN lr.cap WHEN 'visit' THEN vr.cap WHEN 'settlement' THEN sr.cap END AS amount_cap
    FROM j
    LEFT JOIN line_ref lr ON j.grain = 'line' AND lr.mdtrt_id = j.mdtrt_id AND lr.feedetl_sn = j.feedetl_sn
    LEFT JOIN visit_ref vr ON j.grain = 'visit' AND vr.mdtrt_id = j.mdtrt_id
    LEFT JOIN setl_ref sr ON j.grain = 'settlement' AND sr.setl_id = j.setl_id
    LEFT JOIN item_ref ir ON j.grain = 'item-month' AND ir.fixmedins_code = j.fixmedins_code
                          AND ir.hilist_code = j.hilist_code),
recorded AS (SELECT count(*) AS n, min(run_id) AS run_id, min(rule_set_fingerprint) AS fingerprint,
                    min(input_versions) AS versions FROM lineage),
pairs AS (SELECT DISTINCT fixmedins_code, period FROM scope_pairs),
marked AS (
    SELECT k.*, p.id_number_in, p.id_number_example, p.name_in,
           r.n AS recorded_lineages, r.run_id AS scope_run_id, r.fingerprint AS scope_fingerprint,
           r.versions AS scope_versions, pr.fixmedins_code IS NOT NULL AS pair_recorded
    FROM k
    LEFT JOIN pii p ON p._row = k._row
    CROSS JOIN recorded r
    LEFT JOIN pairs pr ON pr.fixmedins_code = k.fixmedins_code AND pr.period = k.period)
SELECT
    _row, suspect_id, rule_id, family, fixmedins_code, period, grain,
    coalesce(rule_known_active, false) AS rule_active,
    missing_keys,
    CASE WHEN missing_keys IS NULL AND grain IS NOT NULL AND NOT found THEN
        CASE grain
            WHEN 'line' THEN '{REFERENCE_TABLES["line"]} (mdtrt_id, feedetl_sn) = (' || mdtrt_id || ', ' || feedetl_sn || ')'
            WHEN 'visit' THEN '{REFERENCE_TABLES["visit"]} mdtrt_id = ' || mdtrt_id
            WHEN 'settlement' THEN '{REFERENCE_TABLES["settlement"]} setl_id = ' || setl_id
            ELSE '{REFERENCE_TABLES["item-month"]} (fixmedins_code, hilist_code) = (' || fixmedins_code || ', ' || hilist_code || ')'
        END END AS orphan,
    CAST(amount AS DOUBLE) AS amount,
    CAST(amount_cap AS DOUBLE) AS amount_cap,
    CAST(amount - amount_cap AS DOUBLE) AS amount_over_cap,
    finding_ids,
    id_number_in, id_number_example, name_in,
    CASE WHEN nullif(period, '') IS NULL THEN NULL
         WHEN event_time IS NULL THEN period || ' / event_time NULL'
         WHEN strftime(event_time, '%Y-%m') <> period THEN period || ' / ' || strftime(event_time, '%Y-%m-%d %H:%M')
    END AS period_mismatch,
    run_id,
    CASE WHEN recorded_lineages = 1 THEN nullif(concat_ws(', ',
        CASE WHEN run_id IS DISTINCT FROM scope_run_id THEN 'run_id' END,
        CASE WHEN rule_set_fingerprint IS DISTINCT FROM scope_fingerprint THEN 'rule_set_fingerprint' END,
        CASE WHEN input_versions IS DISTINCT FROM scope_versions THEN 'input_versions' END), '') END
        AS lineage_mismatch,
    scope_run_id,
    CASE WHEN recorded_lineages > 0 THEN pair_recorded END AS in_scope
FROM marked ORDER BY _row
"""


def _rule_tables(inputs: GateInputs) -> dict[str, pa.Table]:
    catalog, active = inputs.catalog, set(inputs.active_ids)
    rulemap = pa.Table.from_pylist(
        [{"rule_id": r.id, "family": r.family, "grain": catalog.families[r.family].grain
          if r.family in catalog.families else None, "active": r.id in active} for r in catalog.rules],
        schema=pa.schema([("rule_id", pa.string()), ("family", pa.string()), ("grain", pa.string()),
                          ("active", pa.bool_())]))
    families = pa.table({"family": list(catalog.families), "grain": [f.grain for f in catalog.families.values()]})
    return {"rulemap": rulemap, "families": families,
            "settlement_families": pa.table({"family": sorted(SETTLEMENT_FAMILIES)})}


PERSONS_EMPTY = pa.table({"psn_no": pa.array([], pa.string()), "psn_name_hash": pa.array([], pa.string())})


def suspects_frame(inputs: GateInputs) -> pa.Table:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("sus", normalised(inputs.suspects))
        for name, t in _rule_tables(inputs).items():
            con.register(name, t)
        for view, (_, _, columns) in REFERENCE_VIEWS.items():
            con.register(f"__{view}", inputs.references[view])
            con.execute(f'CREATE TEMP VIEW "{view}" AS SELECT {", ".join(columns)} FROM "__{view}"')
        persons = inputs.persons if inputs.persons is not None else PERSONS_EMPTY
        con.register("pii", personal.person_data(inputs.suspects, persons, inputs.pii_key))
        con.register("scope_pairs", scope_frames.pairs(inputs.scope))
        con.register("lineage", scope_frames.lineage(inputs.scope))
        return con.sql(CHECKS_SQL).to_arrow_table()
    finally:
        con.close()


# ------------------------------------------------------------------------------------ rules

def rules_frame(inputs: GateInputs) -> pa.Table:
    suspects = inputs.suspects
    hits: dict[str, int] = {r.id: 0 for r in inputs.rules}
    if suspects.num_rows and "rule_id" in suspects.column_names:
        counts = pc.value_counts(suspects.column("rule_id").cast(pa.string()))
        for item in counts.to_pylist():
            if item["values"] is not None:
                hits[item["values"]] = item["counts"]
    rows = []
    for rid, n in sorted(hits.items()):
        prev = inputs.previous.get(rid)
        exceeded = prev is not None and n >= inputs.min_hits and n > inputs.band * prev
        rows.append({"rule_id": rid, "hits": n, "previous_hits": prev,
                     "growth": (n / prev) if prev else None, "band_exceeded": exceeded})
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("rule_id", pa.string()), ("hits", pa.int64()), ("previous_hits", pa.int64()),
        ("growth", pa.float64()), ("band_exceeded", pa.bool_())]))


#: the frames the gate suite can name
FRAMES: dict[str, Callable[[GateInputs], pa.Table]] = {
    "staging": scope_frames.staging_frame, "scope": scope_frames.scope_frame,
    "columns": columns_frame, "suspects": suspects_frame, "rules": rules_frame}
