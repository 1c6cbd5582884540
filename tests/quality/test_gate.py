"""The quality gate: a clean list passes; each kind of corruption is blocked with a plain-words reason."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from fg_lakes import clean_rows, gate_catalog, suspect, table

from pipelines import config
from pipelines.contract.pii import pii_hash
from pipelines.quality.gate import GateScope, previous_hits, run_gate
from pipelines.screen.pipeline import scope_table

CATALOG = gate_catalog()
RULES = CATALOG.select()
#: every (institution, month) of the hand-made silver (tests/fg_lakes.py) with its input rows
SILVER_PAIRS = {("H1", "2023-01"): 1, ("H1", "2023-03"): 4, ("H1", "2023-04"): 3, ("H2", "2023-03"): 3}


def recorded(versions, run_id="R2", pairs=None, **settings) -> GateScope:
    """The scope a screening of the hand-made silver records (run R2, as clean_rows), with the PII key."""
    scope = scope_table(SILVER_PAIRS if pairs is None else pairs, run_id=run_id, fingerprint="fp1",
                        input_versions=json.dumps(versions or {}))
    return GateScope(scope, **{"pii_key": config.pii_key(), **settings})


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


def _edit(index, **changes):
    """The clean list (run R2, its versions) with row `index` changed."""
    def build(versions):
        rows = clean_rows(versions)
        rows[index] = rows[index] | changes
        return table(rows)
    return build


def _plus(*extra):
    """The clean list plus rows built from it: each `extra` maps (clean rows) to one more row."""
    def build(versions):
        rows = clean_rows(versions)
        return table(rows + [f(rows) for f in extra])
    return build


#: tampering the new checks catch, on the hand-made lake: (the list, words of the refusal)
SCOPE_AND_CONTENT = {
    "null_amount": (_edit(1, amount=None), "rule daily_cap_item: 1 suspects without an amount"),
    "same_finding_new_id": (_plus(lambda rows: rows[0] | {"suspect_id": "f" * 64}),
                            "rule daily_cap_item: 2 suspects repeat one finding (same rule and record keys)"),
    "id_in_psn_no": (_edit(0, psn_no="11010519491231002X"), "identity number in psn_no (e.g. 110…2X"),
    "id_in_hilist_code": (_edit(0, hilist_code="110101199003071233"), "identity number in hilist_code"),
    "spaced_id_in_evidence": (_edit(2, evidence="参保人 110101 19900307 1233 超量。"),
                              "identity number in evidence"),
    "hyphenated_id_in_evidence": (_edit(2, evidence="证件110101-1990-0307-1233。"), "identity number in evidence"),
    "id15_in_evidence": (_edit(2, evidence="旧证件号110101900307123。"), "identity number in evidence"),
    "period_not_event_month": (_edit(3, period="2023-03"),
                               "suspects whose period is not the month of event_time (period / event_time: "
                               "2023-03 / 2023-04-01 08:00)"),
    "second_run": (_edit(4, run_id="R9"), "1 suspects: run_id not as the screening R2 recorded (runs R9"),
    "other_fingerprint": (_edit(4, rule_set_fingerprint="fp9"), "rule_set_fingerprint not as the screening R2"),
    "other_input_versions": (_edit(4, input_versions='{"silver/mdtrt": 99}'), "input_versions not as the screening"),
}


@pytest.mark.parametrize("case", sorted(SCOPE_AND_CONTENT))
def test_content_tampering_is_blocked_by_its_own_check(silver_lake, tmp_path, case):
    lk, versions = silver_lake
    build, words = SCOPE_AND_CONTENT[case]
    res = gate(lk, build(versions), tmp_path, versions=versions)
    assert not res.success
    assert len(res.failures) == 1 and words in res.failures[0], res.failures


def test_a_clean_list_of_a_real_looking_evidence_is_not_read_as_personal_data(silver_lake, tmp_path):
    """Dates, times, amounts, person numbers and visit ids are no identity numbers."""
    lk, versions = silver_lake
    rows = clean_rows(versions)
    rows[0]["evidence"] = ("参保人3301026676765558于2023-05-23 12:37至2023-05-26入院（MD20231844303269），"
                           "明细100000000399共3（2条明细），金额616.00元，2023-03-01 2023-03-05 2023-03-09。")
    rows[0]["psn_no"] = "3301026676765558"
    assert gate(lk, table(rows), tmp_path, versions=versions).success


def with_persons(lk, names: dict[str, str]) -> None:
    """silver/psn of the hand-made lake: psn_no -> name, hashed as ingestion hashes it."""
    key = config.pii_key()
    lk.append("silver/psn", pa.table({"psn_no": list(names), "psn_name_hash": [pii_hash(key, n) for n in names.values()]}))


def test_a_persons_name_is_blocked_wherever_it_is(silver_lake, tmp_path):
    lk, versions = silver_lake
    with_persons(lk, {"P1": "任一", "P2": "欧阳明华"})
    rows = clean_rows(versions)  # every row's person is P1
    assert gate(lk, table(rows), tmp_path, versions=versions).success
    # the row's own patient inside a sentence; another person's name, spaced, as a whole value
    rows[1]["evidence"] = "参保人任一于2023-03-01使用项目超过每日限量。"
    rows[3]["hilist_code"] = "欧阳 明华"
    res = gate(lk, table(rows), tmp_path, versions=versions)
    assert not res.success
    assert any("1 suspects carry an insured person's name in evidence" in f for f in res.failures), res.failures
    assert any("1 suspects carry an insured person's name in hilist_code" in f for f in res.failures)
    assert not any("任一" in f or "明华" in f for f in res.failures)  # the message never repeats a name


def test_another_persons_two_character_name_inside_a_sentence_is_not_a_name(silver_lake, tmp_path):
    """A common two-character name inside ordinary words is not read as a name unless it is the row's own
    patient (personal.py): 任一 is P2's name, the evidence is P1's."""
    lk, versions = silver_lake
    with_persons(lk, {"P1": "张三", "P2": "任一"})
    rows = clean_rows(versions)
    rows[1]["evidence"] = "同一日任一项目超过每日限量。"
    assert gate(lk, table(rows), tmp_path, versions=versions).success


def test_suspects_outside_the_recorded_scope_are_blocked(silver_lake, tmp_path):
    lk, versions = silver_lake
    scope = recorded(versions, pairs={("H1", "2023-03"): 4, ("H1", "2023-04"): 3, ("H1", "2023-01"): 1})
    res = gate(lk, table(clean_rows(versions)), tmp_path, scope=scope)
    assert not res.success
    assert any("1 suspects lie outside the (institution, month) scope the screening recorded (H2 2023-03" in f
               for f in res.failures), res.failures


def test_a_list_without_its_scope_or_with_another_one_is_blocked(silver_lake, tmp_path):
    lk, versions = silver_lake
    t = table(clean_rows(versions))
    res = gate(lk, t, tmp_path, scope=GateScope(None, staging_version=3, pii_key=config.pii_key()))
    assert not res.success and any("staging records no screened scope" in f for f in res.failures)
    stale = recorded(versions)
    stale = GateScope(stale.scope.set_column(1, "staging_version", pa.array([2] * stale.scope.num_rows, pa.int64())),
                      staging_version=3, pii_key=config.pii_key())
    res = gate(lk, t, tmp_path, scope=stale)
    assert res.failures == ["暂存区疑点清单是版本 3，筛查范围记录的却是版本 2：清单在筛查之后被改写或筛查中断，请重新运行 "
                            "fundguard screen / staging/suspects is at version 3, its recorded scope names version 2: "
                            "the list was rewritten after its screening, or the screening was interrupted; run "
                            "fundguard screen again"]
    two = recorded(versions).scope
    two = two.set_column(0, "run_id", pa.array(["R2", "R3", "R2", "R2"]))
    res = gate(lk, t, tmp_path, scope=GateScope(two, pii_key=config.pii_key()))
    assert any("the recorded scope names several runs (R2, R3)" in f for f in res.failures), res.failures


def test_a_shrunk_or_emptied_scope_needs_accept_drop(silver_lake, tmp_path):
    from pipelines.publish.publisher import publish
    import datetime as dt
    lk, versions = silver_lake
    rows = clean_rows(versions)
    publish(lk, table(rows), scope=recorded(versions).scope, published_at=dt.datetime(2024, 1, 1))
    only_h2 = [r for r in rows if r["fixmedins_code"] == "H2"]  # H1's five suspects gone, H2's one kept
    res = gate(lk, table(only_h2), tmp_path, scope=recorded(versions, drop_min_rows=4))
    assert res.failures == [
        "本次筛查范围（2 家机构 × 3 个月）的疑点由上次发布的 6 条降至 1 条（低于 50%）；如确属预期，请加 --accept-drop 再发布 / "
        "the screened scope (2 institutions × 3 months): 1 suspects vs 6 last published (below 50%); if intended, "
        "publish again with --accept-drop"]
    # the whole scope within the ratio, one institution emptied: that institution is named
    res = gate(lk, table(only_h2), tmp_path, scope=recorded(versions, drop_ratio=0.1))
    assert res.failures == [
        "机构 H1（3 个月）有 8 行输入、已发布 5 条疑点，本次清单为 0 条，发布将清空它；如确属预期，请加 --accept-drop 再发布 / "
        "institution H1 (3 months): 8 input rows and 5 suspects published, none in this list: publishing would "
        "empty it; if intended, publish again with --accept-drop"]
    # under drop_min_rows the ratio does not apply; --accept-drop lets both through
    assert gate(lk, table(rows[:2] + only_h2), tmp_path, scope=recorded(versions, drop_min_rows=7)).success
    assert gate(lk, table(only_h2), tmp_path, scope=recorded(versions, accept_drop=True)).success


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
    assert res.failures == ["规则 daily_cap_item 命中数 3，较已发布清单 1 增长超过 2 倍 / "
                            "rule daily_cap_item: 3 hits vs 1 in the published list (band ×2)"]
    # below min_hits, or within the band: passes
    assert gate(lk, t, tmp_path, previous={"daily_cap_item": 1}, band=2.0, min_hits=4, versions=versions).success
    assert gate(lk, t, tmp_path, previous={"daily_cap_item": 2}, band=2.0, min_hits=3, versions=versions).success


def test_previous_hits_count_the_published_list_within_the_scope(silver_lake):
    import datetime as dt
    lk, versions = silver_lake
    from pipelines.publish.publisher import publish
    publish(lk, table(clean_rows(versions, run_id="R1")), scope=recorded(versions).scope,
            published_at=dt.datetime(2024, 1, 1))
    whole = {"daily_cap_item": 3, "split_admission_same_diag": 1, "self_pay_ratio_inpatient": 1,
             "inventory_shortfall_drug": 1}
    assert previous_hits(lk) == whole
    # R2 re-publishes H2 2023-03 alone: the list still holds R1's other findings, and a full run is compared
    # with all of them, not with R2's share
    h2 = recorded(versions, pairs={("H2", "2023-03"): 3}).scope
    publish(lk, table([r for r in clean_rows(versions, run_id="R2") if r["fixmedins_code"] == "H2"]),
            scope=h2, published_at=dt.datetime(2024, 2, 1))
    assert previous_hits(lk) == whole
    h2_hits = sum(1 for r in clean_rows(versions, run_id="R2") if r["fixmedins_code"] == "H2"
                  and r["rule_id"] == "daily_cap_item")
    assert 0 < h2_hits < 3 and previous_hits(lk, h2)["daily_cap_item"] == h2_hits
    assert previous_hits(lk, h2.slice(0, 0)) == {}


def test_gate_passes_thousands_of_clean_suspects(silver_lake, tmp_path):
    """Thousands of suspects on one line of a 40-yuan amount, each its own finding (item code): unique ids,
    all valid (speed: benchmarks)."""
    lk, versions = silver_lake
    rows = [suspect("daily_cap_item", "daily_cap", "H1", "2023-03", mdtrt="M1", sn="1", amount="40.00",
                    hilist=f"X{i}") | {"suspect_id": f"id{i:05d}"} for i in range(4000)]
    res = gate(lk, table(rows), tmp_path, scope=recorded({}, run_id="R2"))
    assert res.success, res.failures
