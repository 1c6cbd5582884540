"""Pure transformations of ingestion: SQL text built from the contract, run on DuckDB over Arrow.

Nothing here reads files, writes tables or reads a clock: functions take a DuckDB connection plus
relations/Arrow tables (or return SQL text) and return Arrow.
"""
from __future__ import annotations

import json
from typing import Iterable, Sequence

import duckdb
import pyarrow as pa

from pipelines import contract
from pipelines.contract import CNT, CODE2, DATE, DEC, INT, MONEY, PRIC, SQL_TYPES, TS
from pipelines.contract.pii import pii_hash, pii_hash_sql
from pipelines.storage import sql_ident, sql_literal

#: contract §1 time formats first, then a few more the project also accepts (DuckDB strptime notation).
TIME_FORMATS = (*contract.TIME_FORMATS, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M",
                "%Y/%m/%d %H:%M:%S", "%Y/%m/%d", "%Y%m%d")
LINEAGE = ("_drop", "_file", "_line")

_TYPE_REASON = {
    MONEY: ("not a number", "不是数字"),          # after the field's label: 明细项目费用总额不是数字
    PRIC: ("not a number", "不是数字"),
    CNT: ("not a number", "不是数字"),
    DEC: ("not a number", "不是数字"),
    INT: ("not an integer", "不是整数"),
    TS: ("not a valid time", "格式无法识别"),
    DATE: ("not a valid date", "格式无法识别"),
}


def silver_columns(entity: str) -> list[str]:
    """Column order of silver/<entity>: fields (PII as `<name>_hash`), `period`, `period_year`, lineage."""
    ent = contract.ENTITIES[entity]
    cols = [f"{f.name}_hash" if f.pii else f.name for f in ent.fields]
    if ent.period_from:
        cols += ["period", contract.PERIOD_YEAR]
    return [*cols, *LINEAGE]


def data_columns(entity: str) -> list[str]:
    """Silver columns that carry the record (what 'an identical row' compares)."""
    return [c for c in silver_columns(entity) if c not in LINEAGE and c not in ("period", contract.PERIOD_YEAR)]


def _typed_expr(f: contract.Field, v: str, maps: dict[str, str] | None) -> str:
    fmts = "[" + ", ".join(sql_literal(x) for x in TIME_FORMATS) + "]"
    # the list is tried in order, so trying its first (the canonical) format alone first changes no result;
    # it only spares the list's overhead on the common case
    ts = f"coalesce(try_strptime({v}, {sql_literal(TIME_FORMATS[0])}), try_strptime({v}, {fmts}))"
    if f.type == TS:
        return ts
    if f.type == DATE:
        return f"CAST({ts} AS DATE)"
    if f.type in SCALE:
        # the numeral normalised in CTE `num` (`_n_<field>`); never cast with more decimals than the field holds
        n = sql_ident("_n_" + f.name)
        return f"CASE WHEN {_decimals_fit(n, SCALE[f.type])} THEN TRY_CAST({n} AS {SQL_TYPES[f.type]}) END"
    if f.type == INT:
        # DuckDB casts '1.5' to BIGINT 2: only an integral numeral ('3', '3.0', '3e0') is an integer
        return (f"CASE WHEN TRY_CAST({v} AS DOUBLE) = floor(TRY_CAST({v} AS DOUBLE)) THEN "
                f"coalesce(TRY_CAST({v} AS BIGINT), TRY_CAST(TRY_CAST({v} AS DOUBLE) AS BIGINT)) END")
    expr = v
    if maps:
        whens = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(val)}" for k, val in maps.items())
        expr = f"CASE {v} {whens} ELSE {v} END"
    if f.codes and all(c.isalpha() and c.islower() for c in f.codes):
        expr = f"lower({expr})"
    if f.type == CODE2:
        expr = f"CASE WHEN regexp_full_match({expr}, '[0-9]') THEN '0' || {expr} ELSE {expr} END"
    return expr


#: decimals each numeric type holds (contract §1: money 2, pric 6, cnt 4)
SCALE = {MONEY: 2, PRIC: 6, CNT: 4, DEC: 6}


