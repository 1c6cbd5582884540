"""Cost of `fundguard analyze` (indicators, item watch, institution risk) against the rule screening, on one lake.

    python -m benchmarks.analyze [--scale 5] [--data data/bench-analyze] [--period 2023]

Builds (or reuses) a generated drop and its lake, then, each in its own process (so the peak RSS printed is
that step's alone, read from the process with `resource.getrusage`): screens it with every active rule (DuckDB,
no staging written), then runs `analyze` for the period (writing the gold tables, as the command does; the
rule-hit indicators read what the screening found when the lake holds a published list). Prints both times,
analyze's parts, the ratio measured in this run (target: analyze < 2× screening) and both peaks.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _screen_once(lake_dir: Path) -> dict:
    from pipelines.app.screening import make_engine
    from pipelines.catalog import load_catalog
    from pipelines.screen.pipeline import screen
    from pipelines.storage import Lake

    lake, catalog = Lake(lake_dir), load_catalog()
    t0 = time.perf_counter()
    res = screen(lake, make_engine("duckdb"), catalog, catalog.select(), run_id="bench-analyze",
                 write_staging=False, progress=False)
    return {"seconds": time.perf_counter() - t0, "suspects": res.suspects.num_rows,
            "fee_lines": res.rows_in.get("silver/fee_list_net", 0), "peak_rss_mb": _rss_mb()}


def _analyze_once(lake_dir: Path, period: str | None) -> dict:
    from pipelines.app.analyze import analyze
    from pipelines.storage import Lake

    t0 = time.perf_counter()
    res = analyze(Lake(lake_dir), period)
    secs = time.perf_counter() - t0
    c = res.computed
    return {"seconds": secs, "parts": c.seconds, "institutions": int(c.indicators["fixmedins_code"].nunique()),
            "models": {g: n for g, (n, _) in res.models.items()}, "peak_rss_mb": _rss_mb()}


def _child(step: str, lake_dir: Path, period: str | None) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.analyze", "--child", step, "--data", str(lake_dir)]
    if period:
        cmd += ["--period", period]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=5.0, help="drop size (scale 1 ≈ 60,000 fee lines)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=Path("data/bench-analyze"))
    ap.add_argument("--period", default="2023", help="the period analysed (YYYY or YYYY-MM; '' for every year)")
    ap.add_argument("--child", choices=("screen", "analyze"), default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    period = args.period or None
    if args.child == "screen":
        print(json.dumps(_screen_once(args.data)))
        return 0
    if args.child == "analyze":
        print(json.dumps(_analyze_once(args.data, period)))
        return 0
    lake_dir = _build(args.data, args.scale, args.seed)
    s = _child("screen", lake_dir, period)
    a = _child("analyze", lake_dir, period)
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in a["parts"].items())
    print(f"scale {args.scale}: fee lines (netted) {s['fee_lines']:,}; institutions {a['institutions']}; "
          f"risk models {a['models']}")
    print(f"  rule screening 规则筛查   {s['seconds']:7.1f} s, {s['suspects']:,} suspects, peak RSS {s['peak_rss_mb']:,.0f} MB")
    print(f"  fundguard analyze 分析    {a['seconds']:7.1f} s ({parts}; the rest: MLflow and writing the gold "
          f"tables), peak RSS {a['peak_rss_mb']:,.0f} MB")
    print(f"ratio analyze/screening: time {a['seconds'] / s['seconds']:.2f}x (target < 2x), "
          f"peak RSS {a['peak_rss_mb'] / s['peak_rss_mb']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
