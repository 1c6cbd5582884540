"""`fundguard rules`: list, lint, and `show RULE_ID` (template, catalog entry, regression case, test command)."""
from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import cli
from pipelines.catalog import load_catalog
from pipelines.commands import rules as rules_cmd
from pipelines.config import REPO_ROOT


def _run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="fundguard rules")
    rules_cmd.add_arguments(p)
    return rules_cmd.run(p.parse_args(argv))


def _collected(command: str) -> set[str]:
    """The test ids a printed pytest command selects (collected, not run), from the repository root."""
    out = subprocess.run([*shlex.split(command), "--collect-only", "-q", "-p", "no:cacheprovider"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return {line.strip() for line in out.stdout.splitlines() if "::" in line}


def _both_engines(rule_id: str) -> set[str]:
    return {f"{rules_cmd.REGRESSION_TEST}::{t}[{rule_id}]" for t in rules_cmd.REGRESSION_TESTS}


def test_show_prints_template_entry_regression_case_and_command(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))    # cli.main sets sys.argv
    assert cli.main(["rules", "show", "daily_cap_item"]) == 0
    out = capsys.readouterr().out
    catalog = load_catalog()
    rule = catalog.by_id["daily_cap_item"]
    assert "模板 template: rules/templates/daily_cap.sql\n" in out
    assert catalog.templates["daily_cap"].strip() in out
    _, line, text = catalog.entry(rule)
    assert f"目录条目 catalog entry: rules/catalog/daily_cap.yml:{line}\n{text}" in out
    assert yaml.safe_load(text)[0]["id"] == rule.id and "version: 1" in text
    assert "回归用例 regression case: rules/regression/daily_cap_item/" in out
    # the case folder's files with their rows, and the expected hits by the grain's keys
    assert "  fee_list.csv           12 rows" in out and "  kb_hilist.csv          2 rows" in out
    assert "expected hits (fixmedins_code, mdtrt_id, feedetl_sn): 4\n    H1, M1, 1\n    H1, M1, 2\n" in out
    assert out.rstrip().endswith(
        ".venv/bin/python -m pytest tests/screen/test_regression.py -k daily_cap_item")


def test_show_a_rule_with_parameters_prints_them(capsys):
    assert _run(["show", "pay_days_exceeded_service"]) == 0
    out = capsys.readouterr().out
    assert "rules/catalog/pay_days_exceeded.yml:" in out
    assert "    params:\n      list_types: ['201', '301', '501', '']" in out
    assert "params.list_types" in out    # the template's use of the parameter, in the printed SQL


def test_the_printed_command_runs_exactly_that_rules_regression_on_both_engines():
    """The command `show` prints collects the rule's DuckDB and Spark cases and nothing else."""
    command = rules_cmd.regression_command("min_interval_drug", list(load_catalog().by_id))
    assert _collected(command) == _both_engines("min_interval_drug")


def test_the_command_names_the_tests_when_another_id_contains_the_rule_id():
    """`-k daily_cap_item` would also select a rule `daily_cap_item_night`: the test ids are named instead."""
    ids = ["daily_cap_item", "daily_cap_item_night"]
    command = rules_cmd.regression_command("daily_cap_item", ids)
    assert " -k " not in command
    assert _collected(command) == _both_engines("daily_cap_item")
    # today no id contains another, so every rule gets the short `-k` form
    all_ids = list(load_catalog().by_id)
    assert all(" -k " in rules_cmd.regression_command(i, all_ids) for i in all_ids)


@pytest.mark.parametrize("typed, expected", [
    ("daily_cap", ["daily_cap_item"]),                          # a family name: its rules
    ("dayly_cap_itm", ["daily_cap_item"]),                      # a misspelling
    ("after_death", ["after_death_inpatient", "after_death_outpatient"]),
])
def test_an_unknown_id_exits_2_listing_close_matches(capsys, typed, expected):
    assert _run(["show", typed]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"fundguard rules show: no rule {typed!r}")
    listed = captured.err.split("close matches: ")[1].strip().split(", ")
    assert listed[:len(expected)] == expected


def test_an_id_like_nothing_points_at_the_list(capsys):
    assert _run(["show", "zzz"]) == 2
    assert "`fundguard rules --all` lists every rule" in capsys.readouterr().err


def test_help_has_a_description_an_example_and_the_exit_codes(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with pytest.raises(SystemExit) as exc:
        cli.main(["rules", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "show everything about one rule" in out
    assert "fundguard rules show daily_cap_item" in out
    assert "exit codes: 0 done; 1 the lint found problems; 2 unknown rule id" in out


def test_list_and_lint(capsys):
    assert _run(["--family", "daily_cap"]) == 0
    out = capsys.readouterr().out
    catalog = load_catalog()
    daily = [r for r in catalog.select() if r.family == "daily_cap"]
    assert "daily_cap_item" in out and "min_interval_drug" not in out
    assert f"{len(daily)} rules, fingerprint {catalog.fingerprint(daily)}" in out
    assert _run(["--lint"]) == 0
    assert capsys.readouterr().out.strip() == f"catalog clean: {len(catalog.rules)} rules"


def test_lint_exits_1_on_a_rule_in_the_wrong_file(tmp_path: Path, monkeypatch, capsys):
    dst = tmp_path / "rules"
    shutil.copytree(load_catalog().rules_dir, dst)
    (dst / "catalog" / "daily_cap.yml").rename(dst / "catalog" / "daily_caps.yml")
    monkeypatch.setattr(rules_cmd, "load_catalog", lambda: load_catalog(dst))
    assert _run(["--lint"]) == 1
    assert "daily_caps.yml: daily_cap_item: a catalog file holds only the rules of the template it is named " \
           "after; template 'daily_cap' belongs in catalog/daily_cap.yml" in capsys.readouterr().out


def test_show_says_when_a_rule_has_no_regression_case(tmp_path: Path, monkeypatch, capsys):
    dst = tmp_path / "rules"
    shutil.copytree(load_catalog().rules_dir, dst)
    shutil.rmtree(dst / "regression" / "daily_cap_item")
    monkeypatch.setattr(rules_cmd, "load_catalog", lambda: load_catalog(dst))
    assert _run(["show", "daily_cap_item"]) == 0
    out = capsys.readouterr().out
    assert f"回归用例 regression case: {dst / 'regression' / 'daily_cap_item'}/ missing" in out
    assert f"目录条目 catalog entry: {dst / 'catalog' / 'daily_cap.yml'}:3" in out