def numeral_sql(v: str, decimal: str = ".") -> str:
    """A numeral as plain text (`.` decimal point, no grouping), or NULL when it cannot be read without
    guessing. decimal ".": `1,234.50` (groups of three) reads, `12,80` or `1.234,50` does not; decimal ","
    (declared by the drop's manifest): `12,80` and `1.234,50` read, `12.5` does not. An exponent never reads."""
    if decimal == ",":
        return (f"CASE WHEN regexp_full_match({v}, '[+-]?([0-9]+|[0-9]{{1,3}}([.][0-9]{{3}})+)(,[0-9]*)?') "
                f"THEN replace(replace({v}, '.', ''), ',', '.') END")
    return (f"CASE WHEN contains({v}, 'e') OR contains({v}, 'E') THEN NULL WHEN NOT contains({v}, ',') THEN {v} "
            f"WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,3}}(,[0-9]{{3}})+([.][0-9]*)?') THEN replace({v}, ',', '') END")


def _decimals_fit(n: str, scale: int) -> str:
    """The normalised numeral `n` has at most `scale` decimals (trailing zeros aside)."""
    return f"(strpos({n}, '.') = 0 OR length(rtrim({n}, '0')) - strpos({n}, '.') <= {scale})"


def _blank_to_null(v: str) -> str:
    """`nullif(trim(v), '')`: only a value with a space at either end is trimmed (trimming every value costs
    about twice as much as the test, and almost none has one)."""
    return f"CASE WHEN starts_with({v}, ' ') OR ends_with({v}, ' ') THEN nullif(trim({v}), '') ELSE nullif({v}, '') END"


def typing_sql(entity: str, source: str, salt: str, drop: str, file: str, ord_: int, checks: str = "report",
               decimal: str = ".", per_field: bool = False) -> str:
    """SELECT that types one batch of bronze strings (`source`) into silver columns + `_err`, `_errf`.

    `_err` is '' for a good row, else every reason joined by '; ' ("field: english / 中文");
    `_errf` names the failing fields. PII fields come out only as their keyed hash (HMAC-SHA256 under `salt`, the PII key: `<name>_hash`).
    Each value is typed once (CTE `typed`), then checked. `checks` = "report": every row with `_err` and
    `_errf`; "none": every row, unchecked, in the silver columns (where only some typed columns are read,
    e.g. keys). (A plain predicate instead of `_err = ''` is slower: DuckDB pushes it below the projection
    and types the values twice.) `decimal`: the drop's decimal mark (`numeral_sql`). `per_field`: also `_errs`, one
    {field, msg} per failing field (the claim-time service's; a value may hold '; ', so `_err` can't be split)."""
    if checks not in ("report", "none"):
        raise ValueError(checks)
    ent = contract.ENTITIES[entity]
    pre = ", ".join(f"{_blank_to_null(sql_ident(f.name))} AS {sql_ident(f.name)}" for f in ent.fields)
    typed_cols, sel, errs = [], [], []
    for f in ent.fields:
        v = sql_ident(f.name)
        expr = _typed_expr(f, v, ent.value_maps.get(f.name))
        t = v
        if expr != v:
            t = sql_ident("_t_" + f.name)
            typed_cols.append(f"{expr} AS {t}")
        if f.pii:
            sel.append(f"CASE WHEN {v} IS NULL THEN NULL ELSE {pii_hash_sql(salt, v)} END AS {sql_ident(f.name + '_hash')}")
        else:
            sel.append(f"{t} AS {sql_ident(f.name)}")
        whens = _checks(f, v, t)
        if whens:
            errs.append((f.name, "CASE " + " ".join(f"WHEN {c} THEN {m}" for c, m in whens) + " END"))
    if ent.period_from:
        pf = ent.field(ent.period_from)
        src = sql_ident("_t_" + pf.name) if pf.type in (TS, DATE) else sql_ident(pf.name)
        sel.append(f"strftime({src}, '%Y-%m') AS period")
        sel.append(f"strftime({src}, '%Y') AS {contract.PERIOD_YEAR}")
    sel += [f"{sql_literal(drop)} AS _drop", f"{sql_literal(file)} AS _file", "_line", f"{int(ord_)} AS _ord"]
    err_cols = ", ".join(f"{e} AS {sql_ident('_e_' + n)}" for n, e in errs) or "NULL AS _e_none"
    names = [sql_ident("_e_" + n) for n, _ in errs] or ["_e_none"]
    errf = ", ".join(f"CASE WHEN {c} IS NOT NULL THEN {sql_literal(n)} END" for (n, _), c in zip(errs, names))
    typed = ", ".join(typed_cols)
    head = _typing_head(ent, pre, typed, source, decimal)
    if checks == "none":
        return f"{head} SELECT {', '.join(sel)} FROM typed"
    return (f"{head}, "
            f"chk AS (SELECT *, {err_cols} FROM typed) "
            f"SELECT {', '.join(sel)}, concat_ws('; ', {', '.join(names)}) AS _err, "
            f"concat_ws(',', {errf or 'NULL'}) AS _errf{_per_field(errs, names) if per_field else ''} FROM chk")


