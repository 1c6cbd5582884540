"""Template macros render the same text on both engines (here: DuckDB through sqlglot, and the escape hatch)."""
from __future__ import annotations

import duckdb

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
