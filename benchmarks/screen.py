"""Screening throughput: the full rule library on one drop of ≥ 10 M fee lines, on each engine, and the
cost of a naive baseline (one query per knowledge-base row) for one family.

    .venv/bin/python benchmarks/screen.py [--scale 170] [--engines duckdb,spark] [--data data/bench]

Builds (or reuses) `<data>/landing` with the generator and `<data>/lake` with the ingestion, then prints
fee lines per second per engine and the naive/set-based ratio. Figures are measured in this run only.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import config  # noqa: E402
from pipelines.app.load import load_drop  # noqa: E402
from pipelines.catalog import load_catalog  # noqa: E402
from pipelines.screen.engines import DuckDBEngine, SparkEngine  # noqa: E402
from pipelines.screen.pipeline import build_views, register_inputs, screen  # noqa: E402
from pipelines.screen.sql import render_template  # noqa: E402
from pipelines.storage import Lake  # noqa: E402


def build_lake(data: Path, scale: float, seed: int) -> Lake:
    from pipelines.synth.generator import generate

    landing, lake = data / "landing", Lake(data / "lake")
    if not lake.exists("silver/fee_list_net"):
        if not landing.exists():
            t0 = time.perf_counter()
            generate(landing, scale=scale, seed=seed)
            print(f"generated drop at scale {scale} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        t0 = time.perf_counter()
        load_drop(landing, lake, config.load(), progress=True)
        print(f"loaded lake in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return lake


def naive_daily_cap(engine: DuckDBEngine, catalog, limit: int) -> tuple[float, int, int]:
    """Baseline: the daily_cap family run as one query per kb_hilist row (as many hand-written rule
    engines do), against the set-based template that joins the knowledge base once."""
    codes = engine.query("SELECT hilist_code, max_cnt_per_day FROM kb_hilist WHERE max_cnt_per_day IS NOT NULL")
    rows = codes.to_pylist()[:limit]
    t0 = time.perf_counter()
    hits = 0
    for r in rows:
        q = f"""SELECT count(*) AS n FROM (
                  SELECT f.psn_no, f.fee_date, sum(f.cnt) AS c FROM fee f
                  WHERE f.is_fund AND f.hilist_code = '{r["hilist_code"]}'
                  GROUP BY f.psn_no, f.fee_date HAVING sum(f.cnt) > {r["max_cnt_per_day"]}) x"""
        hits += int(engine.query(q).column("n")[0].as_py())
    return time.perf_counter() - t0, len(rows), hits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=170.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=Path("data/bench"))
    ap.add_argument("--engines", default="duckdb,spark")
    ap.add_argument("--naive-rows", type=int, default=300, help="knowledge-base rows the naive baseline runs")
    args = ap.parse_args()

    lake = build_lake(args.data, args.scale, args.seed)
    catalog = load_catalog()
    rules = catalog.select()
    fee_lines = lake.read("silver/fee_list_net", columns=["feedetl_sn"]).num_rows
    print(f"\nfee lines (netted): {fee_lines:,}; rules: {len(rules)}")
    results = {}
    for name in args.engines.split(","):
        engine = DuckDBEngine() if name == "duckdb" else SparkEngine()
        t0 = time.perf_counter()
        res = screen(lake, engine, catalog, rules, run_id=f"bench-{name}", write_staging=False, progress=False)
        secs = time.perf_counter() - t0
        results[name] = (secs, res.suspects.num_rows)
        slowest = sorted(res.seconds_per_rule.items(), key=lambda kv: -kv[1])[:3]
        target = "  (target ≥ 500,000)" if name == "duckdb" else ""
        print(f"{name:<7} {secs:8.1f}s  {fee_lines / secs:>12,.0f} fee lines/s{target}  {res.suspects.num_rows:>9,} suspects"
              f"   slowest: {', '.join(f'{k} {v:.1f}s' for k, v in slowest)}")
        engine.close()

    duck = DuckDBEngine()
    register_inputs(duck, lake, None)
    build_views(duck, catalog)
    # every item billed in the drop gets a daily cap (the knowledge base's own kept, a huge one elsewhere), so
    # the family has one knowledge-base row per item, as a district's catalogue would
    duck.con.execute("CREATE OR REPLACE TEMP TABLE kb_all AS SELECT * REPLACE "
                     "(coalesce(max_cnt_per_day, 1000000000) AS max_cnt_per_day) FROM kb_hilist")
    duck.con.execute("INSERT INTO kb_all (hilist_code, hilist_name, max_cnt_per_day) SELECT DISTINCT hilist_code, "
                     "hilist_code, 1000000000 FROM fee WHERE hilist_code NOT IN (SELECT hilist_code FROM kb_all)")
    duck.con.execute("DROP TABLE kb_hilist")       # inputs are materialised tables: swap in the capped one
    duck.con.execute("CREATE TEMP VIEW kb_hilist AS SELECT * FROM kb_all")
    rule = next(r for r in rules if r.family == "daily_cap")
    t0 = time.perf_counter()
    set_hits = duck.query(f"SELECT count(*) AS n FROM ({render_template(catalog.templates[rule.template], rule.params)}) t")
    set_secs = time.perf_counter() - t0
    n_all = int(duck.query("SELECT count(*) AS n FROM kb_all WHERE max_cnt_per_day IS NOT NULL").column("n")[0].as_py())
    naive_secs, n_kb, _ = naive_daily_cap(duck, catalog, limit=args.naive_rows)
    per_row = naive_secs / max(n_kb, 1)
    print(f"\ndaily_cap set-based: {set_secs:.2f}s for all {n_all:,} knowledge-base rows "
          f"({set_hits.column('n')[0].as_py()} hits)")
    print(f"naive one-query-per-row: {naive_secs:.2f}s for {n_kb:,} of them ({per_row * 1000:.0f} ms per row, measured)"
          + (f"; all {n_all:,} rows ≈ {per_row * n_all:.0f}s at that rate (extrapolated)" if n_kb < n_all else "")
          + f" → naive/set-based = {per_row * n_all / set_secs:.1f}×")
    if "duckdb" in results and "spark" in results:
        print(f"spark/duckdb wall time = {results['spark'][0] / results['duckdb'][0]:.1f}×")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