def _per_field(errs: list[tuple[str, str]], names: list[str]) -> str:
    """`_errs`: the failing fields' {field, msg}, in field order (NULL entries for fields that are fine)."""
    items = ", ".join(f"CASE WHEN {c} IS NOT NULL THEN struct_pack(field := {sql_literal(n)}, msg := {c}) END"
                      for (n, _), c in zip(errs, names))
    return f", list_value({items}) AS _errs"        # every entity has a required field: never empty


def _checks(f: contract.Field, v: str, t: str) -> list[tuple[str, str]]:
    """(condition, message) of each way the raw value `v` of field `f`, typed `t`, can be bad."""
    quote, label = "''''", f.label or f.name

    def says(en: str, zh: str) -> str:     # "cnt: not a number 'abc' / 数量不是数字"
        return f"{sql_literal(f'{f.name}: {en} ')} || {quote} || {v} || {quote} || {sql_literal(f' / {label}{zh}')}"
    whens = []
    if f.required:
        whens.append((f"{v} IS NULL", sql_literal(f"{f.name}: required field missing / 必填字段缺失")))
    if f.type in SCALE:
        whens += _numeral_checks(f, v)
    if f.type in _TYPE_REASON:
        whens.append((f"{v} IS NOT NULL AND {t} IS NULL", says(*_TYPE_REASON[f.type])))
    if f.codes:
        codes = ", ".join(sql_literal(c) for c in f.codes)
        whens.append((f"{v} IS NOT NULL AND {t} NOT IN ({codes})", says("unknown code", "未知代码")))
    if f.pattern:
        whens.append((f"{v} IS NOT NULL AND NOT regexp_full_match({t}, {sql_literal(f.pattern[0])})",
                      says(f"not {f.pattern[1]}", "代码格式不符")))
    return whens


def _typing_head(ent: contract.Entity, pre: str, typed: str, source: str, decimal: str) -> str:
    """The CTEs of `typing_sql`: `pre` (blanks as NULL), `num` (numerals normalised), `typed`."""
    nums = ", ".join(f"{numeral_sql(sql_ident(f.name), decimal)} AS {sql_ident('_n_' + f.name)}"
                     for f in ent.fields if f.type in SCALE)
    return (f"WITH pre AS (SELECT {pre}, _line FROM {source}), num AS (SELECT *{', ' + nums if nums else ''} "
            f"FROM pre), typed AS (SELECT *{', ' + typed if typed else ''} FROM num)")


def _numeral_checks(f: contract.Field, v: str) -> list[tuple[str, str]]:
    """(condition, message) of a numeral that is ambiguous or has more decimals than the field holds."""
    n, q, label = sql_ident("_n_" + f.name), "''''", f.label or f.name
    hint = (" (decimal comma or mixed separators; a drop that uses a decimal comma declares decimal: \",\" "
            f"in its manifest.yml) / {label}数字格式有歧义(小数点/千分位不明)")
    return [
        (f"{v} IS NOT NULL AND {n} IS NULL AND regexp_full_match({v}, '[+-]?[0-9.,]+')",
         f"{sql_literal(f.name + ': ambiguous numeral ')} || {q} || {v} || {q} || {sql_literal(hint)}"),
        (f"{n} IS NOT NULL AND NOT {_decimals_fit(n, SCALE[f.type])}",
         f"{sql_literal(f.name + ': more decimals than the field holds (' + str(SCALE[f.type]) + ') ')} || {q} || "
         f"{v} || {q} || {sql_literal(' / ' + label + '小数位数超出字段精度')}"),
    ]


