"""The frames the silver suite (`silver_suite.yml`) validates, each kind computed by one pure function
registered in `FRAMES` under the name the suite gives it:
- `entity`: one frame per silver table the load changed, with only the rows at fault (contract §2–3): the
  key as one string (NULL when a key part is missing; a repeated key), and one column per kind of problem
  naming the fields and values at fault: required fields empty, codes outside their code tables
  (`Field.codes`), money beyond ±1e10, times outside 1990-01-01..2100-01-01 (birth dates from 1900-01-01);
- `fee_list_visits`: fee lines whose visit is not in silver/mdtrt (unknown, or quarantined in this load);
- `settlements`: settlements whose medfee_sumamt differs from the sum of their netted fee lines by more
  than 0.01, that have no fee lines, or whose fee lines were partly quarantined in this load.
DuckDB pre-selects the rows at fault, so that Great Expectations validates a frame whose size is the number
of problems, not of records (a 10 M-line load stays in bounded memory). The functions read nothing: the
tables come in `SilverInputs` (read by `silver`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import duckdb
import pyarrow as pa

from pipelines import config, contract
from pipelines.quality.suite import Frame
from pipelines.storage import NativeSnapshot, native_select, sql_ident, sql_literal

FEE, NET, MDTRT, SETL = "silver/fee_list", "silver/fee_list_net", "silver/mdtrt", "silver/setl"
PSN = "silver/psn"
MONEY_LIMIT = 1e10
TOLERANCE = 0.01
PROBLEM_COLUMNS = ("missing_required", "bad_codes", "out_of_range")
#: snapshot files read at once (`_scan`)
BATCH_FILES = 1000


@dataclass(frozen=True)
class SilverInputs:
    """What the silver frames are computed from."""

    changed: list[str]                   # the silver tables the load changed, in order
    tables: Mapping[str, object]         # silver table -> its snapshot's files (`NativeSnapshot`) or an Arrow
    #                                      dataset or table: the changed ones and `tables_read`'s
    quarantined: Mapping[str, set[str]]  # fee_setl, fee_mdtrt, mdtrt -> ids whose rows this load quarantined
    scratch: Path | None = None          # where DuckDB spills (the lake's scratch folder; None: DuckDB's default)


def entity_of(table: str) -> str:
    return "fee_list" if table == NET else table.split("/", 1)[1]


def _connect(scratch: Path | None) -> duckdb.DuckDBPyConnection:
    """A connection within the load's memory limit (the suite runs inside a load: its cross-table frames
    aggregate every changed partition's lines, which at a district-year spill to `scratch` rather than grow)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{config.ingest_memory()}'")
    if scratch is not None:
        con.execute(f"SET temp_directory = {sql_literal(str(scratch))}")
    return con


def _scan(con, data, select: str, into: str) -> None:
    """`select` (a query over `t`) run on `data` part by part, its rows appended to the temporary table
    `into` (created by the first part). A snapshot's files are read natively, `BATCH_FILES` at a time: DuckDB
    keeps every file's footer of a read while it runs, which over a district-year's tens of thousands of files
    alone outgrows the load's memory. Anything else (an Arrow table or dataset) is one part."""
    parts = data.slices(BATCH_FILES) if isinstance(data, NativeSnapshot) else [data]
    parts = parts or [data.schema.empty_table()]
    exists = con.sql(f"SELECT count(*) FROM duckdb_tables() WHERE table_name = {sql_literal(into)}").fetchall()[0][0]
    for part in parts:
        if isinstance(part, NativeSnapshot):
            con.execute(f"CREATE OR REPLACE TEMP VIEW t AS {native_select(part)}")
        else:
            con.register("t_arrow", part)
            con.execute("CREATE OR REPLACE TEMP VIEW t AS SELECT * FROM t_arrow")
        con.execute(f"INSERT INTO {into} {select}" if exists else f"CREATE TEMP TABLE {into} AS {select}")
        exists = True


def _ids(con, name: str, ids) -> None:
    con.register(name, pa.table({"id": pa.array(sorted(ids), pa.string())}))


# ------------------------------------------------------------------------------------ one table

