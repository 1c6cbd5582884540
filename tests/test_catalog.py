"""The catalog lints clean, and the lint catches what it should."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from pipelines.catalog import load_catalog


def test_catalog_is_clean():
    assert load_catalog().lint() == []


def test_every_contract_family_is_declared():
    fams = load_catalog().families
    for f in ("gender_restricted", "age_restricted", "inpatient_only", "hosp_level_restricted",
              "indication_restricted", "daily_cap", "per_diem_over_stay", "min_interval", "pay_days_exceeded",
              "bundled_item", "duplicate_line", "price_above_cap", "markup_exceeded", "charge_outside_stay",
              "outpatient_during_stay", "after_death", "overlapping_stays", "split_admission", "bed_hanging",
              "self_pay_ratio", "inventory_shortfall"):
        assert f in fams


def test_lint_finds_broken_rules(tmp_path: Path):
    src = load_catalog().rules_dir
    dst = tmp_path / "rules"
    shutil.copytree(src, dst)
    bad = {"rules": [
        {"id": "daily_cap_item", "version": 1, "family": "daily_cap", "template": "daily_cap", "name": "dup",
         "category": "超量收费", "severity": "violation", "status": "draft", "scope": ["门诊"],
         "legal_basis": "x", "description": "duplicate id"},
        {"id": "gender_restricted_x", "version": 1, "family": "gender_restricted", "template": "gender_restricted",
         "name": "unbound", "category": "不存在", "severity": "fatal", "status": "active", "scope": ["门诊"],
         "legal_basis": "x", "description": "missing param, bad category and severity, no regression data"},
        {"id": "nofamily_rule", "version": 1, "family": "nofamily", "template": "missing", "name": "x",
         "category": "超量收费", "severity": "violation", "status": "draft", "scope": ["急诊"],
         "legal_basis": "x", "description": "unknown family, template and scope"},
    ]}
    (dst / "catalog" / "zz_bad.yml").write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    problems = "\n".join(load_catalog(dst).lint())
    assert "duplicate id" in problems
    assert "parameters not bound: ['list_types']" in problems
    assert "unknown category" in problems
    assert "severity must be" in problems
    assert "without regression data" in problems
    assert "unknown family 'nofamily'" in problems
    assert "template 'missing'" in problems
    assert "scope must be" in problems


def test_fingerprint_changes_with_a_rule():
    cat = load_catalog()
    rules = cat.select()
    assert cat.fingerprint(rules) == cat.fingerprint(list(reversed(rules)))
    assert cat.fingerprint(rules) != cat.fingerprint(rules[1:])
