"""Great Expectations suites on silver after a load (the ingestion's `validate` hook).

Per entity (contract §2–3): key unique and not null, required fields filled, codes in their code tables
(`Field.codes`), money within ±1e10, times between 1990-01-01 and 2100-01-01 (birth dates from
1900-01-01). Across tables: fee lines refer to known visits, and each settlement's medfee_sumamt equals
the sum of its netted fee lines within 0.01. A settlement (or visit) whose related rows were quarantined
in this load is reported as a warning "incomplete settlement" with its ids, not as a failure
(contract §1: it stays loaded and is reported as incomplete).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines import contract
from pipelines.quality import gx as qgx
from pipelines.storage import Lake

NET = "silver/fee_list_net"
MONEY_LIMIT = 1e10
TIME_MIN, TIME_MAX = dt.datetime(1990, 1, 1), dt.datetime(2100, 1, 1)
BIRTH_MIN = dt.datetime(1900, 1, 1)
TOLERANCE = 0.01


@dataclass
class SuiteResult:
    success: bool
    failures: list[str]
    warnings: list[str]
    report_path: Path | None
    results: dict = field(default_factory=dict)


def silver_tables(lake: Lake) -> list[str]:
    names = [f"silver/{e}" for e in contract.ENTITIES] + [NET]
    return [n for n in names if lake.exists(n)]


def _changed(lake: Lake, before: dict[str, int | None]) -> list[str]:
    return [n for n in silver_tables(lake) if n not in before or before[n] != lake.version(n)]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _entity(table: str) -> str:
    return "fee_list" if table == NET else table.split("/", 1)[1]


def _lit(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _problems(parts: list[str]) -> str:
    return f"nullif(concat_ws('; ', {', '.join(parts)}), '')" if parts else "CAST(NULL AS VARCHAR)"


def _frame_sql(table_cols: set[str], entity: contract.Entity) -> tuple[str, dict[str, bool]]:
    """One row per record: the key as one string (NULL when a key part is missing), and one column per
    kind of problem (NULL when the row is fine) naming the fields and values at fault."""
    key_parts = " || '|' || ".join(f"CAST({_q(k)} AS VARCHAR)" for k in entity.key)
    key_null = " OR ".join(f"{_q(k)} IS NULL" for k in entity.key)
    required, codes, ranges = [], [], []
    for f in entity.fields:
        if f.pii or f.name not in table_cols:
            continue
        c = _q(f.name)
        if f.required and f.name not in entity.key:
            required.append(f"CASE WHEN {c} IS NULL THEN {_lit(f.name)} END")
        if f.codes:
            codes.append(f"CASE WHEN {c} IS NOT NULL AND {c} NOT IN ({', '.join(_lit(v) for v in f.codes)}) "
                         f"THEN {_lit(f.name + '=')} || {c} END")
        if f.type == contract.MONEY:
            ranges.append(f"CASE WHEN abs({c}) > {MONEY_LIMIT:.0f} THEN {_lit(f.name + '=')} || CAST({c} AS VARCHAR) END")
        if f.type in (contract.TS, contract.DATE):
            low = BIRTH_MIN if f.name == "brdy" else TIME_MIN
            ranges.append(f"CASE WHEN {c} < TIMESTAMP '{low:%Y-%m-%d}' OR {c} > TIMESTAMP '{TIME_MAX:%Y-%m-%d}' "
                          f"THEN {_lit(f.name + '=')} || CAST({c} AS VARCHAR) END")
    rows = (f"SELECT CASE WHEN {key_null} THEN NULL ELSE {key_parts} END AS _key, "
            f"{_problems(required)} AS missing_required, {_problems(codes)} AS bad_codes, "
            f"{_problems(ranges)} AS out_of_range FROM t")
    sql = offending_rows(rows, ["missing_required", "bad_codes", "out_of_range"])
    return sql, {"missing_required": bool(required), "bad_codes": bool(codes), "out_of_range": bool(ranges)}


def offending_rows(rows_sql: str, problem_columns: list[str]) -> str:
    """Only the rows at fault: a null or repeated `_key`, or a problem column filled.

    DuckDB pre-selects them so that Great Expectations validates a frame whose size is the number of
    problems, not of records (a 10 M-line load stays in bounded memory); the expectations' verdicts and
    messages are the same as on the whole table."""
    flags = " OR ".join(f"{c} IS NOT NULL" for c in problem_columns)
    return (f"WITH r AS ({rows_sql}), d AS (SELECT _key FROM r WHERE _key IS NOT NULL GROUP BY _key "
            f"HAVING count(*) > 1) SELECT * FROM r WHERE _key IS NULL OR {flags} OR _key IN (SELECT _key FROM d)")


def _examples(col: pa.ChunkedArray, limit: int = 5) -> tuple[int, str]:
    values = col.drop_null()
    distinct = sorted(set(values.to_pylist()))
    return len(values), "; ".join(distinct[:limit]) + (" …" if len(distinct) > limit else "")


PROBLEMS = {
    "missing_required": ("必填字段为空 / required fields filled", "必填字段为空", "rows without required fields"),
    "bad_codes": ("代码在代码表内 / codes in their code tables", "代码不在代码表内", "values outside their code table"),
    "out_of_range": ("金额在 ±1e10 内，时间在 1990-01-01..2100-01-01（出生日期自 1900 年）/ money and times in range",
                     "金额或时间超出范围", "values out of range (money ±1e10, times 1990-01-01..2100-01-01)"),
}


def _entity_checks(table: str, frame: str, entity: contract.Entity, kinds: dict[str, bool],
                   data: pa.Table, present: set[str]) -> list[qgx.Check]:
    gxe = qgx.expectations()
    C = qgx.Check
    keys = "(" + ", ".join(entity.key) + ")"

    def dup_keys():
        import pyarrow.compute as pc
        dups = [d["values"] for d in pc.value_counts(data.column("_key").drop_null()).to_pylist() if d["counts"] > 1]
        return [f"{table} 主键 {keys} 重复 {len(dups)} 个（如 {', '.join(dups[:3])}）/ {table}: key {keys} not "
                f"unique, {len(dups)} values repeated (e.g. {', '.join(dups[:3])})"] if dups else []

    def null_keys():
        n = data.column("_key").null_count
        return [f"{table} 有 {n} 行主键 {keys} 为空 / {table}: {n} rows with a null key {keys}"]

    checks = [
        C(f"{frame}.key_unique", frame, gxe.ExpectColumnValuesToBeUnique(
            column="_key", description=f"{table} 主键 {keys} 唯一 / key {keys} unique"), dup_keys),
        C(f"{frame}.key_not_null", frame, gxe.ExpectColumnValuesToNotBeNull(
            column="_key", description=f"{table} 主键 {keys} 非空 / key {keys} not null"), null_keys),
    ]
    missing = [f for f in entity.fields if f.required and not f.pii and f.name not in present]
    if missing:
        names = ", ".join(f.name for f in missing)
        checks.append(C(f"{frame}.required_columns", frame, gxe.ExpectTableColumnsToMatchSet(
            column_set=[f.name for f in missing], exact_match=False,
            description=f"{table} 有全部必填列 / required columns exist"),
            lambda: [f"{table} 缺少必填列 {names} / {table} lacks required columns {names}"]))
    for kind, has in kinds.items():
        if not has:
            continue
        desc, zh, en = PROBLEMS[kind]

        def describe(kind=kind, zh=zh, en=en):
            n, ex = _examples(data.column(kind))
            return [f"{table} 有 {n} 行{zh}（{ex}）/ {table}: {n} rows with {en}: {ex}"]
        checks.append(C(f"{frame}.{kind}", frame, gxe.ExpectColumnValuesToBeNull(
            column=kind, description=f"{table}: {desc}"), describe))
    return checks


# ------------------------------------------------------------------------------ quarantined relations

def _quarantined(lake: Lake, load_id: str) -> dict[str, set[str]]:
    """Ids of records whose related rows were quarantined in this load: setl_id and mdtrt_id of fee lines,
    mdtrt_id of visits."""
    out: dict[str, set[str]] = {"fee_setl": set(), "fee_mdtrt": set(), "mdtrt": set()}
    if not lake.exists("quarantine"):
        return out
    import pyarrow.dataset as pads
    q = lake.read("quarantine", columns=["entity", "raw_row"],
                  filter=(pads.field("load_id") == load_id) & pads.field("entity").isin(["fee_list", "mdtrt"]))
    maps = {e: contract.header_map(e) for e in ("fee_list", "mdtrt")}
    for ent, raw in zip(q.column("entity").to_pylist(), q.column("raw_row").to_pylist()):
        try:
            row = json.loads(raw or "{}")
        except ValueError:
            continue
        canon = {}
        for k, v in row.items():
            name = maps[ent].get(re.sub(r"\s+", "", str(k)).lstrip("\ufeff").lower(), k)
            if v not in (None, ""):
                canon.setdefault(name, str(v).strip())
        if ent == "fee_list":
            if canon.get("setl_id"):
                out["fee_setl"].add(canon["setl_id"])
            if canon.get("mdtrt_id"):
                out["fee_mdtrt"].add(canon["mdtrt_id"])
        elif canon.get("mdtrt_id"):
            out["mdtrt"].add(canon["mdtrt_id"])
    return out


CROSS_FEE_SQL = """
SELECT f.mdtrt_id, f.feedetl_sn,
       CASE WHEN m.mdtrt_id IS NULL AND f.mdtrt_id NOT IN (SELECT id FROM q_mdtrt) THEN f.mdtrt_id END AS unknown_visit,
       CASE WHEN m.mdtrt_id IS NULL AND f.mdtrt_id IN (SELECT id FROM q_mdtrt) THEN f.mdtrt_id END AS quarantined_visit
