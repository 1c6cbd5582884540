"""Screening cost with the full national knowledge base against the sample knowledge base, on the same lake.

    python -m benchmarks.kb_screen [--scale 5] [--data data/bench-kb] [--engine duckdb]

Builds (or reuses) a generated drop and its lake (the shipped sample knowledge base in silver), screens it with
every active rule, then imports all 18 national batches at their published sizes (~21,000 code rows, generated in
the published shapes) as a release in force for the drop's dates, and screens the same lake again. Each screening
runs in its own process, so the peak RSS printed is that screening's alone (read from the process with
`resource.getrusage`). Prints the kb sizes, both times, the ratio measured in this run and both peaks: the rules
join the knowledge base set-based, so the cost follows the claims, not the number of knowledge points.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _screen_once(lake_dir: Path, engine_name: str) -> dict:
    """One screening of every active rule (no staging written): seconds, suspects, kb rows, peak RSS (MB)."""
    from pipelines.catalog import load_catalog
    from pipelines.app.screening import make_engine
    from pipelines.screen.pipeline import screen
    from pipelines.storage import Lake

    lake, catalog = Lake(lake_dir), load_catalog()
    engine = make_engine(engine_name)
    t0 = time.perf_counter()
    res = screen(lake, engine, catalog, catalog.select(), run_id="bench-kb", write_staging=False, progress=False)
    secs = time.perf_counter() - t0
    return {"seconds": secs, "suspects": res.suspects.num_rows, "rules": len(res.rules),
            "kb_hilist": res.rows_in.get("silver/kb_hilist", 0), "kb_item_pair": res.rows_in.get("silver/kb_item_pair", 0),
            "fee_lines": res.rows_in.get("silver/fee_list_net", 0),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _measure(lake_dir: Path, engine_name: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.kb_screen", "--child", str(lake_dir), "--engine", engine_name],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _build(data: Path, scale: float, seed: int) -> Path:
    from pipelines import config
    from pipelines.app.load import load_drop
    from pipelines.storage import Lake
    from pipelines.synth.generator import generate

    landing, lake_dir = data / "landing", data / "lake"
    if not Lake(lake_dir).exists("silver/fee_list_net"):
        t0 = time.perf_counter()
        generate(landing, scale=scale, seed=seed)
        load_drop(landing, Lake(lake_dir), config.load(), progress=False)
        print(f"generated and loaded a drop at scale {scale} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return lake_dir


def _import_national(data: Path, lake_dir: Path) -> str:
    from pipelines.kb.pipeline import import_release
    from pipelines.storage import Lake
    from pipelines.synth.kb_batches import write_batches

    src = data / "nhsa-kb"
    if not src.exists():
        write_batches(src, scale=1.0)
    res = import_release(src, Lake(lake_dir), effective=dt.date(2000, 1, 1))   # in force for every claim date
    return res.release_id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=5.0, help="drop size (scale 1 ≈ 60,000 fee lines)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=Path("data/bench-kb"))
    ap.add_argument("--engine", default="duckdb", choices=("duckdb", "spark"))
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_screen_once(args.child, args.engine)))
        return 0
    from pipelines.storage import Lake

    lake_dir = _build(args.data, args.scale, args.seed)
    if Lake(lake_dir).exists("silver/kb_release"):
        print(f"{lake_dir} already holds an imported release: use a fresh --data folder", file=sys.stderr)
        return 2
    sample = _measure(lake_dir, args.engine)
    release = _import_national(args.data, lake_dir)
    national = _measure(lake_dir, args.engine)
    print(f"engine {args.engine}; fee lines (netted) {sample['fee_lines']:,}; rules {sample['rules']}")
    for name, m in (("sample kb 样例知识库", sample), (f"national kb 国家知识库 {release}", national)):
        print(f"  {name:<40} kb_hilist {m['kb_hilist']:>7,} rows, kb_item_pair {m['kb_item_pair']:>6,} rows: "
              f"screen {m['seconds']:6.1f} s, {m['suspects']:,} suspects, peak RSS {m['peak_rss_mb']:,.0f} MB")
    print(f"ratio national/sample: kb_hilist rows {national['kb_hilist'] / max(sample['kb_hilist'], 1):.1f}x, "
          f"screen time {national['seconds'] / sample['seconds']:.2f}x, "
          f"peak RSS {national['peak_rss_mb'] / sample['peak_rss_mb']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
