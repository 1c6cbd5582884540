"""Template macros render the same text on both engines (here: DuckDB through sqlglot, and the escape hatch)."""
from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from pipelines.screen.sql import render_template, to_duckdb


def _duck(spark_sql: str):
    con = duckdb.connect()
    return con.execute(to_duckdb(render_template(spark_sql, {}))).fetchall()


def test_qty_drops_trailing_zeros():
    rows = _duck("SELECT {{ qty('x') }} AS s FROM (SELECT CAST(v AS DECIMAL(16,4)) AS x FROM "
                 "(VALUES ('2.0000'), ('0.5000'), ('100.0000'), ('12.8000'), ('0.0000')) t(v)) q")
    assert [r[0] for r in rows] == ["2", "0.5", "100", "12.8", "0"]


def test_sn_key_orders_digit_strings_numerically():
    rows = _duck("SELECT v FROM (VALUES ('10'), ('9'), ('007'), ('2'), ('100')) t(v) ORDER BY {{ sn_key('v') }}")
    assert [r[0] for r in rows] == ["2", "007", "9", "10", "100"]


def test_date_arithmetic_stays_date():
    sql = to_duckdb("SELECT date_add(to_date('2023-01-31'), 1) AS d")
    assert "CAST" in sql.upper()
    assert str(duckdb.connect().execute(sql).fetchone()[0]) == "2023-02-01"


def test_param_text_macro():
    con = duckdb.connect()
    con.execute("CREATE TABLE kb_param AS SELECT * FROM (VALUES ('p', 'O|N70')) t(key, value)")
    assert con.execute(to_duckdb(render_template("SELECT {{ param_text('p') }} AS v", {}))).fetchone()[0] == "O|N70"
    assert con.execute(to_duckdb(render_template("SELECT {{ param_text('missing') }} AS v", {}))).fetchone()[0] is None


def test_param_falls_back_to_the_shipped_knowledge_base_only_when_the_lake_lacks_the_key():
    """A drop's kb_param without `bed_hanging_min_days` (the contract's default 3) used to disable 挂床 silently:
    `param` now reads the shipped rules/kb/kb_param.csv for a key the lake lacks; a key given wins."""
    from pipelines.screen.sql import kb_defaults, param_keys

    assert kb_defaults()["bed_hanging_min_days"] == "3" and kb_defaults()["readmit_days"] == "15"
    q = "SELECT {{ param('bed_hanging_min_days') }} AS v, {{ param_text('readmit_days') }} AS t, {{ param('nope') }} AS n"
    sql = to_duckdb(render_template(q, {}))
    assert param_keys(render_template(q, {})) == {"bed_hanging_min_days", "readmit_days", "nope"}
    con = duckdb.connect()
    con.execute("CREATE TABLE kb_param (key VARCHAR, value VARCHAR)")
    assert con.execute(sql).fetchone() == (Decimal("3"), "15", None)
    con.execute("INSERT INTO kb_param VALUES ('bed_hanging_min_days', '5'), ('readmit_days', '30')")
    assert con.execute(sql).fetchone() == (Decimal("5"), "30", None)


def test_referenced_columns_are_what_the_library_names():
    """Inputs are read with the columns the views and rules name; a column no rule names is not read."""
    from pipelines.catalog import load_catalog
    from pipelines.screen.sql import referenced_columns
    catalog = load_catalog()
    rules = catalog.select()
    cols = referenced_columns(catalog, rules)
    assert {"hilist_code", "fee_ocur_time", "inscp_scp_amt", "chrgitm_lv", "die_date", "max_cnt_per_day"} <= cols
    assert not {"medins_list_codg", "bilg_dr_codg", "_line", "_file"} & cols
    # a narrower selection names fewer columns
    only = [r for r in rules if r.family == "daily_cap"]
    assert "die_date" not in referenced_columns(catalog, only)


def test_a_run_builds_only_the_shared_views_its_rules_read():
    from pipelines.catalog import load_catalog
    from pipelines.screen.pipeline import needed_views
    catalog = load_catalog()
    by_family = lambda f: [r for r in catalog.select() if r.family == f]  # noqa: E731
    assert needed_views(catalog, by_family("daily_cap")) == {"fee"}
    assert needed_views(catalog, by_family("duplicate_line")) == {"fee", "fee_dup_groups"}
    # through another view: visit_diag reads visit
    assert {"visit_diag", "visit"} <= needed_views(catalog, by_family("indication_restricted"))
    assert needed_views(catalog, []) == set()