def _problems(parts: list[str]) -> str:
    return f"nullif(concat_ws('; ', {', '.join(parts)}), '')" if parts else "CAST(NULL AS VARCHAR)"


def _field_problems(table_cols: set[str], entity: contract.Entity) -> dict[str, list[str]]:
    """Per kind of problem, one SQL expression per field naming the field (and value) at fault."""
    out: dict[str, list[str]] = {k: [] for k in PROBLEM_COLUMNS}
    for f in entity.fields:
        if f.pii or f.name not in table_cols:
            continue
        c, at_fault = sql_ident(f.name), sql_literal(f.name + "=")
        if f.required and f.name not in entity.key:
            out["missing_required"].append(f"CASE WHEN {c} IS NULL THEN {sql_literal(f.name)} END")
        if f.codes:
            out["bad_codes"].append(f"CASE WHEN {c} IS NOT NULL AND {c} NOT IN "
                                    f"({', '.join(sql_literal(v) for v in f.codes)}) THEN {at_fault} || {c} END")
        if f.type == contract.MONEY:
            out["out_of_range"].append(f"CASE WHEN abs({c}) > {MONEY_LIMIT:.0f} THEN {at_fault} || "
                                       f"CAST({c} AS VARCHAR) END")
        if f.type in (contract.TS, contract.DATE):
            low, high = contract.time_bounds(f.name)
            out["out_of_range"].append(f"CASE WHEN {c} < TIMESTAMP '{low:%Y-%m-%d}' OR {c} > TIMESTAMP "
                                       f"'{high:%Y-%m-%d}' THEN {at_fault} || CAST({c} AS VARCHAR) END")
    return out


def frame_sql(table_cols: set[str], entity: contract.Entity) -> tuple[str, str, dict[str, bool]]:
    """Over a table `t`: the SQL of one row per record (`_key`, then one column per kind of problem, NULL when
    the row is fine), the condition of a row at fault by itself (a null key or a problem), and which kinds of
    problem the table's fields can have."""
    # an optional key part (inv_movement's batch_no) may be null: null matches null, as the upsert does
    key_parts = " || '|' || ".join(f"CAST({sql_ident(k)} AS VARCHAR)" if entity.field(k).required
                                   else f"coalesce(CAST({sql_ident(k)} AS VARCHAR), '')" for k in entity.key)
    key_null = " OR ".join(f"{sql_ident(k)} IS NULL" for k in entity.key if entity.field(k).required) or "false"
    problems = _field_problems(table_cols, entity)
    rows = (f"SELECT CASE WHEN {key_null} THEN NULL ELSE {key_parts} END AS _key, "
            + ", ".join(f"{_problems(problems[k])} AS {k}" for k in PROBLEM_COLUMNS) + " FROM t")
    at_fault = "_key IS NULL OR " + " OR ".join(f"{c} IS NOT NULL" for c in PROBLEM_COLUMNS)
    return rows, at_fault, {k: bool(problems[k]) for k in PROBLEM_COLUMNS}


def offending_rows(con, data, rows: str, at_fault: str) -> pa.Table:
    """The rows at fault of `data` (`rows` over `t`): at fault by themselves, or sharing their `_key` with
    another row. Read in batches (`_scan`): each batch's faulty rows and the hashes of its keys are kept;
    the rows of a hash seen twice (rare: a repeated key, or a collision) are read again and compared by key."""
    _scan(con, data, f"SELECT * FROM ({rows}) WHERE {at_fault}", "faults")
    _scan(con, data, f"SELECT hash(_key) AS h FROM ({rows}) WHERE _key IS NOT NULL", "key_hashes")
    con.execute("CREATE TEMP TABLE twice AS SELECT h FROM key_hashes GROUP BY h HAVING count(*) > 1")
    con.execute("DROP TABLE key_hashes")
    if con.sql("SELECT count(*) FROM twice").fetchall()[0][0]:
        _scan(con, data, f"SELECT * FROM ({rows}) WHERE NOT ({at_fault}) AND hash(_key) IN (SELECT h FROM twice)",
              "faults")
    return con.sql(f"SELECT * FROM faults WHERE {at_fault} OR _key IN (SELECT _key FROM faults "
                   f"WHERE _key IS NOT NULL GROUP BY _key HAVING count(*) > 1) ORDER BY _key").to_arrow_table()


