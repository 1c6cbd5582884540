"""The quality gate: a clean list passes; each kind of corruption is blocked with a plain-words reason."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from fg_lakes import clean_rows, gate_catalog, suspect, table

from pipelines.quality.gate import GateScope, previous_hits, run_gate
from pipelines.screen.pipeline import scope_table

CATALOG = gate_catalog()
RULES = CATALOG.select()
#: every (institution, month) of the hand-made silver (tests/fg_lakes.py) with its input rows
SILVER_PAIRS = {("H1", "2023-01"): 1, ("H1", "2023-03"): 4, ("H1", "2023-04"): 3, ("H2", "2023-03"): 3}


def recorded(versions, run_id="R2", pairs=None, **settings) -> GateScope:
    """The scope a screening of the hand-made silver records (run R2, as clean_rows)."""
    scope = scope_table(SILVER_PAIRS if pairs is None else pairs, run_id=run_id, fingerprint="fp1",
                        input_versions=json.dumps(versions or {}))
    return GateScope(scope, **settings)


def gate(lake, t, tmp_path, previous=None, band=10.0, min_hits=20, scope=None, versions=None):
    return run_gate(lake, t, catalog=CATALOG, rules=RULES, report_dir=tmp_path / "report",
                    scope=scope or recorded(versions), previous=previous or {}, band=band, min_hits=min_hits)


def test_clean_list_passes_and_writes_data_docs(silver_lake, tmp_path):
    lk, versions = silver_lake
    res = gate(lk, table(clean_rows(versions)), tmp_path, versions=versions)
    assert res.success, res.failures
    assert res.failures == []
    assert (res.report_path / "index.html").exists()
    assert res.results["gate_success"] == 1
    assert res.results["gate_expectations"] >= 25


def test_empty_list_of_a_scope_without_input_rows_passes(silver_lake, tmp_path):
    lk, _ = silver_lake
    assert gate(lk, table([]), tmp_path, scope=recorded({}, pairs={("H3", "2023-03"): 0})).success


def test_empty_list_of_a_scope_with_input_rows_needs_accept_drop(silver_lake, tmp_path):
    lk, versions = silver_lake
    res = gate(lk, table([]), tmp_path, versions=versions)
    assert not res.success
    assert res.failures == [
        "本次筛查范围（2 家机构 × 3 个月）有 11 行输入、已发布 0 条疑点，本次清单为 0 条，发布将清空它；如确属预期，"
        "请加 --accept-drop 再发布 / the screened scope (2 institutions × 3 months): 11 input rows and 0 suspects "
        "published, none in this list: publishing would empty it; if intended, publish again with --accept-drop"]
    assert gate(lk, table([]), tmp_path, scope=recorded(versions, accept_drop=True)).success


def _with(rows_extra=(), drop=None, add_column=None):
    def build(versions):
        rows = clean_rows(versions) + [r(versions) if callable(r) else r for r in rows_extra]
        t = table(rows)
        if drop:
            t = t.drop_columns([drop])
        if add_column:
            name, values = add_column
            t = t.append_column(name, pa.array([values] * t.num_rows))
        return t
    return build


CORRUPTIONS = {
    # a second row with the id of the first one
    "duplicate_key": (_with([lambda v: clean_rows(v)[0]]), "疑点编号重复"),
    # fee line M9/99 does not exist in silver/fee_list_net
    "orphan_line": (_with([suspect("daily_cap_item", "daily_cap", "H1", "2023-03", mdtrt="M9", sn="99")]),
                    "silver/fee_list_net (mdtrt_id, feedetl_sn) = (M9, 99)"),
    # visit M99 is not in silver/mdtrt
    "orphan_visit": (_with([suspect("split_admission_same_diag", "split_admission", "H1", "2023-04", mdtrt="M99")]),
                     "silver/mdtrt mdtrt_id = M99"),
    # settlement S99 is not in silver/setl
    "orphan_settlement": (_with([suspect("self_pay_ratio_inpatient", "self_pay_ratio", "H1", "2023-04", mdtrt="M2",
                                         setl="S99")]), "silver/setl setl_id = S99"),
    # item X9 has no inv_movement at H1
    "orphan_item_month": (_with([suspect("inventory_shortfall_drug", "inventory_shortfall", "H1", "2023-04",
                                         hilist="X9")]), "(H1, X9)"),
    # negative amount on an existing line
    "negative_amount": (_with([suspect("daily_cap_item", "daily_cap", "H1", "2023-04", mdtrt="M2", sn="3",
                                       amount="-5.00")]), "金额为负"),
    # 45.00 on a 40.00 line
    "amount_above_line": (_with([suspect("daily_cap_item", "daily_cap", "H2", "2023-03", mdtrt="M7", sn="10",
                                         amount="45.00") | {"suspect_id": "other"}]), "45.00 > 40.00"),
    # visit M2 totals 100.00
    "amount_above_visit": (_with([suspect("split_admission_same_diag", "split_admission", "H1", "2023-03",
                                          mdtrt="M1", amount="80.01")]), "80.01 > 80.00"),
    # draft rule: not active
    "inactive_rule": (_with([suspect("daily_cap_draft", "daily_cap", "H1", "2023-04", mdtrt="M2", sn="3")]),
                      "rule daily_cap_draft is not an active rule"),
    # unknown rule id
    "unknown_rule": (_with([suspect("no_such_rule", "daily_cap", "H1", "2023-04", mdtrt="M2", sn="3")]),
                     "rule no_such_rule is not an active rule"),
    # line grain without feedetl_sn
    "missing_grain_key": (_with([suspect("daily_cap_item", "daily_cap", "H1", "2023-04", mdtrt="M2", sn=None)]),
                          "feedetl_sn"),
    # personal data column
    "pii_column": (_with(add_column=("psn_name", "张三")), "psn_name"),
    # an 18-digit ID number (valid check character) in the evidence
    "id_in_evidence": (_with([suspect("daily_cap_item", "daily_cap", "H1", "2023-04", mdtrt="M2", sn="3",
                                      evidence="参保人110101199003071233当日超量。")]), "身份证号"),
    # a contract column missing
    "missing_column": (_with(drop="evidence"), "evidence"),
    # period not YYYY-MM
    "bad_period": (_with([suspect("daily_cap_item", "daily_cap", "H1", "2023-4", mdtrt="M2", sn="3",
                                  when="2023-04-02 08:00:00")]), "YYYY-MM"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corruption_is_blocked(silver_lake, tmp_path, case):
    lk, versions = silver_lake
    build, words = CORRUPTIONS[case]
    res = gate(lk, build(versions), tmp_path, versions=versions)
    assert not res.success
    assert any(words in f for f in res.failures), res.failures


def test_wrong_column_type_is_blocked(silver_lake, tmp_path):
    lk, versions = silver_lake
    t = table(clean_rows(versions))
    t = t.set_column(t.schema.get_field_index("amount"), "amount", t.column("amount").cast(pa.float64()))
    res = gate(lk, t, tmp_path, versions=versions)
    assert not res.success
    assert any("column amount has type double" in f for f in res.failures)


def test_tenfold_jump_is_blocked_as_a_likely_bug(silver_lake, tmp_path):
    lk, versions = silver_lake
    t = table(clean_rows(versions))  # daily_cap_item: 3 hits
    res = gate(lk, t, tmp_path, previous={"daily_cap_item": 0 + 1}, band=2.0, min_hits=3, versions=versions)
    assert not res.success
    assert res.failures == ["规则 daily_cap_item 命中数 3，较上次发布 1 增长超过 2 倍 / "
                            "rule daily_cap_item: 3 hits vs 1 last published run (band ×2)"]
    # below min_hits, or within the band: passes
    assert gate(lk, t, tmp_path, previous={"daily_cap_item": 1}, band=2.0, min_hits=4, versions=versions).success
    assert gate(lk, t, tmp_path, previous={"daily_cap_item": 2}, band=2.0, min_hits=3, versions=versions).success


def test_previous_hits_reads_the_latest_published_run_per_rule(silver_lake):
    import datetime as dt
    lk, versions = silver_lake
    from pipelines.publish.publisher import publish
    publish(lk, table(clean_rows(versions, run_id="R1")), scope=recorded(versions).scope,
            published_at=dt.datetime(2024, 1, 1))
    assert previous_hits(lk) == {"daily_cap_item": 3, "split_admission_same_diag": 1,
                                 "self_pay_ratio_inpatient": 1, "inventory_shortfall_drug": 1}
    # R2 only for H2 2023-03: daily_cap_item's latest run is R2 with 1 hit
    publish(lk, table([r for r in clean_rows(versions, run_id="R2") if r["fixmedins_code"] == "H2"]),
            scope=recorded(versions, pairs={("H2", "2023-03"): 3}).scope, published_at=dt.datetime(2024, 2, 1))
    assert previous_hits(lk)["daily_cap_item"] == 1
    assert previous_hits(lk)["split_admission_same_diag"] == 1


def test_gate_passes_thousands_of_clean_suspects(silver_lake, tmp_path):
    """Thousands of suspects on one line of a 40-yuan amount, each its own finding (item code): unique ids,
    all valid (speed: benchmarks)."""
    lk, versions = silver_lake
    rows = [suspect("daily_cap_item", "daily_cap", "H1", "2023-03", mdtrt="M1", sn="1", amount="40.00",
                    hilist=f"X{i}") | {"suspect_id": f"id{i:05d}"} for i in range(4000)]
    res = gate(lk, table(rows), tmp_path, scope=recorded({}, run_id="R2"))
    assert res.success, res.failures
