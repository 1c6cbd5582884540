"""The catalog lints clean, and the lint catches what it should."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from pipelines.catalog import Catalog, Rule, load_catalog


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


def _file_entries(path: Path) -> dict[str, dict]:
    return {raw["id"]: raw for raw in yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]}


def test_each_catalog_file_is_named_after_its_template():
    """rules/catalog/daily_cap.yml holds exactly the rules of rules/templates/daily_cap.sql."""
    cat = load_catalog()
    files = sorted(p.name for p in (cat.rules_dir / "catalog").glob("*.yml"))
    assert files == sorted(f"{t}.yml" for t in cat.templates)
    for r in cat.rules:
        assert r.source == f"{r.template}.yml", r.id


def test_lint_finds_a_rule_in_another_templates_file(tmp_path: Path):
    """Moving a rule into the file of another template is a lint problem; the fingerprint, computed from rule
    content only, does not see file names."""
    dst = tmp_path / "rules"
    shutil.copytree(load_catalog().rules_dir, dst)
    before = load_catalog(dst)
    cap, interval = dst / "catalog" / "daily_cap.yml", dst / "catalog" / "min_interval.yml"
    _, _, text = before.entry(before.by_id["daily_cap_item"])
    cap.write_text(cap.read_text(encoding="utf-8").replace(text, ""), encoding="utf-8")
    interval.write_text(interval.read_text(encoding="utf-8") + text, encoding="utf-8")
    after = load_catalog(dst)
    assert after.by_id["daily_cap_item"].source == "min_interval.yml"
    assert after.lint() == ["min_interval.yml: daily_cap_item: a catalog file holds only the rules of the template "
                            "it is named after; template 'daily_cap' belongs in catalog/daily_cap.yml"]
    assert after.fingerprint() == before.fingerprint()
    assert after.fingerprint(after.rules) == before.fingerprint(before.rules)


def test_entry_is_the_rules_own_yaml_and_line():
    """`Catalog.entry` finds each rule's text in its file: it parses to that rule and starts at its `- id:` line."""
    cat = load_catalog()
    for r in cat.rules:
        path, line, text = cat.entry(r)
        assert path == cat.rules_dir / "catalog" / r.source
        assert path.read_text(encoding="utf-8").splitlines()[line - 1].strip() == f"- id: {r.id}"
        assert yaml.safe_load(text) == [_file_entries(path)[r.id]]


def test_entry_stops_at_the_next_rule(tmp_path: Path):
    (tmp_path / "catalog").mkdir(parents=True)
    (tmp_path / "catalog" / "t.yml").write_text(
        "rules:\n  - id: t_a\n    params:\n      x: [1]\n\n  - id: t_ab\n    version: 2\n", encoding="utf-8")
    cat = Catalog(tmp_path, {}, [], {}, {})
    rule = lambda rid: Rule(rid, 1, "t", "t", "", "", "", "", (), "", "", source="t.yml")  # noqa: E731
    assert cat.entry(rule("t_a")) == (tmp_path / "catalog" / "t.yml", 2, "  - id: t_a\n    params:\n      x: [1]\n")
    assert cat.entry(rule("t_ab"))[1:] == (6, "  - id: t_ab\n    version: 2\n")