FROM fee f LEFT JOIN (SELECT DISTINCT mdtrt_id FROM mdtrt) m USING (mdtrt_id)
"""

SETTLEMENT_SQL = f"""
WITH net AS (SELECT setl_id, sum(det_item_fee_sumamt) AS total, count(*) AS n FROM net_lines
             WHERE setl_id IS NOT NULL GROUP BY ALL),
raw AS (SELECT setl_id, sum(det_item_fee_sumamt) AS total, count(*) AS n FROM raw_lines
        WHERE setl_id IS NOT NULL GROUP BY ALL),
s AS (
    SELECT s.setl_id, s.mdtrt_id, CAST(s.medfee_sumamt AS DOUBLE) AS medfee_sumamt,
           CAST(coalesce(net.total, 0) AS DOUBLE) AS lines_total, CAST(raw.total AS DOUBLE) AS raw_total,
           coalesce(net.n, 0) + coalesce(raw.n, 0) AS n_lines,
           (s.setl_id IN (SELECT id FROM q_setl) OR s.mdtrt_id IN (SELECT id FROM q_fee_mdtrt)) AS quarantined
    FROM setl s LEFT JOIN net USING (setl_id) LEFT JOIN raw USING (setl_id))
SELECT setl_id, mdtrt_id, medfee_sumamt, lines_total,
       CAST(medfee_sumamt - lines_total AS DOUBLE) AS difference,
       CASE WHEN NOT quarantined AND n_lines > 0
             AND abs(medfee_sumamt - lines_total) > {TOLERANCE} + 1e-9
             AND NOT coalesce(abs(medfee_sumamt - raw_total) <= {TOLERANCE} + 1e-9, false)
            THEN setl_id END AS total_mismatch,
       CASE WHEN quarantined THEN setl_id END AS incomplete_settlement,
       CASE WHEN NOT quarantined AND n_lines = 0 THEN setl_id END AS without_lines
