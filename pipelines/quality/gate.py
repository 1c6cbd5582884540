"""The quality gate on a staging suspect list (contract §5: nothing is published unless it passed).

`run_gate` checks, as Great Expectations expectations (Data Docs written to `report_dir`):
- columns: every contract §5 column present with the type of `SUSPECT_SCHEMA`, no other column, no
  personal-data column (psn_name, certno, or any column named like them);
- suspects: suspect_id unique and not null; only active catalog rules; the keys of each rule's grain
  filled and period `YYYY-MM`; every suspect refers to an existing silver record (line → fee_list_net,
  visit → mdtrt, self_pay_ratio → setl, item-month → inv_movement); amount ≥ 0 and not above the line
  amount / the visit's netted total / the settlement's medfee_sumamt; no 18-digit ID number in evidence;
- rules: each rule's hits within `band` × its last published run's hits (once it has `min_hits`).
Cross-table checks are computed with DuckDB into per-row columns, then validated by GX.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import contract
from pipelines.contract import SUSPECT_SCHEMA
from pipelines.quality import gx as qgx
from pipelines.catalog import Catalog, Rule
from pipelines.storage import Lake

GOLD = contract.GOLD_SUSPECTS
#: grain -> the silver table a suspect of that grain must refer to
REFERENCE_TABLES = {"line": "silver/fee_list_net", "visit": "silver/mdtrt", "settlement": "silver/setl",
                    "item-month": "silver/inv_movement"}
#: visit-grain families whose suspect record is a settlement (contract §4 "Period and event time")
SETTLEMENT_FAMILIES = frozenset({"self_pay_ratio"})
#: keys that must be filled, per grain (all grains also need rule_id, fixmedins_code, period)
GRAIN_REQUIRED = {"line": ("mdtrt_id", "feedetl_sn"), "visit": ("mdtrt_id",),
                  "settlement": ("mdtrt_id", "setl_id"), "item-month": ("hilist_code",)}
COMMON_REQUIRED = ("rule_id", "fixmedins_code", "period")
#: column names that carry personal data (contract §2: psn_name, certno never leave bronze in clear)
PII_NAME_RE = re.compile(r"(psn_?name|cert_?no|id_?card|id_?no\b|身份证|证件|姓名|^name$)", re.I)
PII_NAME_OK = frozenset({"hilist_name"})  # an item name is not personal data
ID_NUMBER_SQL = r"(^|[^0-9])[1-9][0-9]{16}[0-9Xx]($|[^0-9Xx])"
PERIOD_RE = r"^[0-9]{4}-(?:0[1-9]|1[0-2])$"


@dataclass
class GateResult:
    success: bool
    failures: list[str]
    report_path: Path | None
    results: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------ previous runs

def previous_hits(lake: Lake) -> dict[str, int]:
    """Hits of each rule in its latest published run (the run with the latest published_at) in gold."""
    if not lake.exists(GOLD):
        return {}
    ds = lake.dataset(GOLD)
    con = duckdb.connect()
    con.register("gold", ds)
    rows = con.execute("""
        WITH runs AS (
            SELECT rule_id, run_id, max(published_at) AS last_at, count(*) AS hits
            FROM gold GROUP BY rule_id, run_id)
        SELECT rule_id, hits FROM runs
        QUALIFY row_number() OVER (PARTITION BY rule_id ORDER BY last_at DESC NULLS LAST, run_id DESC) = 1
    """).fetchall()
    con.close()
    return {r: int(n) for r, n in rows}


# ------------------------------------------------------------------------------------ frames

def _normalised(suspects: pa.Table) -> pa.Table:
    """The suspects in SUSPECT_SCHEMA: a missing or uncastable column becomes nulls (reported elsewhere)."""
    cols = []
    for f in SUSPECT_SCHEMA:
        if f.name in suspects.column_names:
            try:
                cols.append(suspects.column(f.name).cast(f.type))
                continue
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                pass
        cols.append(pa.nulls(suspects.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=SUSPECT_SCHEMA)


def _columns_frame(suspects: pa.Table) -> pa.Table:
    expected = {f.name: f.type for f in SUSPECT_SCHEMA}
    actual = {f.name: f.type for f in suspects.schema}
    rows = []
    for name in list(expected) + [n for n in actual if n not in expected]:
        personal = bool(PII_NAME_RE.search(name)) and name not in PII_NAME_OK and name not in expected
        rows.append({
            "column": name,
            "label": dict(contract.SUSPECT_COLUMNS).get(name),
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


def _recorded_versions(suspects: pa.Table) -> dict[str, int]:
    if "input_versions" not in suspects.column_names or suspects.num_rows == 0:
        return {}
    for v in suspects.column("input_versions").drop_null().unique().to_pylist()[:1]:
        try:
            return {k: int(x) for k, x in json.loads(v).items()}
        except (ValueError, TypeError, AttributeError):
            return {}
    return {}


def _register_reference(con, lake: Lake, view: str, table: str, entity: str, columns: list[str],
                        versions: dict[str, int]) -> None:
    data = None
    if lake.exists(table):
        version = versions.get(table)
        try:
            data = lake.dataset(table, version)
        except Exception:  # a recorded version that no longer exists (vacuumed): use the current one
            data = lake.dataset(table)
        names = set(data.schema.names)
        if not set(columns) <= names:
            data = None
    if data is None:
        schema = contract.arrow_schema(entity)
        data = pa.schema([schema.field(c) for c in columns]).empty_table()
    con.register(f"__{view}", data)
    con.execute(f'CREATE TEMP VIEW "{view}" AS SELECT {", ".join(columns)} FROM "__{view}"')


CHECKS_SQL = f"""
WITH s AS (SELECT *, row_number() OVER () AS _row FROM sus),
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
                          AND ir.hilist_code = j.hilist_code)
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
    coalesce(regexp_matches(evidence, '{ID_NUMBER_SQL}'), false) AS evidence_has_id_number