def entity_frame(table: str, data, scratch: Path | None = None) -> Frame:
    """The rows at fault of one silver table, with the parameters its checks need."""
    entity = contract.ENTITIES[entity_of(table)]
    cols = set(data.schema.names)
    missing = [f.name for f in entity.fields if f.required and not f.pii and f.name not in cols]
    params = {"table": table, "keys": "(" + ", ".join(entity.key) + ")", "missing_required_columns": missing,
              "required_names": ", ".join(missing)}
    sql, at_fault, kinds = frame_sql(cols, entity)
    con = _connect(scratch)
    try:
        if set(entity.key) <= cols:
            rows = offending_rows(con, data, sql, at_fault)
        else:                                 # no key column: a null key, if the table has a row
            kinds = {}
            _scan(con, data, "SELECT CAST(NULL AS VARCHAR) AS _key FROM t LIMIT 1", "faults")
            rows = con.sql("SELECT * FROM faults LIMIT 1").to_arrow_table()
    finally:
        con.close()
    return Frame("entity", table.replace("/", "."), rows, {**params, **{k: kinds.get(k, False) for k in PROBLEM_COLUMNS}})


def entity_frames(inputs: SilverInputs) -> list[Frame]:
    return [entity_frame(table, inputs.tables[table], inputs.scratch) for table in inputs.changed]


# ------------------------------------------------------------------------------------ across tables

def _visits_apply(changed, tables) -> bool:
    return bool({FEE, MDTRT} & set(changed)) and {FEE, MDTRT} <= set(tables)


def _persons_apply(changed, tables) -> bool:
    return MDTRT in changed and MDTRT in tables


def _settlements_apply(changed, tables) -> bool:
    return bool({SETL, NET, FEE} & set(changed)) and {SETL, NET} <= set(tables)


def tables_read(changed: list[str], existing: set[str]) -> list[str]:
    """The silver tables the frames read: the changed ones, and those the cross-table checks need."""
    out = list(changed)
    if _visits_apply(changed, existing):
        out += [FEE, MDTRT]
    if _persons_apply(changed, existing):
        out += [MDTRT] + ([PSN] if PSN in existing else [])
    if _settlements_apply(changed, existing):
        out += [SETL, NET] + ([FEE] if FEE in existing else [])
    return list(dict.fromkeys(out))