FROM s ORDER BY setl_id
"""


def _ids(values, limit: int = 10) -> str:
    values = sorted(set(values))
    return ", ".join(values[:limit]) + (f" … (+{len(values) - limit})" if len(values) > limit else "")


def validate_silver(lake: Lake, before_versions: dict[str, int | None], load_id: str,
                    report_dir: Path | None = None) -> SuiteResult:
    """Validate the silver tables a load changed (all when `before_versions` is empty)."""
    changed = _changed(lake, before_versions or {})
    if report_dir is None:
        report_dir = lake.folder("reports", "silver", re.sub(r"[^A-Za-z0-9_.-]", "_", load_id) or "load")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    frames: dict[str, pa.Table] = {}
    checks: list[qgx.Check] = []
    for table in changed:
        entity = contract.ENTITIES[_entity(table)]
        ds = lake.dataset(table)
        cols = set(ds.schema.names)
        con.register("t", ds)
        sql, kinds = _frame_sql(cols, entity)
        if not set(entity.key) <= cols:
            sql, kinds = "SELECT CAST(NULL AS VARCHAR) AS _key FROM t LIMIT 1", {}
        data = con.sql(sql).to_arrow_table()
        con.unregister("t")
        frame = table.replace("/", ".")
        frames[frame] = data
        checks += _entity_checks(table, frame, entity, kinds, data, cols)

    quarantined = _quarantined(lake, load_id)
    con.register("q_setl", pa.table({"id": pa.array(sorted(quarantined["fee_setl"]), pa.string())}))
    con.register("q_fee_mdtrt", pa.table({"id": pa.array(sorted(quarantined["fee_mdtrt"]), pa.string())}))
    con.register("q_mdtrt", pa.table({"id": pa.array(sorted(quarantined["mdtrt"]), pa.string())}))
    gxe = qgx.expectations()
    C = qgx.Check

    if ({"silver/fee_list", "silver/mdtrt"} & set(changed)) and lake.exists("silver/fee_list") \
            and lake.exists("silver/mdtrt"):
        con.register("fee", lake.dataset("silver/fee_list"))
        con.register("mdtrt", lake.dataset("silver/mdtrt"))
        visits = con.sql(f"SELECT * FROM ({CROSS_FEE_SQL}) WHERE unknown_visit IS NOT NULL "
                         f"OR quarantined_visit IS NOT NULL").to_arrow_table()
        frames["fee_list_visits"] = visits
        checks += [
            C("fee_list.known_visit", "fee_list_visits", gxe.ExpectColumnValuesToBeNull(
                column="unknown_visit", description="费用明细指向已入湖的就诊 / fee lines refer to known visits "
                                                    "(silver/fee_list mdtrt_id in silver/mdtrt)"),
              lambda: [f"silver/fee_list 有 {len(v)} 个就诊ID 不在 silver/mdtrt 中：{_ids(v)} / silver/fee_list: "
                       f"{len(v)} mdtrt_id not in silver/mdtrt: {_ids(v)}"
                       for v in [visits.column("unknown_visit").drop_null().to_pylist()]]),
            C("fee_list.quarantined_visit", "fee_list_visits", gxe.ExpectColumnValuesToBeNull(
                column="quarantined_visit", description="就诊被隔离的明细（不完整）/ lines of a quarantined visit"),
              lambda: [f"就诊不完整：就诊 {_ids(v)} 被隔离，其费用明细已入湖 / incomplete visit: visits {_ids(v)} "
                       f"were quarantined in load {load_id}, their fee lines are loaded"
                       for v in [visits.column("quarantined_visit").drop_null().to_pylist()]],
              severity="warning"),
        ]

    if ({"silver/setl", NET, "silver/fee_list"} & set(changed)) and lake.exists("silver/setl") \
            and lake.exists(NET):
        con.register("setl", lake.dataset("silver/setl"))
        con.register("net_lines", lake.dataset(NET))
        con.register("raw_lines", lake.dataset("silver/fee_list") if lake.exists("silver/fee_list")
                     else lake.dataset(NET).schema.empty_table())
        setl = con.sql(f"SELECT * FROM ({SETTLEMENT_SQL}) WHERE total_mismatch IS NOT NULL "
                       f"OR incomplete_settlement IS NOT NULL OR without_lines IS NOT NULL").to_arrow_table()
        frames["settlements"] = setl
        rows = setl.to_pylist()
        checks += [
            C("setl.total_matches_lines", "settlements", gxe.ExpectColumnValuesToBeNull(
                column="total_mismatch", description="结算医疗费总额 = 净额明细合计（±0.01）/ settlement "
                                                     "medfee_sumamt equals the sum of its netted fee lines (±0.01)"),
              lambda: [f"结算 {r['setl_id']} 医疗费总额 {r['medfee_sumamt']:.2f} 与明细合计 {r['lines_total']:.2f} "
                       f"不符（差 {r['difference']:.2f}）/ settlement {r['setl_id']}: medfee_sumamt "
                       f"{r['medfee_sumamt']:.2f} vs netted lines {r['lines_total']:.2f}"
                       for r in rows if r["total_mismatch"]][:20]),
            C("setl.incomplete", "settlements", gxe.ExpectColumnValuesToBeNull(
                column="incomplete_settlement", description="部分明细被隔离的结算（不完整）/ settlements with "
                                                            "quarantined fee lines (incomplete)"),
              lambda: [f"结算不完整 incomplete settlement {r['setl_id']}（就诊 {r['mdtrt_id']}）：本次入湖 {load_id} "
                       f"有明细被隔离，医疗费总额 {r['medfee_sumamt']:.2f}，已入湖明细合计 {r['lines_total']:.2f} / "
                       f"some of its fee lines were quarantined" for r in rows if r["incomplete_settlement"]],
              severity="warning"),
            C("setl.has_lines", "settlements", gxe.ExpectColumnValuesToBeNull(
                column="without_lines", description="结算有费用明细 / settlements have fee lines"),
              lambda: [f"{len(v)} 个结算没有费用明细：{_ids(v)} / {len(v)} settlements without fee lines: {_ids(v)}"
                       for v in [[r["setl_id"] for r in rows if r["without_lines"]]]],
              severity="warning"),
        ]
    con.close()
    if not checks:
        return SuiteResult(True, [], [], None, {"silver_expectations": 0})
    run = qgx.run_suite("silver", frames, checks, report_dir)
    failures, warnings = qgx.messages(run, "failure"), qgx.messages(run, "warning")
    results = {"silver_success": int(run.success), "silver_expectations": run.stats["expectations"],
               "silver_failed_expectations": run.stats["failed"], "silver_warnings": run.stats["warned"]}
    return SuiteResult(run.success, failures, warnings, report_dir, results)