def _key_join(keys: Sequence[str], a: str, b: str) -> str:
    return " AND ".join(f"{a}.{sql_ident(k)} IS NOT DISTINCT FROM {b}.{sql_ident(k)}" for k in keys)


def dup_keys_sql(entity: str, keys: str, part: str = "TRUE") -> str:
    """The keys that `keys` (a SELECT of an entity's key columns) holds more than once, among those of `part`
    (`key_part`)."""
    kc = ", ".join(sql_ident(k) for k in contract.ENTITIES[entity].key)
    return f"SELECT {kc} FROM ({keys}) WHERE {part} GROUP BY {kc} HAVING count(*) > 1"


def key_parts(entity: str, passes: int) -> list[str]:
    """Predicates splitting an entity's rows by a hash of the key into `passes` parts: every copy of a key is
    in the same part, so keys sent twice are found part by part."""
    if passes <= 1:
        return ["TRUE"]
    kc = ", ".join(sql_ident(k) for k in contract.ENTITIES[entity].key)
    return [f"hash({kc}) % {passes} = {i}" for i in range(passes)]


def dedup_sql(entity: str, staged: str) -> dict[str, str]:
    """SQL over a staged table (silver columns + `_ord`, `_h` row hash) of one entity in one drop.

    - `groups`: keys sent more than once, with whether all copies are identical;
    - `conflicts`: every row of a key sent with different values (to quarantine);
    - `rows`: one row per key (identical copies count once), conflicting keys left out.
    """
    keys = contract.ENTITIES[entity].key
    kc = ", ".join(sql_ident(k) for k in keys)
    groups = (f"SELECT {kc}, count(*) AS n, min(_h) = max(_h) AS same FROM {staged} "
              f"GROUP BY {kc} HAVING count(*) > 1")
    cols = ", ".join(sql_ident(c) for c in silver_columns(entity))
    return {
        "groups": groups,
        "conflicts": (f"SELECT s._file, s._line, s._ord, {', '.join('s.' + sql_ident(k) for k in keys)} FROM {staged} s "
                      f"SEMI JOIN (SELECT * FROM _groups WHERE NOT same) g ON {_key_join(keys, 's', 'g')}"),
        "rows": (f"SELECT {cols} FROM {staged} s ANTI JOIN _groups g ON {_key_join(keys, 's', 'g')} "
                 f"UNION ALL SELECT {cols} FROM (SELECT s.* FROM {staged} s "
                 f"SEMI JOIN (SELECT * FROM _groups WHERE same) g ON {_key_join(keys, 's', 'g')} "
                 f"QUALIFY row_number() OVER (PARTITION BY {', '.join('s.' + sql_ident(k) for k in keys)} "
                 f"ORDER BY s._ord, s._line) = 1)"),
    }


def row_hash_sql(entity: str) -> str:
    return "hash(" + ", ".join(sql_ident(c) for c in data_columns(entity)) + ")"


# ---------------------------------------------------------------- refund netting (contract §4)

