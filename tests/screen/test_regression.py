"""Every rule proves itself: its regression case (rules/regression/<rule_id>/) on both engines."""
from __future__ import annotations

import pytest

from pipelines.catalog import load_catalog
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.regression import run_case

CATALOG = load_catalog()
RULES = CATALOG.select(include_draft=True)


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_regression_duckdb(rule):
    res = run_case(DuckDBEngine(), CATALOG, rule)
    assert res.expected, f"{rule.id}: regression data must contain at least one positive case"
    assert res.actual == res.expected, (
        f"missing {sorted(res.expected - res.actual)}, unexpected {sorted(res.actual - res.expected)}")


@pytest.mark.spark
@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_regression_spark_matches_duckdb(rule, spark_engine):
    """Same case on Spark: the same suspects, ids, amounts and evidence as DuckDB."""
    res_spark = run_case(spark_engine, CATALOG, rule)
    res_duck = run_case(DuckDBEngine(), CATALOG, rule)
    assert res_spark.actual == res_spark.expected
    cols = ["suspect_id", "amount", "evidence", "event_time", "period"]
    key = lambda r: r["suspect_id"]
    assert sorted(res_spark.rows.select(cols).to_pylist(), key=key) == \
        sorted(res_duck.rows.select(cols).to_pylist(), key=key)
