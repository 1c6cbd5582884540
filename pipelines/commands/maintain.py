"""`fundguard maintain`: Delta optimize and vacuum of every lake table 表维护 (what the maintenance DAG runs).

    fundguard maintain --lake data/lake --dry-run
    fundguard maintain --lake data/lake --retention-hours 336

The retention of each table is raised to keep every version a published row still names in
`input_versions`, so `fundguard reproduce` keeps working; a table whose referenced version has no known
commit time is not vacuumed. `--dry-run` lists what would go and compacts nothing.
Exit codes: 0 done; 2 bad usage (not a lake).
"""
from __future__ import annotations

from pipelines import config
from pipelines.commands._common import EXIT_BAD_INPUT, EXIT_OK, add_lake, fail, lake_of


def add_arguments(p) -> None:
    add_lake(p)
    p.add_argument("--retention-hours", type=int, default=None,
                   help="minimum retention (default: conf maintenance.retention_hours, 168)")
    p.add_argument("--dry-run", action="store_true", help="list what vacuum would remove; change nothing")


def run(args) -> int:
    from pipelines.app.maintenance import DEFAULT_RETENTION_HOURS, maintain, plan_lake_retention
    from pipelines.storage import utcnow

    conf = config.load()
    lake = lake_of(args, conf)
    if not lake.root.is_dir():
        return fail("maintain", f"not a lake: {lake.root} does not exist")
    hours = args.retention_hours if args.retention_hours is not None else int(
        (conf.get("maintenance") or {}).get("retention_hours", DEFAULT_RETENTION_HOURS))
    if hours < 0:
        return fail("maintain", f"--retention-hours must be ≥ 0, got {hours}", EXIT_BAD_INPUT)
    plans = plan_lake_retention(lake.root, hours, now=utcnow())
    if not plans:
        return fail("maintain", f"not a lake: no Delta table under {lake.root}")
    done = maintain(lake.root, plans, dry_run=args.dry_run)
    for p in plans:
        removed = done["vacuumed"].get(p["table"])
        what = "not vacuumed" if removed is None else (
            f"{removed} file(s) {'would be removed' if args.dry_run else 'removed'}")
        print(f"{p['table']:<28} retention {p['retention_hours']:>5} h  {what}  ({p['reason']})")
    print(f"表维护 maintenance: {len(plans)} tables, {len(done['optimized'])} optimized"
          f"{' (dry run: nothing changed)' if args.dry_run else ''}")
    return EXIT_OK