#: Refund netting over `lines` (silver/fee_list columns). A refund is a line with a negative cnt or
#: det_item_fee_sumamt. It cancels its cnt and amounts from the positive line named by init_feedetl_sn
#: (same mdtrt_id); without init_feedetl_sn, from the latest positive line (fee_ocur_time, then
#: feedetl_sn) of the same mdtrt_id, hilist_code and calendar day. A line whose netted cnt is 0 (or
#: below) is gone; refund lines are never in the result. `{out}` selects: `net` (netted lines in the
#: columns of `lines`) or `unmatched` (refunds whose target was not found). DuckDB: the lines are scanned,
#: never materialised (NOT MATERIALIZED); only the small refund/match/adjustment sets are. `matched` and `adj`
#: carry the target line's fixmedins_code, so that one institution's lines can be netted on their own.
NET_SQL = """
WITH lines AS NOT MATERIALIZED (SELECT * FROM {lines}),
refund AS MATERIALIZED ({refund}),
pos AS NOT MATERIALIZED (SELECT * FROM lines WHERE {positive}),
by_sn AS (
    SELECT r.mdtrt_id, r.feedetl_sn AS refund_sn, p.feedetl_sn AS target_sn, p.fixmedins_code
    FROM refund r JOIN pos p ON p.mdtrt_id = r.mdtrt_id AND p.feedetl_sn = r.init_feedetl_sn
    WHERE r.init_feedetl_sn IS NOT NULL),
by_day AS (
    SELECT r.mdtrt_id, r.feedetl_sn AS refund_sn, p.feedetl_sn AS target_sn, p.fixmedins_code
    FROM refund r JOIN pos p
      ON p.mdtrt_id = r.mdtrt_id AND p.hilist_code = r.hilist_code
     AND CAST(p.fee_ocur_time AS DATE) = CAST(r.fee_ocur_time AS DATE)
    WHERE r.init_feedetl_sn IS NULL
    QUALIFY row_number() OVER (PARTITION BY r.mdtrt_id, r.feedetl_sn
                               ORDER BY p.fee_ocur_time DESC, p.feedetl_sn DESC) = 1),
matched AS MATERIALIZED ({matched}),
adj AS MATERIALIZED ({adj}),
net AS ({net}),
unmatched AS (
    SELECT r.mdtrt_id, r.feedetl_sn, r.init_feedetl_sn, r.hilist_code, r.fee_ocur_time, r.fixmedins_code
    FROM refund r ANTI JOIN matched m ON m.mdtrt_id = r.mdtrt_id AND m.refund_sn = r.feedetl_sn)
SELECT * FROM {out}
"""


#: the netted lines: every positive line with the change its refunds make (`pos`, `adj` of NET_SQL)
NET_LINES = """
    SELECT p.* REPLACE (
        CAST(p.cnt + coalesce(a.d_cnt, 0) AS DECIMAL(16,4)) AS cnt,
        CAST(p.det_item_fee_sumamt + coalesce(a.d_det_item_fee_sumamt, 0) AS DECIMAL(16,2)) AS det_item_fee_sumamt,
        CAST(CASE WHEN p.inscp_scp_amt IS NULL AND a.d_inscp_scp_amt IS NULL THEN NULL
             ELSE coalesce(p.inscp_scp_amt, 0) + coalesce(a.d_inscp_scp_amt, 0) END AS DECIMAL(16,2)) AS inscp_scp_amt,
        CAST(CASE WHEN p.fulamt_ownpay_amt IS NULL AND a.d_fulamt_ownpay_amt IS NULL THEN NULL
             ELSE coalesce(p.fulamt_ownpay_amt, 0) + coalesce(a.d_fulamt_ownpay_amt, 0) END AS DECIMAL(16,2))
             AS fulamt_ownpay_amt)
    FROM pos p LEFT JOIN adj a ON a.mdtrt_id = p.mdtrt_id AND a.target_sn = p.feedetl_sn
    WHERE p.cnt + coalesce(a.d_cnt, 0) > 0"""

#: a refund is a line with a negative cnt or amount; every other line is positive
POSITIVE = "NOT (cnt < 0 OR det_item_fee_sumamt < 0)"

#: `net` when the adjustments are staged: nothing but the lines and the adjustments (much less to plan,
#: which counts when each partition is netted by a query of its own)
NET_STAGED_SQL = """
WITH pos AS NOT MATERIALIZED (SELECT * FROM {lines} WHERE {positive}),
adj AS MATERIALIZED (SELECT * FROM {adj}),
net AS ({net})
SELECT * FROM net
"""

ADJ_SQL = """
    SELECT m.mdtrt_id, m.target_sn, m.fixmedins_code,
           sum(r.cnt) AS d_cnt,
           sum(r.det_item_fee_sumamt) AS d_det_item_fee_sumamt,
           sum(r.inscp_scp_amt) AS d_inscp_scp_amt,
           sum(r.fulamt_ownpay_amt) AS d_fulamt_ownpay_amt
    FROM matched m JOIN refund r ON r.mdtrt_id = m.mdtrt_id AND r.feedetl_sn = m.refund_sn
    GROUP BY m.mdtrt_id, m.target_sn, m.fixmedins_code"""


