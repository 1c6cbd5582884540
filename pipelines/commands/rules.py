"""`fundguard rules`: the rule catalog 规则目录 — list it, lint it, or show everything about one rule.

`show RULE_ID` prints where the rule lives and how to test it: its template (rules/templates/<template>.sql),
its catalog entry (rules/catalog/<template>.yml, the file named after the template), its regression case
(rules/regression/<rule_id>/: the input files and the expected hits) and the command that runs that case
on DuckDB and Spark.

examples:
  fundguard rules                          active rules and the rule-set fingerprint
  fundguard rules --family daily_cap --all the daily_cap rules, drafts included
  fundguard rules --lint                   check the catalog
  fundguard rules show daily_cap_item      template, catalog entry, regression case, test command

exit codes: 0 done; 1 the lint found problems; 2 unknown rule id (the message lists close matches).
"""
from __future__ import annotations

import argparse
import csv
import difflib
import shlex
import sys
from pathlib import Path

from pipelines.catalog import Catalog, Rule, load_catalog
from pipelines.config import REPO_ROOT

EXIT_OK, EXIT_LINT_PROBLEMS, EXIT_UNKNOWN_RULE = 0, 1, 2
#: the parametrised regression test (one case per rule id, on DuckDB and on Spark)
REGRESSION_TEST = "tests/screen/test_regression.py"
REGRESSION_TESTS = ("test_rule_regression_duckdb", "test_rule_regression_spark_matches_duckdb")
PYTHON = ".venv/bin/python"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lint", action="store_true", help="check the catalog; exit 1 on problems")
    p.add_argument("--tags", action="append", help="only rules with this focus tag, e.g. 血液净化 (repeatable)")
    p.add_argument("--family", action="append", help="only rules of this family (repeatable)")
    p.add_argument("--all", action="store_true", help="include draft rules")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    show = sub.add_parser("show", help="template, catalog entry, regression case and test command of one rule",
                          description="Print a rule's template, catalog entry, regression case and the test "
                                      "command of its regression on both engines. Exit 2 on an unknown id.")
    show.add_argument("rule_id", metavar="RULE_ID", help="e.g. daily_cap_item")


def run(args) -> int:
    catalog = load_catalog()
    if getattr(args, "action", None) == "show":
        return show(catalog, args.rule_id)
    if args.lint:
        problems = catalog.lint()
        print("\n".join(problems) if problems else f"catalog clean: {len(catalog.rules)} rules")
        return EXIT_LINT_PROBLEMS if problems else EXIT_OK
    rules = catalog.select(tags=args.tags, families=args.family, include_draft=args.all)
    print(f"{'rule_id':<42} {'family':<24} {'违规类别':<8} {'severity':<10} {'status':<7} name")
    for r in rules:
        print(f"{r.id:<42} {r.family:<24} {r.category:<8} {r.severity:<10} {r.status:<7} {r.name}")
    print(f"\n{len(rules)} rules, fingerprint {catalog.fingerprint(rules)}")
    return EXIT_OK


def show(catalog: Catalog, rule_id: str) -> int:
    rule = catalog.by_id.get(rule_id)
    if rule is None:
        near = close_matches(rule_id, list(catalog.by_id))
        hint = (f"close matches: {', '.join(near)}" if near
                else "`fundguard rules --all` lists every rule")
        print(f"fundguard rules show: no rule {rule_id!r} in {_shown(catalog.rules_dir / 'catalog')}; {hint}",
              file=sys.stderr)
        return EXIT_UNKNOWN_RULE
    print("\n\n".join([_header(catalog, rule), _template(catalog, rule), _entry(catalog, rule),
                       _regression(catalog, rule), _test_command(catalog, rule)]))
    return EXIT_OK


def close_matches(wanted: str, ids: list[str], n: int = 8) -> list[str]:
    """Ids containing what was typed (a family name, a fragment), then the similar spellings."""
    w = wanted.lower()
    containing = sorted(i for i in ids if w and w in i)
    similar = difflib.get_close_matches(w, ids, n=n, cutoff=0.6)
    return list(dict.fromkeys(containing + similar))[:n]


def regression_command(rule_id: str, all_ids: list[str]) -> str:
    """The pytest command that runs one rule's regression case on both engines, from the repository root.

    `-k <rule_id>` selects by substring, so when another rule's id contains this one the two test ids are
    named instead."""
    if any(rule_id in other for other in all_ids if other != rule_id):
        nodes = " ".join(shlex.quote(f"{REGRESSION_TEST}::{t}[{rule_id}]") for t in REGRESSION_TESTS)
        return f"{PYTHON} -m pytest {nodes}"
    return f"{PYTHON} -m pytest {REGRESSION_TEST} -k {rule_id}"


def _header(catalog: Catalog, rule: Rule) -> str:
    fam = catalog.families.get(rule.family)
    grain = f" (grain {fam.grain}, partition {fam.partition})" if fam else ""
    tags = f" · tags {'/'.join(rule.focus_tags)}" if rule.focus_tags else ""
    return (f"规则 rule {rule.id} v{rule.version} — {rule.name}\n"
            f"  family {rule.family}{grain} · {rule.category} · {rule.severity} · {rule.status} · "
            f"scope {'/'.join(rule.scope)}{tags}")


def _template(catalog: Catalog, rule: Rule) -> str:
    path = catalog.rules_dir / "templates" / f"{rule.template}.sql"
    if rule.template not in catalog.templates:
        return f"模板 template: {_shown(path)} (missing)"
    return f"模板 template: {_shown(path)}\n{catalog.templates[rule.template].rstrip()}"


def _entry(catalog: Catalog, rule: Rule) -> str:
    path, line, text = catalog.entry(rule)
    return f"目录条目 catalog entry: {_shown(path)}:{line}\n{text.rstrip()}"


def _regression(catalog: Catalog, rule: Rule) -> str:
    folder = catalog.rules_dir / "regression" / rule.id
    if not folder.is_dir():
        return f"回归用例 regression case: {_shown(folder)}/ missing"
    lines = [f"回归用例 regression case: {_shown(folder)}/"]
    for f in sorted(folder.iterdir()):
        rows = _csv_rows(f) if f.suffix == ".csv" else None
        lines.append(f"  {f.name:<22}" + (f" {len(rows) - 1} rows" if rows else ""))
    expected = _csv_rows(folder / "expected.csv") if (folder / "expected.csv").exists() else []
    if expected:
        lines.append(f"  expected hits ({', '.join(expected[0])}): {len(expected) - 1}")
        lines.extend(f"    {', '.join(row)}" for row in expected[1:])
    else:
        lines.append("  no expected.csv")
    return "\n".join(lines)


def _test_command(catalog: Catalog, rule: Rule) -> str:
    return ("测试 test (DuckDB and Spark, from the repository root):\n"
            f"  {regression_command(rule.id, list(catalog.by_id))}")


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [row for row in csv.reader(fh) if row]


def _shown(path: Path) -> str:
    """A path relative to the repository root when it is inside it."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