def test_every_rule_and_view_renders_and_transpiles():
    """Every catalog rule (drafts included) and shared view renders to Spark SQL with nothing left of Jinja,
    and sqlglot carries it to DuckDB SQL that parses back."""
    import sqlglot

    from pipelines.catalog import load_catalog
    from pipelines.screen.sql import rule_query, view_query
    catalog = load_catalog()
    queries = {r.id: rule_query(catalog, r) for r in catalog.rules}
    queries.update({f"view {k}": view_query(v) for k, v in catalog.views.items()})
    assert len(queries) == len(catalog.rules) + len(catalog.views) > 40
    for name, spark_sql in queries.items():
        assert "{{" not in spark_sql and "{%" not in spark_sql, name
        duck = to_duckdb(spark_sql)
        assert isinstance(sqlglot.parse_one(duck, read="duckdb"), sqlglot.exp.Query), name


def test_macros_come_from_rules_macros_sql(tmp_path, monkeypatch):
    """The macros are rules/macros.sql's: every macro a template or view calls is defined there, and the file
    (not Python) decides what a macro renders."""
    import re

    from pipelines.catalog import load_catalog
    from pipelines.screen import sql
    catalog = load_catalog()
    called = {m for text in [*catalog.templates.values(), *catalog.views.values()]
              for m in re.findall(r"\{\{\s*([a-z_]+)\(", text)}
    assert called <= set(sql.macro_names())
    assert {"month", "num", "ymd", "param"} <= set(sql.macro_names())
    assert not hasattr(sql, "MACROS")
    other = tmp_path / "macros.sql"
    other.write_text("{%- macro month(x) -%}substr({{ x }}, 1, 7){%- endmacro -%}", encoding="utf-8")
    monkeypatch.setattr(sql, "MACROS_FILE", other)
    sql._jinja.cache_clear()
    try:
        assert render_template("SELECT {{ month('t') }}", {}) == "SELECT substr(t, 1, 7)"
    finally:
        monkeypatch.undo()
        sql._jinja.cache_clear()
    assert render_template("SELECT {{ month('t') }}", {}) == "SELECT date_format(t, 'yyyy-MM')"


TRICKY = ["it's", "C:\\new", "a\\'b", "''", "普通病房"]


def test_spark_literal_round_trips_through_duckdb():
    """A Spark literal of any text reaches DuckDB (through sqlglot) as the same text; lists become an IN list."""
    from pipelines.screen.sql import spark_literal
    con = duckdb.connect()
    for value in TRICKY:
        assert con.execute(to_duckdb(f"SELECT {spark_literal(value)}")).fetchone()[0] == value
    assert spark_literal(["101", "1'2"]) == "('101', '1\\'2')"
    quoted, in_list = spark_literal("1'2"), spark_literal(["101", "1'2"])
    assert con.execute(to_duckdb(f"SELECT {quoted} IN {in_list}")).fetchone()[0]
    assert not con.execute(to_duckdb(f"SELECT '12' IN {in_list}")).fetchone()[0]
    assert [spark_literal(v) for v in (None, 3, 0.5, True)] == ["NULL", "3", "0.5", "TRUE"]


def test_the_two_literal_dialects_differ_only_in_string_escapes():
    """storage.sql_literal (standard SQL, delta-rs predicates) doubles a quote; Spark escapes with a backslash."""
    from pipelines.screen.sql import spark_literal
    from pipelines.storage import sql_literal
    assert sql_literal("it's") == "'it''s'" and spark_literal("it's") == "'it\\'s'"
    assert sql_literal("a\\b") == "'a\\b'" and spark_literal("a\\b") == "'a\\\\b'"
    for same in (None, 7, 2.5, "plain"):
        assert spark_literal(same) == sql_literal(same)


@pytest.mark.spark
def test_spark_reads_spark_literals_and_not_standard_ones(spark):
    """Why two dialects: Spark reads its own literal back as the text, and a standard SQL literal of a text with
    a backslash as something else (an escape), or not at all."""
    from pipelines.screen.sql import spark_literal
    from pipelines.storage import sql_literal
    for value in TRICKY:
        assert spark.sql(f"SELECT {spark_literal(value)} AS v").first()["v"] == value
    # the standard literals 'a\b' and 'C:\new': a backspace and a newline to Spark
    assert spark.sql(f"SELECT {sql_literal(TRICKY[1])} AS v").first()["v"] == "C:" + chr(10) + "ew"
    assert spark.sql(f"SELECT {sql_literal('a' + chr(92) + 'b')} AS v").first()["v"] == "a" + chr(8)
