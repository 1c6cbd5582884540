"""The scope a screening records (staging/scope, beside staging/suspects) and what publishing does with it,
on the hand-made silver of tests/fg_lakes.py: H1 with input rows in 2023-01 (inventory), 2023-03 and 2023-04,
H2 in 2023-03."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipelines import config
from pipelines.app.publication import gate_staging
from pipelines.catalog import load_catalog
from pipelines.contract import GOLD_SUSPECTS, STAGING_SUSPECTS, UsageError
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import STAGING_SCOPE, screen

CATALOG = load_catalog()
RULES = [CATALOG.by_id["daily_cap_item"]]


def screened(lake, **selection):
    return screen(lake, DuckDBEngine(), CATALOG, RULES, run_id="R1", progress=False, **selection)


def pairs(scope: pa.Table) -> dict[tuple[str, str], int]:
    return {(r["fixmedins_code"], r["period"]): r["input_rows"] for r in scope.to_pylist()}


def test_a_screening_records_every_pair_it_screened_with_its_input_rows(silver_lake):
    lake, versions = silver_lake
    res = screened(lake)
    scope = lake.read(STAGING_SCOPE)
    # every institution × every month with input rows: fee lines + visits + settlements + inventory movements
    assert pairs(scope) == {("H1", "2023-01"): 1, ("H1", "2023-03"): 4, ("H1", "2023-04"): 3,
                            ("H2", "2023-01"): 0, ("H2", "2023-03"): 3, ("H2", "2023-04"): 0}
    assert res.staging_version == lake.version(STAGING_SUSPECTS)
    assert set(scope.column("staging_version").to_pylist()) == {res.staging_version}
    row = scope.to_pylist()[0]
    assert (row["run_id"], row["rule_set_fingerprint"]) == ("R1", res.fingerprint)
    assert json.loads(row["input_versions"]) == res.input_versions
    assert row["selected_period"] is None and row["selected_institutions"] is None
    assert res.scope.equals(scope)


def test_a_selection_is_the_scope_months_of_the_period_included(silver_lake):
    lake, _ = silver_lake
    screened(lake, period="2023", institutions=["H2"])
    scope = lake.read(STAGING_SCOPE)
    assert pairs(scope) == {("H2", f"2023-{m:02d}"): (3 if m == 3 else 0) for m in range(1, 13)}
    row = scope.to_pylist()[0]
    assert row["selected_period"] == "2023" and json.loads(row["selected_institutions"]) == ["H2"]


def test_publish_replaces_the_recorded_scope_and_checks_the_command_line_against_it(silver_lake):
    lake, _ = silver_lake
    conf = {**config.load(), "gate": {"hit_rate_band": 10.0, "hit_rate_min_hits": 20}}
    screened(lake, period="2023-03", institutions=["H1"])
    with pytest.raises(UsageError, match="staging holds the screening of H1 × 2023-03"):
        gate_staging(lake, conf=conf, periods=["2023"], publish=True)
    with pytest.raises(UsageError, match="staging holds the screening of H1 × 2023-03"):
        gate_staging(lake, conf=conf, institutions=["H2"], publish=True)
    assert not lake.exists(GOLD_SUSPECTS)
    # no daily cap in this silver (no kb_hilist): H1 2023-03 has 4 input rows and no suspect: an emptied scope
    _, out = gate_staging(lake, conf=conf, periods=["2023-03"], institutions=["H1"], publish=True)
    assert out.version is None and any("--accept-drop" in f for f in out.gate.failures)
    _, out = gate_staging(lake, conf=conf, publish=True, accept_drop=True)
    assert out.version == lake.version(GOLD_SUSPECTS)
    assert out.scope_text() == "1 家机构 × 1 个月 / 1 institutions × 1 months"