#: a fee line without setl_id (optional) belongs to its visit's settlement when the visit has exactly one;
#: `net_parts`/`raw_parts` hold per-batch sums by setl_id (by mdtrt_id for lines without one)
SETTLEMENT_SQL = f"""
WITH one AS (SELECT mdtrt_id, any_value(setl_id) AS only_setl FROM setl GROUP BY mdtrt_id HAVING count(*) = 1),
net AS (SELECT coalesce(l.setl_id, o.only_setl) AS setl_id, sum(l.total) AS total, sum(l.n) AS n
        FROM net_parts l LEFT JOIN one o ON l.setl_id IS NULL AND l.mdtrt_id = o.mdtrt_id
        WHERE coalesce(l.setl_id, o.only_setl) IS NOT NULL GROUP BY ALL),
raw AS (SELECT coalesce(l.setl_id, o.only_setl) AS setl_id, sum(l.total) AS total, sum(l.n) AS n
        FROM raw_parts l LEFT JOIN one o ON l.setl_id IS NULL AND l.mdtrt_id = o.mdtrt_id
        WHERE coalesce(l.setl_id, o.only_setl) IS NOT NULL GROUP BY ALL),
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
LINE_SUMS = ("SELECT setl_id, CASE WHEN setl_id IS NULL THEN mdtrt_id END AS mdtrt_id, "
             "sum(det_item_fee_sumamt) AS total, count(*) AS n FROM t GROUP BY ALL")


def visit_frames(inputs: SilverInputs) -> list[Frame]:
    """Fee lines of a visit silver/mdtrt lacks (when the load changed fee lines or visits): the visits the
    fee lines name, less those silver/mdtrt holds, then the lines of what is left."""
    if not _visits_apply(inputs.changed, inputs.tables):
        return []
    con = _connect(inputs.scratch)
    try:
        fee = inputs.tables[FEE]
        _scan(con, inputs.tables[MDTRT], "SELECT DISTINCT mdtrt_id FROM t", "known")
        _scan(con, fee, "SELECT DISTINCT mdtrt_id FROM t", "named")
        con.execute("CREATE TEMP TABLE lacking AS SELECT DISTINCT mdtrt_id FROM named "
                    "WHERE mdtrt_id NOT IN (SELECT mdtrt_id FROM known WHERE mdtrt_id IS NOT NULL)")
        _ids(con, "q_mdtrt", inputs.quarantined["mdtrt"])
        lines = ("SELECT mdtrt_id, feedetl_sn, CASE WHEN mdtrt_id NOT IN (SELECT id FROM q_mdtrt) THEN mdtrt_id END "
                 "AS unknown_visit, CASE WHEN mdtrt_id IN (SELECT id FROM q_mdtrt) THEN mdtrt_id END AS "
                 "quarantined_visit FROM t WHERE mdtrt_id IN (SELECT mdtrt_id FROM lacking)")
        lacking = con.sql("SELECT count(*) FROM lacking").fetchall()[0][0]
        _scan(con, fee if lacking else fee.schema.empty_table(), lines, "out")  # usually no line is read again
        rows = con.sql("SELECT * FROM out ORDER BY mdtrt_id, feedetl_sn").to_arrow_table()
    finally:
        con.close()
    return [Frame("fee_list_visits", "fee_list_visits", rows)]


def person_frames(inputs: SilverInputs) -> list[Frame]:
    """Visits whose person this load quarantined and silver/psn lacks (when the load changed visits): loaded,
    reported as incomplete (contract §1)."""
    if not _persons_apply(inputs.changed, inputs.tables):
        return []
    q = inputs.quarantined.get("psn") or set()
    con = _connect(inputs.scratch)
    try:
        _ids(con, "q_psn", q)
        known = "SELECT NULL::VARCHAR AS psn_no WHERE false"
        if PSN in inputs.tables:
            _scan(con, inputs.tables[PSN], "SELECT psn_no FROM t WHERE psn_no IN (SELECT id FROM q_psn)", "psn")
            known = "SELECT psn_no FROM psn"
        _scan(con, inputs.tables[MDTRT], f"SELECT mdtrt_id, psn_no AS quarantined_person FROM t WHERE psn_no IN "
                                         f"(SELECT id FROM q_psn) AND psn_no NOT IN ({known})", "out")
        rows = con.sql("SELECT * FROM out ORDER BY mdtrt_id").to_arrow_table()
    finally:
        con.close()
    return [Frame("visit_persons", "visit_persons", rows)]


def settlement_frames(inputs: SilverInputs) -> list[Frame]:
    """Settlements at odds with their fee lines (when the load changed settlements or fee lines)."""
    if not _settlements_apply(inputs.changed, inputs.tables):
        return []
    con = _connect(inputs.scratch)
    try:
        _scan(con, inputs.tables[SETL], "SELECT setl_id, mdtrt_id, medfee_sumamt FROM t", "setl")
        _scan(con, inputs.tables[NET], LINE_SUMS, "net_parts")
        raw = inputs.tables[FEE] if FEE in inputs.tables else inputs.tables[NET].schema.empty_table()
        _scan(con, raw, LINE_SUMS, "raw_parts")
        _ids(con, "q_setl", inputs.quarantined["fee_setl"])
        _ids(con, "q_fee_mdtrt", inputs.quarantined["fee_mdtrt"])
        rows = con.sql(f"SELECT * FROM ({SETTLEMENT_SQL}) WHERE total_mismatch IS NOT NULL "
                       f"OR incomplete_settlement IS NOT NULL OR without_lines IS NOT NULL").to_arrow_table()
    finally:
        con.close()
    return [Frame("settlements", "settlements", rows)]


#: the frames the silver suite can name
FRAMES: dict[str, Callable[[SilverInputs], list[Frame]]] = {
    "entity": entity_frames, "fee_list_visits": visit_frames, "settlements": settlement_frames,
    "visit_persons": person_frames}
