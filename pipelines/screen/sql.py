"""Rendering rule templates (Spark SQL + Jinja) and carrying them to DuckDB with sqlglot. Pure functions."""
from __future__ import annotations

import csv
import json
import re
from functools import lru_cache

import jinja2
import sqlglot
from sqlglot import exp

from pipelines.catalog import Catalog, Family, Rule
from pipelines.config import REPO_ROOT
from pipelines.storage import sql_literal

#: The macros every template and view may call (`month`, `num`, `ymd`, `param`, …): a Jinja macros file.
MACROS_FILE = REPO_ROOT / "rules" / "macros.sql"
#: The shipped knowledge base's parameters: what `param(key)` falls back to when a lake's kb_param lacks the key
KB_DEFAULTS_FILE = REPO_ROOT / "rules" / "kb" / "kb_param.csv"
#: the kb_param keys a rendered query reads (`param`, `param_text`)
PARAM_KEY_RE = re.compile(r"FROM kb_param WHERE key = '([^']+)'")

SUSPECT_SELECT = ("fixmedins_code", "psn_no", "mdtrt_id", "setl_id", "feedetl_sn", "hilist_code", "event_time",
                  "period", "amount", "evidence")

GRAIN_KEYS = {
    "line": ("fixmedins_code", "mdtrt_id", "feedetl_sn"),
    "visit": ("fixmedins_code", "mdtrt_id", "setl_id"),
    "item-month": ("fixmedins_code", "hilist_code", "period"),
}


def spark_literal(value) -> str:
    """A Python value as a Spark SQL literal (lists become `('a', 'b')` for IN).

    Two SQL dialects meet in FundGuard, so there are two literal helpers, each defined once:
    `storage.sql_literal` writes standard SQL for delta-rs predicates (a quote doubled, `'it''s'`; a backslash
    is a plain character), and this one writes the rule library's Spark SQL, which sqlglot carries to DuckDB.
    Spark reads a backslash in a string as an escape: the standard literal `'C:\\new'` is a newline to Spark,
    `'a\\b'` a backspace, and the text `x\\'y` (standard `'x\\''y'`) does not even parse. So Spark strings
    escape the backslash and the quote with a backslash (tests/screen/test_sql.py shows both on Spark). NULL
    and numbers are the same in both dialects and come from `sql_literal`.
    """
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(spark_literal(v) for v in value) + ")"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if value is None or isinstance(value, (int, float)):
        return sql_literal(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


@lru_cache(maxsize=1)
def _jinja() -> jinja2.Environment:
    """The template environment, with every macro of rules/macros.sql as a global."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(MACROS_FILE.parent), undefined=jinja2.StrictUndefined,
                             autoescape=False, keep_trailing_newline=True)
    env.globals["kb_defaults"] = {k: spark_literal(v) for k, v in kb_defaults().items()}
    module = env.get_template(MACROS_FILE.name).module
    env.globals.update({k: v for k, v in vars(module).items() if isinstance(v, jinja2.runtime.Macro)})
    return env


@lru_cache(maxsize=1)
def kb_defaults() -> dict[str, str]:
    """key -> value of the shipped knowledge base's kb_param (the contract's `readmit_days` 15, … and the project's
    own keys)."""
    with open(KB_DEFAULTS_FILE, encoding="utf-8", newline="") as f:
        return {r["key"]: r["value"] for r in csv.DictReader(f)}


def param_keys(sql: str) -> set[str]:
    """The kb_param keys a rendered rule or view reads."""
    return set(PARAM_KEY_RE.findall(sql))


def macro_names() -> list[str]:
    """The macros rules/macros.sql defines."""
    return sorted(k for k, v in _jinja().globals.items() if isinstance(v, jinja2.runtime.Macro))


def render_template(template_sql: str, params: dict) -> str:
    bound = {k: spark_literal(v) for k, v in params.items()}
    return _jinja().from_string(template_sql).render(params=bound).strip().rstrip(";")


def rule_query(catalog: Catalog, rule: Rule) -> str:
    """The rule's full Spark SQL: its template, wrapped into the contract's suspect shape."""
    family: Family = catalog.families[rule.family]
    body = render_template(catalog.templates[rule.template], rule.params)
    keys = ", ".join(f"coalesce(CAST({k} AS STRING), '')" for k in GRAIN_KEYS[family.grain])
    return f"""SELECT
  sha2(concat_ws('|', {spark_literal(rule.id)}, {keys}), 256) AS suspect_id,
  {spark_literal(rule.id)} AS rule_id,
  {int(rule.version)} AS rule_version,
  {spark_literal(rule.family)} AS family,
  {spark_literal(rule.category)} AS category,
  {spark_literal(rule.severity)} AS severity,
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
