"""Rendering rule templates (Spark SQL + Jinja) and carrying them to DuckDB with sqlglot. Pure functions."""
from __future__ import annotations

import json
from functools import lru_cache

import jinja2
import sqlglot
from sqlglot import exp

from pipelines.catalog import Catalog, Family, Rule

#: Macros every template may use. They expand to Spark SQL that transpiles identically to DuckDB.
MACROS = r"""
{%- macro num(x) -%}CAST(CAST({{ x }} AS DECIMAL(18,2)) AS STRING){%- endmacro -%}
{%- macro ymd(x) -%}date_format({{ x }}, 'yyyy-MM-dd'){%- endmacro -%}
{%- macro ymdhm(x) -%}date_format({{ x }}, 'yyyy-MM-dd HH:mm'){%- endmacro -%}
{%- macro month(x) -%}date_format({{ x }}, 'yyyy-MM'){%- endmacro -%}
{%- macro param(key) -%}(SELECT CAST(max(value) AS DECIMAL(16,6)) FROM kb_param WHERE key = '{{ key }}'){%- endmacro -%}
{%- macro param_text(key) -%}(SELECT max(value) FROM kb_param WHERE key = '{{ key }}'){%- endmacro -%}
{%- macro qty(x) -%}CASE WHEN CAST(CAST({{ x }} AS DECIMAL(20,4)) AS STRING) LIKE '%.%' THEN TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM CAST(CAST({{ x }} AS DECIMAL(20,4)) AS STRING))) ELSE CAST(CAST({{ x }} AS DECIMAL(20,4)) AS STRING) END{%- endmacro -%}
{%- macro sn_key(x) -%}concat(lpad(CAST(length(regexp_replace({{ x }}, '^0+', '')) AS STRING), 6, '0'), regexp_replace({{ x }}, '^0+', ''), '|', {{ x }}){%- endmacro -%}
{%- macro in_force(k, d) -%}(({{ k }}.kb_valid_from IS NULL OR {{ d }} >= {{ k }}.kb_valid_from) AND ({{ k }}.kb_valid_to IS NULL OR {{ d }} < {{ k }}.kb_valid_to)){%- endmacro -%}
{%- macro age_at(brdy, d) -%}(year({{ d }}) - year({{ brdy }}) - CASE WHEN month({{ d }}) * 100 + day({{ d }}) < month({{ brdy }}) * 100 + day({{ brdy }}) THEN 1 ELSE 0 END){%- endmacro -%}
"""

SUSPECT_SELECT = ("fixmedins_code", "psn_no", "mdtrt_id", "setl_id", "feedetl_sn", "hilist_code", "event_time",
                  "period", "amount", "evidence")

GRAIN_KEYS = {
    "line": ("fixmedins_code", "mdtrt_id", "feedetl_sn"),
    "visit": ("fixmedins_code", "mdtrt_id", "setl_id"),
    "item-month": ("fixmedins_code", "hilist_code", "period"),
}

_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


def literal(value) -> str:
    """A Python value as a Spark SQL literal (lists become `('a', 'b')` for IN)."""
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(literal(v) for v in value) + ")"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_template(template_sql: str, params: dict) -> str:
    bound = {k: literal(v) for k, v in params.items()}
    return _env.from_string(MACROS + template_sql).render(params=bound).strip().rstrip(";")


def rule_query(catalog: Catalog, rule: Rule) -> str:
    """The rule's full Spark SQL: its template, wrapped into the contract's suspect shape."""
    family: Family = catalog.families[rule.family]
    body = render_template(catalog.templates[rule.template], rule.params)
    keys = ", ".join(f"coalesce(CAST({k} AS STRING), '')" for k in GRAIN_KEYS[family.grain])
    return f"""SELECT
  sha2(concat_ws('|', {literal(rule.id)}, {keys}), 256) AS suspect_id,
  {literal(rule.id)} AS rule_id,
  {int(rule.version)} AS rule_version,
  {literal(rule.family)} AS family,
  {literal(rule.category)} AS category,
  {literal(rule.severity)} AS severity,
  CAST(fixmedins_code AS STRING) AS fixmedins_code,
  CAST(period AS STRING) AS period,
  CAST(psn_no AS STRING) AS psn_no,
  CAST(mdtrt_id AS STRING) AS mdtrt_id,
  CAST(setl_id AS STRING) AS setl_id,
  CAST(feedetl_sn AS STRING) AS feedetl_sn,
  CAST(hilist_code AS STRING) AS hilist_code,
  CAST(event_time AS TIMESTAMP) AS event_time,
  CAST(amount AS DECIMAL(16,2)) AS amount,
  CAST(evidence AS STRING) AS evidence
FROM (
{body}
) rule_output"""


def referenced_columns(catalog: Catalog, rules) -> set[str]:
    """Every column name (lower case) the shared views and these rules' queries name: an input column named
    nowhere cannot reach a suspect, so engines need not read it."""
    sqls = [view_query(v) for v in catalog.views.values()] + [rule_query(catalog, r) for r in rules]
    return {c.name.lower() for sql in sqls for c in _parse_spark(sql).find_all(exp.Column)}


def referenced_tables(spark_sql: str) -> set[str]:
    """The table and view names a query reads (its CTE names included)."""
    return {t.name for t in _parse_spark(spark_sql).find_all(exp.Table)}


@lru_cache(maxsize=1024)
def _parse_spark(spark_sql: str) -> exp.Expression:
    return sqlglot.parse_one(spark_sql, read="spark")


def view_query(view_sql: str) -> str:
    return render_template(view_sql, {})


def _fix_duckdb(node: exp.Expression) -> exp.Expression:
    """Dialect escape hatches (kept few, each tested): date arithmetic must stay DATE in DuckDB."""
    if isinstance(node, (exp.DateAdd, exp.DateSub, exp.AddMonths, exp.TsOrDsAdd)) and not isinstance(node.parent, exp.Cast):
        return exp.Cast(this=node, to=exp.DataType.build("DATE"))
    return node


@lru_cache(maxsize=1024)
def to_duckdb(spark_sql: str) -> str:
    """Transpile Spark SQL to DuckDB SQL."""
    tree = _parse_spark(spark_sql).copy()
    tree = tree.transform(_fix_duckdb)
    return tree.sql(dialect="duckdb")


def input_versions_json(versions: dict[str, int]) -> str:
    return json.dumps(dict(sorted(versions.items())), separators=(",", ":"))
