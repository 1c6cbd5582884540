"""The library covers contract §4, keeps thresholds in the knowledge base, and proves every rule with
hand-made positives and negatives."""
from __future__ import annotations

import csv
import re

import pytest

from pipelines.catalog import load_catalog
from pipelines.screen.regression import expected_keys

CATALOG = load_catalog()

CONTRACT_FAMILIES = (
    "gender_restricted", "age_restricted", "inpatient_only", "hosp_level_restricted", "indication_restricted",
    "daily_cap", "per_diem_over_stay", "min_interval", "pay_days_exceeded", "bundled_item", "duplicate_line",
    "price_above_cap", "markup_exceeded", "charge_outside_stay", "outpatient_during_stay", "after_death",
    "overlapping_stays", "split_admission", "bed_hanging", "self_pay_ratio", "inventory_shortfall",
)

#: families that look at a person across institutions (contract §4: "any institution", "per person")
PERSON_FAMILIES = {"daily_cap", "min_interval", "bundled_item", "outpatient_during_stay", "after_death",
                   "overlapping_stays",
                   # the national knowledge base's (#15): a first-line drug or the period's count anywhere
                   "second_line", "period_cap",
                   # issue #16: a person's purchases of one drug at several institutions
                   "drug_resale"}


@pytest.mark.parametrize("family", CONTRACT_FAMILIES)
def test_every_contract_family_has_an_active_rule(family):
    active = [r for r in CATALOG.select() if r.family == family]
    assert active, f"no active rule of family {family}"


def test_person_families_see_a_person_across_institutions_the_rest_one_institution():
    partition = {name: fam.partition for name, fam in CATALOG.families.items()}
    assert set(partition.values()) == {"institution", "person"}, "a family declares an unknown partition"
    assert {name for name, p in partition.items() if p == "person"} == PERSON_FAMILIES


def test_library_size():
    assert len(CATALOG.select()) >= 40


# A numeric literal compared with something: `> 3`, `>= 15`, `< 0.08`, `3 <`, `BETWEEN 2 AND`.
_CMP = r"(?:<=|>=|<>|!=|=|<|>)"
_NUM = r"-?\d+(?:\.\d+)?"
_LITERAL_CMP = re.compile(rf"{_CMP}\s*({_NUM})(?![\w'.])|(?<![\w'.])({_NUM})\s*{_CMP}|BETWEEN\s+({_NUM})|AND\s+({_NUM})\b",
                          re.IGNORECASE)
#: literals allowed in comparisons, each with its reason
ALLOWED = {
    "0": "zero: sign tests (amount > 0, has_other = 0)",
    "1": "one: flags (rn = 1) and 'at least 1 day'",
    "3600": "bundled_item `hour` window: contract §4 defines it as at most 60 minutes (3600 s) apart",
}


def _strip(sql: str) -> str:
    sql = re.sub(r"--[^\n]*", "", sql)
    return re.sub(r"'(?:[^'\\]|\\.)*'", "''", sql)


@pytest.mark.parametrize("template", sorted(CATALOG.templates))
def test_no_threshold_literals_in_templates(template):
    sql = _strip(CATALOG.templates[template])
    bad = [n for m in _LITERAL_CMP.finditer(sql) for n in m.groups() if n is not None and n not in ALLOWED]
    assert not bad, f"{template}: numeric thresholds {bad} belong in the knowledge base (kb_hilist/kb_param)"


def test_literal_lint_catches_thresholds():
    for sql in ("WHERE x > 3", "WHERE d.day_cnt >= 15", "WHERE 0.08 < r", "WHERE n BETWEEN 2 AND 5"):
        assert [n for m in _LITERAL_CMP.finditer(_strip(sql)) for n in m.groups() if n and n not in ALLOWED], sql
    for sql in ("WHERE k.gend_lmt = '1'", "WHERE rn = 1", "WHERE a.amt > 0", "-- above 3 days\nWHERE x > y"):
        assert not [n for m in _LITERAL_CMP.finditer(_strip(sql)) for n in m.groups() if n and n not in ALLOWED], sql


def test_params_carry_no_thresholds():
    """Catalog params scope a rule (code lists, flags); numbers are thresholds and belong in the KB."""
    def walk(v):
        if isinstance(v, bool) or v is None:
            return
        assert not isinstance(v, (int, float)), v
        if isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
    for r in CATALOG.rules:
        for v in r.params.values():
            walk(v)


@pytest.mark.parametrize("rule", CATALOG.select(), ids=[r.id for r in CATALOG.select()])
def test_regression_data_has_positives_negatives_and_reasons(rule):
    d = CATALOG.rules_dir / "regression" / rule.id
    grain = CATALOG.families[rule.family].grain
    assert expected_keys(d / "expected.csv", grain), "no positive case"
    inputs = [p for p in d.glob("*.csv") if p.name != "expected.csv"]
    assert inputs
    rows_total = 0
    for p in inputs:
        with p.open(encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            assert "why" in (reader.fieldnames or []), f"{p.name}: every input row says why (column `why`)"
            rows = list(reader)
        assert all((r.get("why") or "").strip() for r in rows), f"{p.name}: a row without a reason"
        rows_total += len(rows)
    assert rows_total > len(expected_keys(d / "expected.csv", grain)), "no negative case"


def test_scope_params_partition_each_family():
    """Instances of one family split it by disjoint scopes, so a record is reported by one rule only."""
    by_family: dict[str, list] = {}
    for r in CATALOG.select():
        by_family.setdefault(r.family, []).append(r)
    for fam, rules in by_family.items():
        for key in ("list_types", "chrgitm_types"):
            scoped = [set(r.params[key]) for r in rules if key in r.params]
            seen: set = set()
            for s in scoped:
                assert not (s & seen), f"{fam}: {key} overlap between instances"
                seen |= s
        flags = [r.params.get("inpatient", r.params.get("in_med_types")) for r in rules
                 if "inpatient" in r.params or "in_med_types" in r.params]
        assert len(flags) == len(set(flags)), f"{fam}: two instances with the same scope flag"
