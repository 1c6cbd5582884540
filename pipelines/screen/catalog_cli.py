"""`fundguard rules`: list the catalog (by family, tag, status) and lint it."""
from __future__ import annotations

from pipelines.catalog import load_catalog


def add_arguments(p) -> None:
    p.add_argument("--lint", action="store_true", help="check the catalog; exit 1 on problems")
    p.add_argument("--tags", action="append")
    p.add_argument("--family", action="append")
    p.add_argument("--all", action="store_true", help="include draft rules")


def run(args) -> int:
    catalog = load_catalog()
    if args.lint:
        problems = catalog.lint()
        print("\n".join(problems) if problems else f"catalog clean: {len(catalog.rules)} rules")
        return 1 if problems else 0
    rules = catalog.select(tags=args.tags, families=args.family, include_draft=args.all)
    print(f"{'rule_id':<42} {'family':<24} {'违规类别':<8} {'severity':<10} {'status':<7} name")
    for r in rules:
        print(f"{r.id:<42} {r.family:<24} {r.category:<8} {r.severity:<10} {r.status:<7} {r.name}")
    print(f"\n{len(rules)} rules, fingerprint {catalog.fingerprint(rules)}")
    return 0