FROM k ORDER BY _row
"""


def _checks_frame(lake: Lake, suspects: pa.Table, catalog: Catalog, rules: list[Rule]) -> pa.Table:
    active = {r.id for r in catalog.rules if r.active} & {r.id for r in rules}
    rulemap = pa.Table.from_pylist(
        [{"rule_id": r.id, "family": r.family, "grain": catalog.families[r.family].grain
          if r.family in catalog.families else None, "active": r.id in active} for r in catalog.rules],
        schema=pa.schema([("rule_id", pa.string()), ("family", pa.string()), ("grain", pa.string()),
                          ("active", pa.bool_())]))
    families = pa.table({"family": list(catalog.families), "grain": [f.grain for f in catalog.families.values()]})
    versions = _recorded_versions(suspects)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("sus", _normalised(suspects))
    con.register("rulemap", rulemap)
    con.register("families", families)
    con.register("settlement_families", pa.table({"family": sorted(SETTLEMENT_FAMILIES)}))
    _register_reference(con, lake, "fee", REFERENCE_TABLES["line"], "fee_list",
                        ["mdtrt_id", "feedetl_sn", "det_item_fee_sumamt"], versions)
    _register_reference(con, lake, "mdtrt", REFERENCE_TABLES["visit"], "mdtrt", ["mdtrt_id"], versions)
    _register_reference(con, lake, "setl", REFERENCE_TABLES["settlement"], "setl",
                        ["setl_id", "medfee_sumamt"], versions)
    _register_reference(con, lake, "inv", REFERENCE_TABLES["item-month"], "inv_movement",
                        ["fixmedins_code", "hilist_code"], versions)
    out = con.sql(CHECKS_SQL).to_arrow_table()
    con.close()
    return out


def _rules_frame(suspects: pa.Table, rules: list[Rule], previous: dict[str, int], band: float,
                 min_hits: int) -> pa.Table:
    hits: dict[str, int] = {r.id: 0 for r in rules}
    if suspects.num_rows and "rule_id" in suspects.column_names:
        counts = pc.value_counts(suspects.column("rule_id").cast(pa.string()))
        for item in counts.to_pylist():
            if item["values"] is not None:
                hits[item["values"]] = item["counts"]
    rows = []
    for rid, n in sorted(hits.items()):
        prev = previous.get(rid)
        exceeded = prev is not None and n >= min_hits and n > band * prev
        rows.append({"rule_id": rid, "hits": n, "previous_hits": prev,
                     "growth": (n / prev) if prev else None, "band_exceeded": exceeded})
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("rule_id", pa.string()), ("hits", pa.int64()), ("previous_hits", pa.int64()),
        ("growth", pa.float64()), ("band_exceeded", pa.bool_())]))


# ------------------------------------------------------------------------------------ messages

def _group(rows: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def _insts(rows: list[dict], limit: int = 5) -> str:
    codes = sorted({str(r.get("fixmedins_code")) for r in rows})
    return ", ".join(codes[:limit]) + (f" … (+{len(codes) - limit})" if len(codes) > limit else "")


def _examples(values, limit: int = 3) -> str:
    values = list(values)
    return "; ".join(str(v) for v in values[:limit]) + (" …" if len(values) > limit else "")


def _over(r: dict) -> str:
    return f"{r['amount']:.2f} > {r['amount_cap']:.2f}"


def _bad(frame: pa.Table, mask) -> list[dict]:
    return frame.filter(mask).to_pylist()


# ------------------------------------------------------------------------------------ the gate

def run_gate(lake: Lake, suspects: pa.Table, *, catalog: Catalog, rules: list[Rule], report_dir: Path,
             previous: dict[str, int] | None = None, band: float, min_hits: int) -> GateResult:
    """Validate a staging suspect list; `success` False means it must not be published."""
    if previous is None:
        previous = previous_hits(lake)
    cols = _columns_frame(suspects)
    checks_t = _checks_frame(lake, suspects, catalog, rules)
    rules_t = _rules_frame(suspects, rules, previous, band, min_hits)
    active_ids = sorted({r.id for r in catalog.rules if r.active} & {r.id for r in rules})
    gxe = qgx.expectations()
    C = qgx.Check

    def missing_columns():
        missing = [r["column"] for r in cols.to_pylist() if not r["present"]]
        return [f"疑点清单缺少合同列 {', '.join(missing)} / suspect list lacks contract §5 columns: "
                f"{', '.join(missing)}"] if missing else []

    def extra_columns():
        extra = [r["column"] for r in cols.to_pylist() if r["in_contract"] is False]
        return [f"疑点清单含合同外的列 {', '.join(extra)} / suspect list has columns outside contract §5: "
                f"{', '.join(extra)}"] if extra else []

    def wrong_types():
        return [f"列 {r['column']} 类型为 {r['actual_type']}，应为 {r['expected_type']} / column {r['column']} "
                f"has type {r['actual_type']}, contract type {r['expected_type']}"
                for r in cols.to_pylist() if r["type_ok"] is False]

    def pii_columns():
        pii = [r["column"] for r in cols.to_pylist() if r["personal_data"]]
        return [f"疑点清单含个人信息列 {', '.join(pii)}（禁止发布）/ suspect list carries personal-data "
                f"columns: {', '.join(pii)}"] if pii else []

    def null_ids():
        bad = _bad(checks_t, pc.is_null(checks_t.column("suspect_id")))
        return [f"规则 {rid} 有 {len(rs)} 条疑点没有疑点编号（机构 {_insts(rs)}）/ rule {rid}: {len(rs)} suspects "
                f"without suspect_id (institutions {_insts(rs)})" for (rid,), rs in _group(bad, "rule_id").items()]

    def duplicate_ids():
        counts = pc.value_counts(checks_t.column("suspect_id").drop_null()).to_pylist()
        dups = {c["values"]: c["counts"] for c in counts if c["counts"] > 1}
        if not dups:
            return []
        bad = _bad(checks_t, pc.is_in(checks_t.column("suspect_id"), pa.array(list(dups), pa.string())))
        out = []
        for (rid,), rs in _group(bad, "rule_id").items():
            ids = sorted({r["suspect_id"] for r in rs})
            out.append(f"规则 {rid} 的疑点编号重复：{len(ids)} 个编号共 {len(rs)} 条（机构 {_insts(rs)}，如 "
                       f"{_examples(i[:12] for i in ids)}）/ rule {rid}: {len(ids)} suspect_id values appear "
                       f"more than once ({len(rs)} rows, institutions {_insts(rs)})")
        return out

    def inactive_rules():
        bad = _bad(checks_t, pc.invert(checks_t.column("rule_active")))
        return [f"规则 {rid} 不是当前目录中启用的规则（{len(rs)} 条疑点）/ rule {rid} is not an active rule of "
                f"the catalog ({len(rs)} suspects)" for (rid,), rs in _group(bad, "rule_id").items()]

    def missing_keys():
        bad = _bad(checks_t, pc.is_valid(checks_t.column("missing_keys")))
        return [f"规则 {rid} 有 {len(rs)} 条疑点缺少粒度键 {keys}（机构 {_insts(rs)}）/ rule {rid}: {len(rs)} "
                f"suspects lack the keys of their grain: {keys} (institutions {_insts(rs)})"
                for (rid, keys), rs in _group(bad, "rule_id", "missing_keys").items()]

    def bad_periods():
        mask = pc.invert(pc.fill_null(pc.match_substring_regex(checks_t.column("period"), PERIOD_RE), True))
        bad = _bad(checks_t, mask)
        return [f"规则 {rid} 有 {len(rs)} 条疑点的期间不是 YYYY-MM（如 {_examples(r['period'] for r in rs)}）/ "
                f"rule {rid}: {len(rs)} suspects with a period that is not YYYY-MM"
                for (rid,), rs in _group(bad, "rule_id").items()]

    def orphans():
        bad = _bad(checks_t, pc.is_valid(checks_t.column("orphan")))
        return [f"规则 {rid} 有 {len(rs)} 条疑点在 silver 中找不到对应记录（机构 {_insts(rs)}，如 "
                f"{_examples(r['orphan'] for r in rs)}）/ rule {rid}: {len(rs)} suspects refer to no existing "
                f"silver record (institutions {_insts(rs)})" for (rid,), rs in _group(bad, "rule_id").items()]

    def negative_amounts():
        bad = _bad(checks_t, pc.fill_null(pc.less(checks_t.column("amount"), 0), False))
        return [f"规则 {rid} 有 {len(rs)} 条疑点金额为负（机构 {_insts(rs)}，最小 "
                f"{min(r['amount'] for r in rs):.2f} 元）/ rule {rid}: {len(rs)} suspects with a negative amount "
                f"(institutions {_insts(rs)})" for (rid,), rs in _group(bad, "rule_id").items()]

    def amounts_over_cap():
        bad = _bad(checks_t, pc.fill_null(pc.greater(checks_t.column("amount_over_cap"), 0.005), False))
        return [f"规则 {rid} 有 {len(rs)} 条疑点金额超过对应明细/就诊/结算金额（机构 {_insts(rs)}，如 "
                f"{_examples(_over(r) for r in rs)}）/ rule {rid}: {len(rs)} "
                f"suspects whose amount exceeds the line amount or the visit/settlement total"
                for (rid,), rs in _group(bad, "rule_id").items()]

    def id_numbers():
        bad = _bad(checks_t, checks_t.column("evidence_has_id_number"))
        return [f"规则 {rid} 有 {len(rs)} 条疑点依据含 18 位身份证号（机构 {_insts(rs)}）/ rule {rid}: {len(rs)} "
                f"evidence texts contain an 18-digit ID number" for (rid,), rs in _group(bad, "rule_id").items()]

    def band_exceeded():
        return [f"规则 {r['rule_id']} 命中数 {r['hits']}，较上次发布 {r['previous_hits']} 增长超过 {band:g} 倍 / "
                f"rule {r['rule_id']}: {r['hits']} hits vs {r['previous_hits']} last published run (band ×{band:g})"
                for r in rules_t.to_pylist() if r["band_exceeded"]]

    checks = [
        C("columns_present", "columns", gxe.ExpectColumnValuesToBeInSet(
            column="present", value_set=[True], description="合同 §5 的每一列都在 / every contract §5 column is present"),
          missing_columns),
        C("column_types", "columns", gxe.ExpectColumnValuesToBeInSet(
            column="type_ok", value_set=[True], description="列类型与 SUSPECT_SCHEMA 一致 / column types match"),
          wrong_types),
        C("no_extra_columns", "columns", gxe.ExpectColumnValuesToBeInSet(
            column="in_contract", value_set=[True], description="没有合同外的列 / no column outside contract §5"),
          extra_columns),
        C("no_personal_data_columns", "columns", gxe.ExpectColumnValuesToBeInSet(
            column="personal_data", value_set=[False],
            description="没有个人信息列（姓名、证件号码）/ no personal-data column (psn_name, certno)"), pii_columns),
        C("suspect_id_not_null", "suspects", gxe.ExpectColumnValuesToNotBeNull(
            column="suspect_id", description="疑点编号非空 / suspect_id is not null"), null_ids),
        C("suspect_id_unique", "suspects", gxe.ExpectColumnValuesToBeUnique(
            column="suspect_id", description="疑点编号唯一 / suspect_id is unique"), duplicate_ids),
        C("active_rules_only", "suspects", gxe.ExpectColumnValuesToBeInSet(
            column="rule_id", value_set=active_ids or [""],
            description="只含启用规则的疑点 / only rules active in the catalog"), inactive_rules),
        C("grain_keys_filled", "suspects", gxe.ExpectColumnValuesToBeNull(
            column="missing_keys", description="粒度键已填 / the keys of each rule's grain are filled"), missing_keys),
        C("period_format", "suspects", gxe.ExpectColumnValuesToMatchRegex(
            column="period", regex=PERIOD_RE, description="期间为 YYYY-MM / period is YYYY-MM"), bad_periods),
        C("refers_to_silver", "suspects", gxe.ExpectColumnValuesToBeNull(
            column="orphan", description="每条疑点指向 silver 中存在的记录 / every suspect refers to an existing "
                                         "silver record"), orphans),
        C("amount_not_negative", "suspects", gxe.ExpectColumnValuesToBeBetween(
            column="amount", min_value=0, description="涉及金额不为负 / amount ≥ 0"), negative_amounts),
        C("amount_within_record", "suspects", gxe.ExpectColumnValuesToBeBetween(
            column="amount_over_cap", max_value=0.005,
            description="涉及金额不超过明细金额或就诊/结算总额 / amount ≤ line amount or visit/settlement total"),
          amounts_over_cap),
        C("no_id_number_in_evidence", "suspects", gxe.ExpectColumnValuesToBeInSet(
            column="evidence_has_id_number", value_set=[False],
            description="疑点依据不含身份证号 / no 18-digit ID number in evidence"), id_numbers),
        C("hits_within_band", "rules", gxe.ExpectColumnValuesToBeInSet(
            column="band_exceeded", value_set=[False],
            description=f"各规则命中数不超过上次发布的 {band:g} 倍（≥{min_hits} 条时）/ each rule's hits within "
                        f"×{band:g} of its last published run (from {min_hits} hits)"), band_exceeded),
    ]
    frames = {"columns": cols, "suspects": checks_t.drop_columns(["_row"]), "rules": rules_t}
    run = qgx.run_suite("gate", frames, checks, report_dir)
    failures = qgx.messages(run)
    results = {
        "gate_success": int(run.success),
        "gate_expectations": run.stats["expectations"],
        "gate_failed_expectations": run.stats["failed"],
        "gate_suspects": suspects.num_rows,
    }
    for o in run.outcomes:
        results[f"gate.{o.check.name}.unexpected"] = int(o.unexpected_count or (0 if o.success else 1))
    return GateResult(run.success, failures, report_dir, results)