def net_sql(lines: str, out: str = "net", refund: str | None = None, matched: str | None = None,
            adj: str | None = None) -> str:
    """NET_SQL selecting `out`: `net`, `unmatched`, `refund` (the refund lines), `matched` (refund ->
    target line) or `adj` (the change each target line gets). `refund` / `matched` / `adj` name tables (or
    parenthesised SELECTs) already holding those (small) sets, so that netting a large table scans its lines
    once for each set instead of once per query, and so that a part of the lines can be netted alone with
    the adjustments of the whole."""
    if out not in ("net", "unmatched", "refund", "matched", "adj"):
        raise ValueError(out)
    if out == "net" and adj:
        return NET_STAGED_SQL.format(lines=lines, adj=adj, net=NET_LINES, positive=POSITIVE)
    return NET_SQL.format(
        lines=lines, out=out, net=NET_LINES, positive=POSITIVE,
        refund=f"SELECT * FROM {refund}" if refund else f"SELECT * FROM lines WHERE NOT ({POSITIVE})",
        matched=f"SELECT * FROM {matched}" if matched else "SELECT * FROM by_sn UNION ALL SELECT * FROM by_day",
        adj=f"SELECT * FROM {adj}" if adj else ADJ_SQL)


def net_fee_lines(con: duckdb.DuckDBPyConnection, lines) -> tuple[pa.Table, pa.Table]:
    """Netted fee lines and unmatched refunds of `lines` (an Arrow table or a DuckDB relation)."""
    con.register("_net_src", lines)
    try:
        net = con.sql(net_sql("_net_src", "net")).to_arrow_table()
        unmatched = con.sql(net_sql("_net_src", "unmatched")).to_arrow_table()
    finally:
        con.unregister("_net_src")
    return net, unmatched


# ---------------------------------------------------------------- quarantine rows

def mask_pii(entity: str, row: dict, salt: str) -> dict:
    """A raw row for the quarantine: PII fields replaced by their keyed hash (contract.pii)."""
    ent = contract.ENTITIES[entity]
    out = {}
    for k, v in row.items():
        if k in ent.names and ent.field(k).pii:
            v2 = (v or "").strip()
            out[k + "_hash"] = pii_hash(salt, v2) if v2 else None
        else:
            out[k] = v
    return out


def raw_json(entity: str, row: dict, salt: str) -> str:
    return json.dumps(mask_pii(entity, {k: v for k, v in row.items() if k != "_line"}, salt),
                      ensure_ascii=False, default=str)


QUARANTINE_SCHEMA = pa.schema([
    ("load_id", pa.string()), ("drop_id", pa.string()), ("file", pa.string()), ("line", pa.int64()),
    ("entity", pa.string()), ("field", pa.string()), ("reason", pa.string()), ("raw_row", pa.string()),
    ("loaded_at", pa.timestamp("us", tz="UTC")),
])


def quarantine_table(rows: Iterable[dict]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=QUARANTINE_SCHEMA)


def raw_text_json(entity: str, text: str, salt: str, mapping: dict[int, str] | None = None,
                  delimiter: str | None = None, headers: list[str] | None = None) -> str:
    """A line the reader could not split into the entity's fields, for the quarantine, its personal data
    keyed-hashed like silver: an entity without personal fields, in a file whose every column (`headers`) is
    one of the entity's, keeps the text; a delimited line whose fields line up with the header (`mapping`:
    position -> field) keeps the entity's fields by name, the personal ones hashed (a column the contract does
    not name, e.g. an agency's psn_name or certno beside a visit, is left out); any other line keeps only each
    field's hash."""
    ent = contract.ENTITIES[entity]
    extra = headers is not None and len(headers) > len(mapping or {})
    if not any(f.pii for f in ent.fields) and not extra:
        return json.dumps({"_text": text}, ensure_ascii=False)
    import csv
    fields = next(csv.reader([text], delimiter=delimiter), []) if delimiter else [text]
    if mapping and delimiter and len(fields) == max(mapping) + 1:
        return raw_json(entity, {c: fields[i] for i, c in mapping.items()}, salt)
    return json.dumps({"_fields_hash": [pii_hash(salt, f.strip()) if f.strip() else None for f in fields],
                       "_note": "fields not aligned with the header: every field hashed / 字段未对齐, 全部散列"},
                      ensure_ascii=False)
