"""District-year scale on DuckDB: a drop of ≥ 40 M fee lines built, ingested and screened with the commands
users run, each in its own process, timed end to end and with its peak RSS read from the process (wait4).

    .venv/bin/python benchmarks/scale.py [--scale 680] [--data data/scale] [--memory 4GB]

Prints, measured in this run: lines/s of `fundguard ingest` and `fundguard screen` (commands end to end) and of
the screening's inner loop (the `screen` function alone, in a fresh process), peak RSS of each, the ratio of the
screening to one DuckDB scan-and-aggregate of the same netted fee lines, and the suspect count. Scale 1 ≈ 59,000
fee lines (scale 680 ≈ 40 M). Check `df -h` first: scale 680 needs ~25 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_child(args: list[str], label: str) -> tuple[float, str]:
    """Run a child process to its end; (wall seconds, stdout). A failure stops the benchmark, saying why."""
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode:
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0, proc.stdout


def timed_command(cmd: list[str], label: str) -> tuple[float, float, str]:
    """A command in a child process; (wall seconds, peak RSS in GB as the kernel reported it to GNU time
    (`%M`, the child's ru_maxrss), stdout)."""
    stamp = Path(f"/tmp/fundguard-bench-{os.getpid()}-{label}.time")
    wall, out = run_child(["/usr/bin/time", "-f", "%M", "-o", str(stamp), *cmd], label)
    rss = int(stamp.read_text().strip().splitlines()[-1]) / 2**20
    stamp.unlink(missing_ok=True)
    return wall, rss, out


def inner_screen(lake: str, memory: str) -> None:
    """Child: the `screen` function alone (no CLI, no MLflow), then its figures as JSON."""
    import resource

    from pipelines.catalog import load_catalog
    from pipelines.screen.engines import DuckDBEngine
    from pipelines.screen.pipeline import screen
    from pipelines.screen.plan import parse_memory
    from pipelines.storage import Lake

    catalog = load_catalog()
    t0 = time.perf_counter()
    res = screen(Lake(lake), DuckDBEngine(), catalog, catalog.select(), run_id="bench", progress=False,
                 memory=parse_memory(memory))
    secs = time.perf_counter() - t0
    print(json.dumps({"seconds": secs, "suspects": res.suspects.num_rows, "jobs": getattr(res, "jobs", 1),
                      "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))


def scan_aggregate(lake_dir: Path) -> tuple[float, int]:
    """One DuckDB scan-and-aggregate of the netted fee lines (the floor any screening pays)."""
    import duckdb

    from pipelines.storage import Lake, native_select

    lake = Lake(lake_dir)
    snap = lake.native_files("silver/fee_list_net")
    con = duckdb.connect()
    t0 = time.perf_counter()
    rows = con.sql(f"SELECT count(*), sum(n) FROM (SELECT fixmedins_code, hilist_code, count(*) AS n, "
                   f"sum(det_item_fee_sumamt) AS amt FROM ({native_select(snap, columns=['fixmedins_code', 'hilist_code', 'det_item_fee_sumamt'])}) "
                   f"GROUP BY ALL)").fetchall()
    return time.perf_counter() - t0, int(rows[0][1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=680.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=Path("data/scale"))
    ap.add_argument("--memory", default="4GB")
    ap.add_argument("--inner-screen", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner_screen:
        inner_screen(args.inner_screen, args.memory)
        return 0
    py = sys.executable
    landing, lake = args.data / "landing", args.data / "lake"
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores, shared machine)")
    if not landing.exists():
        wall, rss, out = timed_command([py, "-m", "pipelines.cli", "synth", "--out", str(landing), "--scale",
                                        str(args.scale), "--seed", str(args.seed)], "synth")
        print(f"synth {wall:.0f}s peak {rss:.2f} GB: {out.strip().splitlines()[0]}")
    figures = {}
    if not (lake / "silver" / "fee_list_net").exists():
        figures["ingest"] = timed_command([py, "-m", "pipelines.cli", "ingest", "--landing", str(landing),
                                           "--lake", str(lake)], "ingest")
    scan_secs, fee_lines = scan_aggregate(lake)
    figures["screen"] = timed_command([py, "-m", "pipelines.cli", "screen", "--lake", str(lake), "--memory",
                                       args.memory, "--quiet"], "screen")
    _, out = run_child([py, "benchmarks/scale.py", "--inner-screen", str(lake), "--memory", args.memory], "inner")
    inner = json.loads(out.strip().splitlines()[-1])
    print(f"\nnetted fee lines: {fee_lines:,}; memory budget {args.memory}; load average now {os.getloadavg()[0]:.1f}")
    print(f"{'what':<34}{'seconds':>9}{'lines/s':>13}{'peak RSS':>11}")
    if "ingest" in figures:
        w, r, _ = figures["ingest"]
        print(f"{'fundguard ingest (command)':<34}{w:>9.1f}{fee_lines / w:>13,.0f}{r:>9.2f}GB   (target ≤ 4 GB)")
    w, r, _ = figures["screen"]
    print(f"{'fundguard screen (command)':<34}{w:>9.1f}{fee_lines / w:>13,.0f}{r:>9.2f}GB   (target ≤ 6 GB)")
    print(f"{'screen() inner loop':<34}{inner['seconds']:>9.1f}{fee_lines / inner['seconds']:>13,.0f}"
          f"{inner['peak_gb']:>9.2f}GB   {inner['jobs']} batches")
    print(f"{'one DuckDB scan-and-aggregate':<34}{scan_secs:>9.2f}{fee_lines / scan_secs:>13,.0f}")
    print(f"screen inner / scan-and-aggregate = {inner['seconds'] / scan_secs:.1f}×; "
          f"command / inner = {w / inner['seconds']:.1f}×; suspects: {inner['suspects']:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
